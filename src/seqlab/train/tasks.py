"""Tasks: what a model learns from which batches and how it is scored.

The loop is task-agnostic: a task hands it micro-batches by index (so the data order is a
pure function of seed and step), a loss, and an evaluation whose `select` metric chooses the
best checkpoint (lower is better).
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from seqlab.config import TrainConfig
from seqlab.data.manifest import Manifest
from seqlab.data.store import open_split
from seqlab.data.unit_batches import StoreBatches, n_rows
from seqlab.errors import SeqlabError
from seqlab.files import file_sha256


class Task(Protocol):
    vocab_size: int  # classes the model predicts
    # optional: model_sizes: dict[str, int], model keys the data fixes (CTC: n_days, n_features)
    select: str  # evaluate() key that picks the best checkpoint (lower is better)
    tokens_per_batch: int  # tokens in one micro-batch, for tokens/s

    def train_batch(self, index: int) -> Any: ...
    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor: ...
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]: ...
    def data_info(self) -> dict[str, Any]: ...


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host batch onto the device. On CUDA from pinned memory and non_blocking: the copy is
    queued behind the running step instead of making the host wait for it."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def lm_eval_loss(model: torch.nn.Module, batches: Any, device: torch.device) -> float:
    """Token-weighted mean loss over (x, y) batches, summed on the device: one sync at the end
    (on CPU the same float64 sums as adding the per-batch floats)."""
    total, n = torch.zeros((), dtype=torch.float64, device=device), 0
    for x, y in batches:
        x, y = to_device(x, device), to_device(y, device)
        total += lm_loss(model(x), y).double() * y.numel()
        n += y.numel()
    return total.item() / n if n else math.nan


def lm_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats, computed in float32 whatever the precision."""
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


class LMTask:
    """What the language-model tasks share: (x, y) batches scored by `lm_loss`."""

    select = "eval_loss"

    def loss(
        self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        x, y = batch
        return lm_loss(model(x), y)


class UnitLMTask(LMTask):
    """Next-unit prediction over the packed token store (tokens: units, BOS, EOS; what each id
    means is seqlab.data.vocab)."""

    def __init__(self, data: dict[str, Any], cfg: TrainConfig, seed: int, device: torch.device):
        self.manifest = Manifest(data["manifest"])
        self.device = device
        self.vocab_size = self.manifest.n_token_ids
        self.eval_batches = cfg.eval_batches or None
        train, evals = (
            open_split(self.manifest.root, self.manifest.data, s).tokens for s in ("train", "eval")
        )
        for split, tokens in (("train", train), ("eval", evals)):
            if n_rows(len(tokens), cfg.seq_len) == 0:
                raise SeqlabError(
                    f"{self.manifest.path}: the {split} split holds {len(tokens)} tokens, fewer "
                    f"than one sequence of seq_len {cfg.seq_len} + 1; lower seq_len or add data"
                )
        rows = n_rows(len(train), cfg.seq_len)
        if rows < cfg.batch_size:
            raise SeqlabError(
                f"{self.manifest.path}: train split has {rows} sequences of {cfg.seq_len} "
                f"tokens, fewer than batch_size {cfg.batch_size}; use more data or a smaller batch"
            )
        self.train = StoreBatches(train, cfg.seq_len, cfg.batch_size, seed)
        self.eval = StoreBatches(evals, cfg.seq_len, cfg.batch_size, seed)
        self.tokens_per_batch = cfg.batch_size * cfg.seq_len

    def train_batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.train.batch(index)
        return to_device(x, self.device), to_device(y, self.device)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        return {
            "eval_loss": lm_eval_loss(model, self.eval.eval_batches(self.eval_batches), self.device)
        }

    def data_info(self) -> dict[str, Any]:
        return {
            "dataset": self.manifest.data.get("dataset"),
            "manifest_sha256": file_sha256(self.manifest.path),
            "train_sequences": len(self.train),
            "eval_sequences": len(self.eval),
        }


#: task name -> "module:Class"; a class takes (data, cfg, seed, device). Imported on use, so a
#: trial pays only for its own task.
TASKS: dict[str, str] = {
    "unit_lm": "seqlab.train.tasks:UnitLMTask",
    "text_lm": "seqlab.train.text_lm:TextLMTask",
    "ctc": "seqlab.train.ctc:CTCTask",
}


def build_task(trial: dict[str, Any], cfg: TrainConfig, device: torch.device) -> Task:
    name = trial.get("task", "unit_lm")
    if name not in TASKS:
        raise SeqlabError(f"task {name!r} is not available; known: {sorted(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)(
        trial["data"], cfg, int(trial["seed"]), device
    )
