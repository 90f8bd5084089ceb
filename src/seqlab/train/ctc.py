"""Task `ctc`: neural features -> phonemes with CTC loss, scored by phoneme error rate.

Batches are drawn as the baseline does (a random batch of trials every step, zero-padded, with
day ids), but from a generator seeded by (seed, batch index), and augmentation is drawn on the
device from a torch generator seeded the same way, so data order and augmentation are a pure
function of (seed, step): a resumed trial draws exactly what an uninterrupted one would.
Augmentation is applied only while the model is in train mode (never in evaluation):

    white_noise      sd of Gaussian noise added to every feature (baseline whiteNoiseSD)
    constant_offset  sd of one offset per channel per trial (baseline constantOffsetSD)
    time_mask_width  max width (bins) of a time mask (features set to 0, the z-scored mean)
    time_mask_max    max number of time masks per trial (0 = off)

The model's day layers and input width come from the data: the task hands `model_sizes`
(`n_days`, `n_features`) to the loop, which builds the model with them; the config may set
`n_days` larger than the data needs, never smaller.
`evaluate` returns the mean CTC loss and the corpus PER on the `test` split; the loop keeps the
checkpoint with the lowest actual PER (`select = "per"`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from seqlab.config import TrainConfig
from seqlab.data.neural import NeuralSplit, load_split, pad_batch
from seqlab.errors import SeqlabError
from seqlab.files import file_sha256
from seqlab.models.gru_ctc import decode_split, forward
from seqlab.train.augment import augment, batch_seed
from seqlab.train.tasks import to_device


class CTCTask:
    """GRU + CTC phoneme decoding on a prepared neural dataset (kind `neural`)."""

    select = "per"
    train_split, eval_split = "train", "test"

    def __init__(self, data: dict[str, Any], cfg: TrainConfig, seed: int, device: torch.device):
        self.manifest_path, self.dataset = data["manifest"], data.get("dataset")
        self.train, man = load_split(self.manifest_path, self.train_split)
        self.eval, _ = load_split(self.manifest_path, self.eval_split)
        self.device, self.seed, self.batch_size = device, seed, cfg.batch_size
        self.aug = cfg.augment
        self.vocab_size = int(man["n_classes"])
        if len(self.train) < cfg.batch_size:
            raise SeqlabError(
                f"{self.manifest_path}: {len(self.train)} training trials, fewer "
                f"than batch_size {cfg.batch_size}; lower batch_size"
            )
        self.model_sizes = {}  # the model's data-given sizes; the loop adds them to cfg.model
        for key in ("n_days", "n_features"):
            value, given = int(man[key]), getattr(cfg.model, key)
            if given is not None and (
                (key == "n_days" and given < value) or (key == "n_features" and given != value)
            ):
                raise SeqlabError(
                    f"train.model.{key}: {given}, but the data has {value}; "
                    "leave it out to take it from the data"
                )
            self.model_sizes[key] = value if given is None else int(given)
        self.tokens_per_batch = int(cfg.batch_size * self.train.frame_lens.mean())

    def train_batch(self, index: int) -> dict[str, Any]:
        """Batch `index`: trials drawn without replacement by a (seed, index) generator."""
        rng = np.random.default_rng(batch_seed(self.seed, index, "batch"))
        idx = np.sort(rng.choice(len(self.train), self.batch_size, replace=False))
        host = {
            k: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in pad_batch(self.train, idx).items()
        }
        b: dict[str, Any] = {k: to_device(host[k], self.device) for k in ("x", "y", "days")}
        # lengths stay on the host (pinned on CUDA): packing and the CTC loss read them there
        pin = self.device.type == "cuda"
        b.update(
            {k: host[k].pin_memory() if pin else host[k] for k in ("frame_lens", "phone_lens")}
        )
        b["aug_seed"] = batch_seed(self.seed, index, "augment")
        return b

    def loss(self, model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        if model.training:
            batch = {
                **batch,
                "x": augment(batch["x"], batch["frame_lens"], self.aug, batch["aug_seed"]),
            }
        return forward(model, batch)[2]

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        res = decode_split(model, self.eval, self.device, self.batch_size)
        return {"eval_loss": res["eval_loss"], "per": res["per"]}

    def data_info(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "manifest_sha256": file_sha256(self.manifest_path),
            "train_trials": len(self.train),
            "eval_trials": len(self.eval),
            "augment": asdict(self.aug),
        }


__all__ = ["CTCTask", "NeuralSplit", "augment", "batch_seed"]
