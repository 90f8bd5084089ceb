"""What a checkpoint may continue: a trial resumes only where the uninterrupted trial of its
current config would pass, so what it publishes is what that config produces.

A checkpoint records a fingerprint of what shapes the weights' trajectory and the choice of
the best checkpoint; `refusal` says why a state cannot be continued (the loop then discards
every checkpoint and starts afresh, saying why in `log.jsonl`); `newest_resumable` finds the
state a rerun continues.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import torch

from seqlab.config import TrainConfig
from seqlab.train.checkpoint import Checkpointer, shape_misfit

#: train keys that change neither the weights' trajectory nor which checkpoint is best: a
#: checkpoint made under other values of these is resumed (a larger max_steps continues a
#: finished trial, unless the schedule decays towards max_steps). The evaluation keys are not
#: among them: they decide the best checkpoint, so a change to them retrains.
BOOKKEEPING = {
    "max_steps",
    "ckpt_interval",
    "log_interval",
    "keep_steps",
    "threads",
    "device",
    "compile",
}
#: schedules whose learning rate at every step depends on max_steps (optim.lr_at)
DECAYS_TO_MAX_STEPS = {"cosine", "linear"}


def trajectory_fingerprint(
    trial: dict[str, Any], data: dict[str, Any], world: int, init: dict[str, Any] | None = None
) -> str:
    """What a checkpoint must match to be resumed: the trajectory-relevant config, the data
    (the manifest's hash), the number of processes and the starting weights' hash."""
    t = trial["train"]
    horizon = t.get("schedule", {}).get("name") in DECAYS_TO_MAX_STEPS
    train = {k: v for k, v in t.items() if k not in BOOKKEEPING or (k == "max_steps" and horizon)}
    payload = {
        "train": train,
        "seed": trial["seed"],
        "task": trial.get("task"),
        "data": data.get("manifest_sha256"),
        "world": world,
    }
    if init is not None:  # other starting weights are another trial (the same re-saved are not)
        payload["init"] = init["weights_sha256"]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def refusal(
    state: dict[str, Any],
    fingerprint: str,
    cfg: TrainConfig,
    model: torch.nn.Module,
    ckpt: Checkpointer,
    log_kept: bool,
    best: int | None,
) -> str | None:
    """Why `state` cannot continue the trial an uninterrupted run of `cfg` would be, or None
    (`best`: the step of best.pt, which may be newer than the state)."""
    step = int(state["trainer"]["step"])
    if state.get("fingerprint") != fingerprint:
        return "config or data changed"
    if not log_kept:
        return "log.jsonl and its copy missing"
    if step > cfg.max_steps:
        return f"made at step {step}, past max_steps {cfg.max_steps}"
    on_grid = lambda s: s % cfg.eval_interval == 0 or s in cfg.milestones  # noqa: E731
    if not on_grid(step) and state["trainer"]["last_eval_step"] == step < cfg.max_steps:
        return f"step {step} was evaluated as the last step; a longer trial would not be"
    # a best.pt written after this state is written again by the replay, if it evaluates it
    if best is not None and best > step and not (best <= cfg.max_steps and on_grid(best)):
        return f"best.pt is from step {best}, which this trial does not evaluate"
    lost = [k for k in cfg.keep_steps if 0 < k <= step and not ckpt.kept(k).exists()]
    if lost:
        return f"keep_steps asks for step {lost[0]}, which this checkpoint is past"
    misfit = shape_misfit(state["model"], model)
    return f"its weights do not fit the model ({misfit})" if misfit else None


@dataclass
class Resumable:
    """What `newest_resumable` found in a trial's ckpt/."""

    state: dict[str, Any] | None  # the state to continue; None: start afresh
    best: dict[str, Any] | None  # best.pt as it was found (it may be newer than the state)
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (path, why), removed
    refused: str | None = None  # why the newest intact state was discarded, if it was


def newest_resumable(
    ckpt: Checkpointer, fingerprint: str, cfg: TrainConfig, model: torch.nn.Module, log_kept: bool
) -> Resumable:
    """The newest intact state this trial may continue (`refusal`); a refused one discards
    every checkpoint. `log_kept`: the trial's earlier records exist (a resumed log continues
    them; without any the curve would start mid-way, so the trial is retrained whole)."""
    found = Resumable(None, ckpt.load_best())
    best_step = None if found.best is None else found.best["step"]
    refused: list[str] = []

    def accept(state: dict[str, Any]) -> bool:
        why = refusal(state, fingerprint, cfg, model, ckpt, log_kept, best_step)
        refused.extend([why] if why else [])
        return why is None

    found.state, discarded = ckpt.load_state(accept, lambda p, why: found.corrupt.append((p, why)))
    found.refused = refused[0] if discarded else None
    return found


def restore_best(ckpt: Checkpointer, fingerprint: str, best_step: int) -> bool:
    """Write a lost best.pt again from model.pt, a verified copy of the best weights, when it
    is of this trajectory and of `best_step`; False when it is not (or is gone)."""
    published = ckpt.load_published(fingerprint)
    if published is None or published["step"] != best_step:
        return False
    ckpt.save_best(published["model"], best_step, published["eval"])
    return True
