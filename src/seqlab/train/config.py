"""The resolved training config of a trial, as the loop reads it (validated by seqlab.config)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from seqlab.config import PRECISIONS, Train, apply_overrides  # noqa: F401 (re-exported)
from seqlab.config_load import check_params


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
    init_from: str | None = None  # start from these weights (a model.pt or ckpt/*.pt file)
    threads: int = 1  # torch intra-op threads (1 per job beats 2 threads in one job)
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False  # torch.compile the model
    tf32: bool = False  # let fp32 matmuls/convs use TF32 on CUDA (nanoGPT: on); in metrics
    augment: dict[str, Any] = field(default_factory=dict)  # task ctc: data augmentation keys
    guard: GuardConfig = field(default_factory=GuardConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "train") -> TrainConfig:
        """Validate a plain `train:` dict at every depth (seqlab.config.Train) and fill every
        default; model/optim/schedule/augment stay plain dicts, guard becomes a GuardConfig."""
        v = check_params(Train, d, where)
        known = {f.name for f in fields(cls)}
        return cls(
            **{k: x for k, x in v.items() if k in known and k != "guard"},
            guard=GuardConfig(**v["guard"]),
        )
