"""Task `ctc`: neural features -> phonemes with CTC loss, scored by phoneme error rate.

Batches are drawn as the baseline does (a random batch of trials every step, zero-padded, with
day ids), but from a generator seeded by (seed, batch index), and augmentation noise comes from
a torch generator seeded the same way, so data order and augmentation are a pure function of
(seed, step): a resumed trial draws exactly what an uninterrupted one would. Augmentation is
applied only while the model is in train mode (never in evaluation):

    white_noise      sd of Gaussian noise added to every feature (baseline whiteNoiseSD)
    constant_offset  sd of one offset per channel per trial (baseline constantOffsetSD)
    time_mask_width  max width (bins) of a time mask (features set to 0, the z-scored mean)
    time_mask_max    max number of time masks per trial (0 = off)

The model's day layers and input width come from the data: `n_days` and `n_features` are set
in the model config when it leaves them out (a smaller `n_days` than the data needs fails).
`evaluate` returns the mean CTC loss and the corpus PER on the `test` split; the loop keeps the
checkpoint with the lowest actual PER (`select = "per"`).
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from seqlab.data.neural import NeuralSplit, load_split, pad_batch
from seqlab.io import SeqlabError
from seqlab.models.gru_ctc import decode_split, forward, to_device
from seqlab.train.config import TrainConfig
from seqlab.train.tasks import file_sha256


@dataclass
class Augment:
    white_noise: float = 0.0
    constant_offset: float = 0.0
    time_mask_width: int = 0
    time_mask_max: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Augment:
        known = [f.name for f in fields(cls)]
        for k, v in d.items():
            if k not in known:
                raise SeqlabError(f"train.augment.{k}: unknown key; valid: {known}")
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise SeqlabError(f"train.augment.{k}: {v!r} must be a number >= 0")
        a = cls(**d)
        a.time_mask_width, a.time_mask_max = int(a.time_mask_width), int(a.time_mask_max)
        return a


def batch_seed(seed: int, index: int, stream: str) -> int:
    """A 63-bit seed per (trial seed, batch index, purpose)."""
    return int(np.random.default_rng([seed, index, zlib.crc32(stream.encode())]).integers(2**63))


def augment(x: torch.Tensor, frame_lens: torch.Tensor, a: Augment, seed: int) -> torch.Tensor:
    """White noise, a constant offset per channel and trial, and time masks (new tensor)."""
    g = torch.Generator().manual_seed(seed)  # on CPU: identical draws on every device
    B, T, C = x.shape
    if a.white_noise > 0:
        x = x + (torch.randn(B, T, C, generator=g) * a.white_noise).to(x.device)
    if a.constant_offset > 0:
        x = x + (torch.randn(B, 1, C, generator=g) * a.constant_offset).to(x.device)
    if a.time_mask_max > 0 and a.time_mask_width > 0:
        keep = torch.ones(B, T, 1)
        n = torch.randint(0, a.time_mask_max + 1, (B,), generator=g)
        for j in range(B):
            for _ in range(int(n[j])):
                w = int(torch.randint(0, a.time_mask_width + 1, (1,), generator=g))
                t0 = int(torch.randint(0, max(int(frame_lens[j]) - w, 0) + 1, (1,), generator=g))
                keep[j, t0 : t0 + w] = 0.0
        x = x * keep.to(x.device, x.dtype)
    return x


class CTCTask:
    """GRU + CTC phoneme decoding on a prepared neural dataset (kind `neural`)."""

    select = "per"
    train_split, eval_split = "train", "test"

    def __init__(self, data: dict[str, Any], cfg: TrainConfig, seed: int, device: torch.device):
        self.manifest_path, self.dataset = data["manifest"], data.get("dataset")
        self.train, man = load_split(self.manifest_path, self.train_split)
        self.eval, _ = load_split(self.manifest_path, self.eval_split)
        self.device, self.seed, self.batch_size = device, seed, cfg.batch_size
        self.aug = Augment.from_dict(cfg.augment or {})
        self.vocab_size = int(man["n_classes"])
        if len(self.train) < cfg.batch_size:
            raise SeqlabError(
                f"{self.manifest_path}: {len(self.train)} training trials, fewer "
                f"than batch_size {cfg.batch_size}; lower batch_size"
            )
        need = {"n_days": int(man["n_days"]), "n_features": int(man["n_features"])}
        for key, value in need.items():  # the model's data-given sizes (cfg.model is ours)
            given = cfg.model.setdefault(key, value)
            if (key == "n_days" and given < value) or (key == "n_features" and given != value):
                raise SeqlabError(
                    f"train.model.{key}: {given}, but the data has {value}; "
                    "leave it out to take it from the data"
                )
        self.tokens_per_batch = int(cfg.batch_size * self.train.frame_lens.mean())

    def train_batch(self, index: int) -> dict[str, Any]:
        """Batch `index`: trials drawn without replacement by a (seed, index) generator."""
        rng = np.random.default_rng(batch_seed(self.seed, index, "batch"))
        idx = np.sort(rng.choice(len(self.train), self.batch_size, replace=False))
        b: dict[str, Any] = to_device(pad_batch(self.train, idx), self.device)
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


__all__ = ["Augment", "CTCTask", "NeuralSplit", "augment", "batch_seed"]
