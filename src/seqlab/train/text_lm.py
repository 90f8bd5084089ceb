"""The `text_lm` task: next-token prediction on nanoGPT token bins, scored by loss and speed.

Batches as nanoGPT's get_batch: `batch_size` random offsets into train.bin, x = data[i:i+T],
y = data[i+1:i+1+T], the memmap opened anew for every batch (a long-lived memmap's touched
pages accumulate in the process's memory). Unlike nanoGPT the offsets come from a generator
seeded with (seed, micro-batch index), not from a global RNG, so the data order is a pure
function of (seed, step) and a resumed trial draws exactly the batches it would have drawn.

Evaluation: `eval_batches` batches of val.bin (and of train.bin, nanoGPT's estimate_loss) at
offsets from a FIXED seed, identical for every trial, so precision modes and seeds are scored
on the same tokens; eval_batches 0 walks val.bin once in consecutive windows.

MFU (GPU only): nanoGPT's estimate (PaLM appendix B), flops per token 6N + 12 L H Q T with T
the trained sequence length, times tokens/s, over the device's dense bf16 tensor-core peak.
On CPU it is null: there is no meaningful published peak to divide by.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlab.config import GPTModel, TrainConfig
from seqlab.data.token_bins import read_bin
from seqlab.errors import SeqlabError
from seqlab.files import file_sha256, read_json
from seqlab.models import GPTConfig, estimate_flops_per_token
from seqlab.train.precision_modes import device_peak_flops
from seqlab.train.tasks import LMTask, lm_eval_loss, to_device

EVAL_SEED = 1337  # the fixed seed of evaluation offsets (the same batches for every trial)


class TextLMTask(LMTask):
    """Next-token prediction over train.bin / val.bin with random-offset batches."""

    def __init__(self, data: dict[str, Any], cfg: TrainConfig, seed: int, device: torch.device):
        self.manifest_path = Path(data["manifest"])
        man = read_json(self.manifest_path)
        if man.get("kind") != "token_bins":
            raise SeqlabError(
                f"{self.manifest_path}: task text_lm needs a token-bin dataset "
                f"(synthetic_text_bins or token_bins), got {man.get('kind')!r}"
            )
        self.man, self.device, self.seed = man, device, seed
        self.vocab_size = int(man["vocab_size"])
        self.paths = {
            s: self.manifest_path.parent / man["splits"][s]["path"] for s in ("train", "val")
        }
        self.T, self.B = cfg.seq_len, cfg.batch_size
        self.sizes = {s: len(read_bin(p)) for s, p in self.paths.items()}
        for split, n in self.sizes.items():
            if n <= self.T + 1:
                raise SeqlabError(
                    f"{self.paths[split]}: {n} tokens, fewer than seq_len + 1 = "
                    f"{self.T + 1}; use more data or a shorter seq_len"
                )
        self.eval_batches = cfg.eval_batches
        self.tokens_per_batch = self.B * self.T
        self.model_cfg = cfg.model

    def _host_batch(self, split: str, offsets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        data = read_bin(self.paths[split])  # opened anew per batch, as nanoGPT
        rows = data[offsets[:, None] + np.arange(self.T + 1)]  # one gather, no loop over rows
        xy = torch.from_numpy(rows.astype(np.int64))
        return xy[:, :-1], xy[:, 1:]

    def offsets(self, split: str, seed: int, index: int) -> np.ndarray:
        """The `batch_size` random start positions of micro-batch `index`: f(seed, index)."""
        rng = np.random.default_rng([seed, index])
        return rng.integers(0, self.sizes[split] - self.T - 1, self.B, endpoint=True)

    def train_batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._host_batch("train", self.offsets("train", self.seed, index))
        return to_device(x, self.device), to_device(y, self.device)

    def _eval_offsets(self, split: str) -> list[np.ndarray]:
        if self.eval_batches:
            return [self.offsets(split, EVAL_SEED, i) for i in range(self.eval_batches)]
        starts = np.arange(0, self.sizes[split] - self.T, self.T)  # consecutive windows
        return [starts[i : i + self.B] for i in range(0, len(starts), self.B)]

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        out = {}
        for split, key in (("val", "eval_loss"), ("train", "eval_train_loss")):
            if split == "train" and not self.eval_batches:
                continue  # walking all of train.bin (9B tokens for OpenWebText) is not an eval
            batches = (self._host_batch(split, offs) for offs in self._eval_offsets(split))
            out[key] = lm_eval_loss(model, batches, self.device)
        return out

    def data_info(self) -> dict[str, Any]:
        return {
            "dataset": self.man.get("dataset"),
            "manifest_sha256": file_sha256(self.manifest_path),
            "train_tokens": self.sizes["train"],
            "val_tokens": self.sizes["val"],
            "vocab_size": self.vocab_size,
        }

    def flops_per_token(self) -> int | None:
        """nanoGPT's 6N + 12 L H Q T at the trained T (None for non-GPT models)."""
        if not isinstance(self.model_cfg, GPTModel):
            return None
        spec = {**dataclasses.asdict(self.model_cfg), "block_size": self.T}
        config = GPTConfig(**spec, vocab_size=self.vocab_size)
        return estimate_flops_per_token(config)

    def perf_metrics(self, tokens_per_s: float, device: torch.device) -> dict[str, Any]:
        """MFU and what it was computed against (null with the reason where it is not)."""
        fpt = self.flops_per_token()
        peak, what = device_peak_flops(device)
        mfu = None
        if fpt and peak and math.isfinite(tokens_per_s):
            mfu = fpt * tokens_per_s / peak
        elif fpt is None:
            what = "no MFU: the flops formula is GPT-2's and the model is not"
        return {"flops_per_token": fpt, "mfu": mfu, "mfu_reference": what}
