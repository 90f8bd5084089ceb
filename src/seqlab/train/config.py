"""The resolved training config of a trial: defaults, validation, dotted overrides."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from seqlab.io import SeqlabError

PRECISIONS = ("fp32", "amp_bf16", "bf16_pure", "amp_fp16", "fp16_naive")


@dataclass
class GuardConfig:
    """The stability guard (seed 003's adaptive LR, seed 004's roll back to the last good ckpt)."""

    enabled: bool = True
    gnorm_threshold: float = (
        0.0  # cut the LR when the grad norm exceeds this (0 = off; seed 003: 10)
    )
    max_skips: int = 3  # this many consecutive skipped (non-finite) updates also cut the LR
    spike_factor: float = 0.0  # loss > factor x recent mean -> roll back (0 = off; e.g. 2.0)
    spike_window: int = 20  # steps in the recent-loss mean used by spike detection
    lr_cut: float = 0.8  # multiply the LR by this on each cut
    lr_floor: float = 0.0  # never cut below this LR (nor lift the schedule above its own LR)
    max_cuts: int = 5  # at most this many cuts per trial
    max_rollbacks: int = 3  # at most this many roll-backs per trial, then spikes are only logged


@dataclass
class TrainConfig:
    """Everything the loop needs; every field is a config key under an experiment's `train:`."""

    model: dict[str, Any] = field(default_factory=lambda: {"arch": "lstm"})
    optim: dict[str, Any] = field(default_factory=lambda: {"name": "adam", "lr": 1e-3})
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "constant"})
    max_steps: int = 100  # optimizer steps
    batch_size: int = 32  # sequences per micro-batch (per device under DDP)
    seq_len: int = 128  # tokens per sequence (inputs; targets are shifted by one)
    grad_accum: int = 1  # micro-batches per optimizer step
    grad_clip: float = 0.0  # max global grad norm (0 = no clipping)
    precision: str = "fp32"  # one of PRECISIONS
    eval_interval: int = 50  # evaluate every N steps (and at milestones and the last step)
    eval_batches: int = 0  # batches of the eval split per evaluation (0 = all of it)
    ckpt_interval: int = 50  # write a resumable checkpoint every N steps
    log_interval: int = 10  # one log line / log.jsonl record every N steps
    patience: int = 0  # early stop after N evaluations without improvement (0 = off)
    min_delta: float = 0.0  # an improvement must beat the best by more than this
    milestones: list[int] = field(default_factory=lambda: [40, 100, 1000])
    keep_steps: list[int] = field(default_factory=list)  # also keep ckpt/step{N}.pt (weights)
    threads: int = 1  # torch intra-op threads (1 per job beats 2 threads in one job)
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False  # torch.compile the model
    tf32: bool = False  # let fp32 matmuls/convs use TF32 on CUDA (nanoGPT: on); in metrics
    augment: dict[str, Any] = field(default_factory=dict)  # task ctc: data augmentation keys
    guard: GuardConfig = field(default_factory=GuardConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "train") -> TrainConfig:
        """Build from a plain dict, rejecting unknown keys with the key's dotted name."""
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                raise SeqlabError(f"{where}.{k}: unknown training key; valid: {sorted(known)}")
        d = dict(d)
        g = d.pop("guard", {}) or {}
        gknown = {f.name for f in fields(GuardConfig)}
        for k in g:
            if k not in gknown:
                raise SeqlabError(f"{where}.guard.{k}: unknown guard key; valid: {sorted(gknown)}")
        cfg = cls(**d, guard=GuardConfig(**g))
        if cfg.precision not in PRECISIONS:
            raise SeqlabError(f"{where}.precision: {cfg.precision!r} is not one of {PRECISIONS}")
        for name in ("max_steps", "batch_size", "seq_len", "grad_accum", "eval_interval",
                     "ckpt_interval", "log_interval"):  # fmt: skip
            if getattr(cfg, name) < 1:
                raise SeqlabError(f"{where}.{name}: must be >= 1, got {getattr(cfg, name)}")
        if cfg.guard.max_skips < 1:
            raise SeqlabError(f"{where}.guard.max_skips: must be >= 1, got {cfg.guard.max_skips}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_dotted(d: dict[str, Any], key: str) -> Any:
    """`get_dotted({"optim": {"lr": 1}}, "optim.lr") == 1`; KeyError if any part is missing."""
    cur: Any = d
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(key)
        cur = cur[part]
    return cur


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with dotted `overrides` applied; a key must already exist in base."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        parts = key.split(".")
        cur = out
        for p in parts[:-1]:
            if not isinstance(cur.get(p), dict):
                raise SeqlabError(f"override {key!r}: {p!r} is not a section of the base config")
            cur = cur[p]
        if parts[-1] not in cur:
            raise SeqlabError(
                f"override {key!r}: no such key in the base config "
                f"(has {sorted(cur)}); fix the grid/variant or add the key to `train:`"
            )
        cur[parts[-1]] = copy.deepcopy(value)
    return out
