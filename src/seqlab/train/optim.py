"""Optimizers and learning-rate schedules, built from the config's `optim` / `schedule` dicts.

`lr_at` is a pure function of the step, so a resumed trial needs only its step to continue
the schedule exactly (no scheduler state in the checkpoint).

The keys and their defaults are seqlab.config's `Optim` and `Schedule` (a plain dict is
taken too: missing keys take those defaults). Keys that do not apply to the chosen optimizer
(betas for sgd, momentum for adam) are ignored, so a grid can switch `name` over one base config.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from seqlab.config import Optim, Schedule, from_dict

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "inverse_sqrt", "linear")


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


def build_optimizer(model: nn.Module, cfg: Optim | dict[str, Any]) -> torch.optim.Optimizer:
    """torch's Adam / AdamW / SGD as configured, weight decay as torch implements it.

    Adam's weight_decay is coupled (L2 added to the gradient, then rescaled by Adam), AdamW's
    is decoupled (parameters shrunk by lr * wd). With weight_decay 0 the two are the same
    algorithm. weight_decay is always passed, so AdamW's torch default of 0.01 never applies
    silently.
    """
    c = from_dict(Optim, cfg, "optim")
    lr, wd = float(c.lr), float(c.weight_decay)
    groups = param_groups(model, wd, c.decay_2d_only)
    fused = c.fused
    if fused is None:  # auto, as nanoGPT: the fused kernel where it is known to pay, on CUDA
        fused = all(p.is_cuda for g in groups for p in g["params"])
    if c.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(c.momentum), fused=fused)
    opt_cls = torch.optim.AdamW if c.name == "adamw" else torch.optim.Adam
    return opt_cls(groups, lr=lr, betas=tuple(c.betas), eps=float(c.eps), fused=fused)


def lr_at(step: int, cfg: Schedule | dict[str, Any], base_lr: float, max_steps: int) -> float:
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
    c = from_dict(Schedule, cfg, "schedule")
    name, warmup, min_lr, warmup_init = c.name, c.warmup, c.min_lr, c.warmup_init
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


def effective_lr(
    step: int,
    schedule: Schedule | dict[str, Any],
    base_lr: float,
    max_steps: int,
    guard_scale: float,
    lr_floor: float,
) -> float:
    """The LR step `step` runs at: the schedule's, times the guard's cut scale, where a cut
    never takes it below `lr_floor`. The floor bounds cuts only: it never lifts the schedule
    above its own value (warmup from 0, a decay below the floor stay as scheduled)."""
    scheduled = lr_at(step, schedule, base_lr, max_steps)
    if guard_scale >= 1.0:
        return scheduled
    return max(scheduled * guard_scale, min(scheduled, lr_floor))


def clip_gradients(
    opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, params: Any, clip: float
) -> torch.Tensor:
    """Unscale the gradients (amp_fp16) and clip their global norm to `clip` (0: no clipping);
    returns the norm before clipping, left on the device."""
    scaler.unscale_(opt)
    return torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)


def optimizer_step(
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss: torch.Tensor,
    gnorm: torch.Tensor,
    guard: bool,
) -> None:
    """Step and zero the gradients, skipping a non-finite update when the guard is on.

    The skip is decided on the device where the optimizer takes a found_inf flag (torch's
    fused Adam/AdamW/SGD on CUDA: no host sync), else the flag is read on the host (CPU).
    GradScaler (amp_fp16) skips non-finite updates itself.
    """
    finite = torch.isfinite(loss) & torch.isfinite(gnorm)
    on_device = finite.is_cuda and getattr(opt, "_step_supports_amp_scaling", False)
    if scaler.is_enabled():
        scaler.step(opt)
        scaler.update()
    elif not guard:
        opt.step()
    elif on_device:
        opt.found_inf = (~finite).float().reshape(1)  # fused kernels leave params and state
        opt.step()
        del opt.found_inf
    elif bool(finite):
        opt.step()
    opt.zero_grad(set_to_none=True)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's LR in place (a tensor LR, as capturable/fused optimizers may keep,
    is filled rather than replaced so graphs that captured it see the new value)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
