"""Optimizers and learning-rate schedules, built from the config's `optim` / `schedule` dicts.

`lr_at` is a pure function of the step, so a resumed trial needs only its step to continue
the schedule exactly (no scheduler state in the checkpoint).

optim keys (defaults): name (required: adam | adamw | sgd), lr (required),
betas [0.9, 0.999], eps 1e-8, weight_decay 0.0, momentum 0.0 (sgd),
decay_2d_only false, fused null (= auto: on when every parameter is on CUDA).
Keys that do not apply to the chosen optimizer (betas for sgd, momentum for adam) are
ignored, so a grid can switch `name` over one base config.

schedule keys (defaults): name (constant | cosine | inverse_sqrt | linear, default constant),
warmup 0, warmup_init 0.0, min_lr 0.0.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from seqlab.io import SeqlabError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "inverse_sqrt", "linear")
OPTIM_DEFAULTS: dict[str, Any] = {
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.0,
    "momentum": 0.0,
    "decay_2d_only": False,
    "fused": None,
}
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "name": "constant",
    "warmup": 0,
    "warmup_init": 0.0,
    "min_lr": 0.0,
}


def _check_keys(section: str, cfg: dict[str, Any], valid: list[str]) -> None:
    for key in cfg:
        if key not in valid:
            raise SeqlabError(f"{section}.{key}: unknown key; valid keys: {valid}")


def _number(section: str, key: str, value: Any, lo: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= lo:
        raise SeqlabError(f"{section}.{key}: {value!r} must be a number >= {lo}")
    return float(value)


def param_groups(model: nn.Module, weight_decay: float, decay_2d_only: bool) -> list[dict]:
    """nanoGPT's split when decay_2d_only: decay every tensor with dim >= 2 (matmul weights and
    embeddings), none on dim < 2 (biases, LayerNorm gains). Tied tensors appear once."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not decay_2d_only:
        return [{"params": params, "weight_decay": weight_decay}]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """torch's Adam / AdamW / SGD as configured, weight decay as torch implements it.

    Adam's weight_decay is coupled (L2 added to the gradient, then rescaled by Adam), AdamW's
    is decoupled (parameters shrunk by lr * wd). With weight_decay 0 the two are the same
    algorithm. weight_decay is always passed, so AdamW's torch default of 0.01 never applies
    silently.
    """
    _check_keys("optim", cfg, ["name", "lr", *OPTIM_DEFAULTS])
    name = cfg.get("name")
    if name not in OPTIMIZERS:
        raise SeqlabError(f"optim.name: {name!r} is not one of {list(OPTIMIZERS)}")
    if "lr" not in cfg:
        raise SeqlabError("optim.lr: missing (the base learning rate)")
    c = {**OPTIM_DEFAULTS, **cfg}
    lr = _number("optim", "lr", c["lr"])
    wd = _number("optim", "weight_decay", c["weight_decay"])
    if not isinstance(c["decay_2d_only"], bool):
        raise SeqlabError(f"optim.decay_2d_only: {c['decay_2d_only']!r} must be true or false")
    if c["fused"] not in (None, True, False):
        raise SeqlabError(f"optim.fused: {c['fused']!r} must be true, false or null (auto)")
    groups = param_groups(model, wd, c["decay_2d_only"])
    fused = c["fused"]
    if fused is None:  # auto, as nanoGPT: the fused kernel where it is known to pay, on CUDA
        fused = all(p.is_cuda for g in groups for p in g["params"])
    if name == "sgd":
        momentum = _number("optim", "momentum", c["momentum"])
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, fused=fused)
    betas = c["betas"]
    if not (isinstance(betas, list | tuple) and len(betas) == 2):
        raise SeqlabError(f"optim.betas: {betas!r} must be a list of two numbers in [0, 1)")
    for b in betas:
        if not _number("optim", "betas", b) < 1.0:
            raise SeqlabError(f"optim.betas: {betas!r} must be a list of two numbers in [0, 1)")
    eps = _number("optim", "eps", c["eps"])
    opt_cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return opt_cls(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused)


def lr_at(step: int, cfg: dict[str, Any], base_lr: float, max_steps: int) -> float:
    """Learning rate of optimizer step `step` (0 = the first step); a pure function.

    Warmup (all schedules): for step < warmup the LR rises linearly,
    lr = warmup_init + (base_lr - warmup_init) * step / warmup, reaching base_lr at
    step == warmup. As in fairseq and Hugging Face, step 0 therefore runs at warmup_init
    (0 by default: Adam's moments are primed, parameters do not move); set warmup_init > 0
    to avoid that. After warmup:
      constant      base_lr
      cosine        min_lr + (base_lr - min_lr) * (1 + cos(pi * p)) / 2,
                    p = (step - warmup) / (max_steps - warmup); min_lr from max_steps on
      linear        base_lr - (base_lr - min_lr) * p; min_lr from max_steps on
      inverse_sqrt  fairseq's: base_lr * sqrt(warmup / step), so base_lr / 2 at 4 * warmup;
                    with warmup 0, base_lr / sqrt(max(step, 1)) (fairseq would give 0).
                    min_lr, when set, is a floor.
    """
    _check_keys("schedule", cfg, list(SCHEDULE_DEFAULTS))
    c = {**SCHEDULE_DEFAULTS, **cfg}
    name, warmup = c["name"], c["warmup"]
    if name not in SCHEDULES:
        raise SeqlabError(f"schedule.name: {name!r} is not one of {list(SCHEDULES)}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise SeqlabError(f"schedule.warmup: {warmup!r} must be an integer >= 0")
    min_lr = _number("schedule", "min_lr", c["min_lr"])
    warmup_init = _number("schedule", "warmup_init", c["warmup_init"])
    if step < 0:
        raise ValueError(f"step {step} < 0")
    if name in ("cosine", "linear") and warmup > max_steps:
        raise SeqlabError(f"schedule.warmup: {warmup} exceeds the {max_steps} training steps")

    if step < warmup:
        return warmup_init + (base_lr - warmup_init) * step / warmup
    if name == "constant":
        return base_lr
    if name == "inverse_sqrt":
        return max(min_lr, base_lr * math.sqrt(max(warmup, 1) / max(step, 1)))
    if step >= max_steps:
        return min_lr
    progress = (step - warmup) / (max_steps - warmup)
    if name == "cosine":
        return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr - (base_lr - min_lr) * progress  # linear


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's LR in place (a tensor LR, as capturable/fused optimizers may keep,
    is filled rather than replaced so graphs that captured it see the new value)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
