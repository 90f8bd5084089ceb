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

from seqlab.data.token_bins import read_bin
from seqlab.io import SeqlabError, read_json
from seqlab.models import GPTConfig, estimate_flops_per_token
from seqlab.train.config import TrainConfig
from seqlab.train.tasks import file_sha256, lm_loss

EVAL_SEED = 1337  # the fixed seed of evaluation offsets (the same batches for every trial)

#: dense (no sparsity) bf16 / fp16 tensor-core peak FLOP/s by device-name substring, from the
#: vendors' datasheets; the first match wins, so specific names come first.
PEAK_FLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10", 125e12),
    ("V100", 125e12),  # fp16 only; no bf16
]


def device_peak_flops(device: torch.device) -> tuple[float | None, str]:
    """(peak FLOP/s, what it is) of a CUDA device; (None, why) elsewhere or when unknown."""
    if device.type != "cuda":
        return None, f"no MFU on {device.type}: no tensor-core peak to compare against"
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_FLOPS:
        if key in name:
            return flops, f"{name}: dense bf16/fp16 tensor-core peak {flops / 1e12:.0f} TFLOP/s"
    return None, f"no MFU: peak FLOP/s of {name!r} unknown (add it to text_lm.PEAK_FLOPS)"


class TextLMTask:
    """Next-token prediction over train.bin / val.bin with random-offset batches."""

    select = "eval_loss"

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
                raise SeqlabError(f"{self.paths[split]}: {n} tokens, fewer than seq_len + 1 = "
                                  f"{self.T + 1}; use more data or a shorter seq_len")  # fmt: skip
        self.eval_batches = cfg.eval_batches
        self.tokens_per_batch = self.B * self.T
        self.model_cfg = dict(cfg.model)

    def _batch(self, split: str, offsets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        data = read_bin(self.paths[split])  # opened anew per batch, as nanoGPT
        rows = data[offsets[:, None] + np.arange(self.T + 1)]  # one gather, no loop over rows
        xy = torch.from_numpy(rows.astype(np.int64))
        x, y = xy[:, :-1], xy[:, 1:]
        if self.device.type == "cuda":  # pinned host memory lets the copy overlap compute
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(
                self.device, non_blocking=True
            )
        return x.to(self.device), y.to(self.device)

    def offsets(self, split: str, seed: int, index: int) -> np.ndarray:
        """The `batch_size` random start positions of micro-batch `index`: f(seed, index)."""
        rng = np.random.default_rng([seed, index])
        return rng.integers(0, self.sizes[split] - self.T - 1, self.B, endpoint=True)

    def train_batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._batch("train", self.offsets("train", self.seed, index))

    def loss(
        self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        x, y = batch
        return lm_loss(model(x), y)

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
            total, n = 0.0, 0
            for offs in self._eval_offsets(split):
                x, y = self._batch(split, offs)
                total += lm_loss(model(x), y).item() * y.numel()
                n += y.numel()
            out[key] = total / n if n else math.nan
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
        if self.model_cfg.get("arch") != "gpt2":
            return None
        fields = {f.name for f in dataclasses.fields(GPTConfig)}
        kw = {k: v for k, v in self.model_cfg.items() if k in fields}
        config = GPTConfig(**{**kw, "vocab_size": self.vocab_size, "block_size": self.T})
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
