"""What a finished trial publishes: `model.pt` (its best weights), then `metrics.json` (the
rule's target) last, so a job killed in between leaves no target that looks finished."""

from __future__ import annotations

import math
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import seqlab
from seqlab.files import write_json
from seqlab.models import count_params, model_spec
from seqlab.train.checkpoint import save_checkpoint
from seqlab.train.precision_modes import optim_state_dtypes

if TYPE_CHECKING:
    from seqlab.train.loop import Trial


def code_versions() -> dict[str, str]:
    src = Path(seqlab.__file__).resolve().parent
    try:
        git = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = "unknown"
    return {
        "seqlab": seqlab.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git": git,
    }


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_peak_rss"


def write_metrics(
    out: Path,
    trial: dict[str, Any],
    cfg: Any,
    task: Any,
    st: Any,
    model_file: dict[str, Any],
    device: torch.device,
    t_start: float,
    n_params: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish model.pt, then metrics.json (the rule's target) last. `cfg`, `task`, `st`:
    the loop's TrainConfig, Task (None: a skipped trial) and TrainerState."""
    # a skipped trial still publishes model.pt (the rule's output), saying why it has none
    save_checkpoint(out / "model.pt", model_file or {"model": None, **(extra or {})})
    mem, mem_kind = peak_memory_mb(device)
    g = (extra or {}).pop("guard", {})
    guard_counts = {
        "n_skipped": g.get("n_skipped", 0),
        "n_lr_cuts": g.get("n_cuts", 0),
        "n_rollbacks": g.get("n_rollbacks", 0),
    }
    final = st.last_eval
    metrics = {
        "experiment": trial.get("experiment"),
        "run": trial.get("run"),
        "seed": trial.get("seed"),
        "task": trial.get("task", "unit_lm"),
        "steps": st.step,
        "max_steps": cfg.max_steps,
        "stop_reason": st.stop_reason,
        "select_metric": task.select if task else None,
        "final_eval_loss": final.get("eval_loss", math.nan),
        "best_eval_loss": st.best_eval_loss,
        "best": st.best if math.isfinite(st.best) else math.nan,
        "best_step": st.best_step,
        "eval_loss_at": st.eval_at,
        "train_loss_at": st.train_loss_at,
        "final_train_loss": st.final_train_loss,
        "tokens_per_s": statistics.median(st.tok_s) if st.tok_s else math.nan,
        "ms_per_iter": statistics.median(st.ms_iter) if st.ms_iter else math.nan,
        "peak_mem_mb": mem,
        "peak_mem_kind": mem_kind,
        "wall_s": time.time() - t_start,
        "params": n_params,
        "precision": cfg.precision,  # the mode that ran (`auto` resolved)
        "precision_asked": trial.get("precision_asked", cfg.precision),
        **guard_counts,
        "device": str(device),
        "versions": code_versions(),
        "data": task.data_info() if task else {},
        "model_path": "model.pt" if model_file else None,  # None: skipped, no weights
        **{f"final_{k}": v for k, v in final.items() if k != "eval_loss"},
        **(extra or {}),
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def publish(
    trial: Trial, spec: dict[str, Any], tf32: dict[str, str], t_start: float
) -> dict[str, Any]:
    """model.pt from the intact best checkpoint, so its weights always match its step and
    metrics. When every copy of the best weights is lost, the final weights are published
    under their own step and scores instead, and the log, the console and metrics.json's
    `best_lost` say so."""
    st, task, dd = trial.st, trial.task, trial.dd
    best = trial.ckpt.load_best()
    if best is not None and best["step"] != st.best_step:  # never another step's weights
        best = None
    if best is None and (st.best_step >= 0 or trial.best_lost):
        lost_step = trial.best_lost["best_step"] if trial.best_lost else st.best_step
        then = f"final weights published as the best, step {st.step}"
        trial.best_lost = {"best_step": lost_step, "then": then}
        trial.log.open(st.step)
        trial.log.event(st.step, "best_lost", best_step=lost_step, then=then)
        trial.log.close()
        st.best, st.best_step = st.last_eval[task.select], st.step
    if best is None:
        best = {"model": trial.raw.state_dict(), "step": st.best_step, "eval": st.last_eval}
    model_file = {
        "model": best["model"],
        "model_config": model_spec(trial.raw),
        "vocab_size": task.vocab_size,
        "step": best["step"],
        "eval": best.get("eval", {}),
        "trial": spec,
        "fingerprint": trial.fingerprint,  # whose best weights these are (see _recover_best)
    }
    extra = {
        "world_size": dd.world,
        "tf32": tf32,
        "guard": trial.guard.state_dict(),
        "optim_state_dtypes": optim_state_dtypes(trial.opt),
        "param_dtype": str(trial.prec.param_dtype).removeprefix("torch."),
        "init_from": trial.init,
        "best_lost": trial.best_lost,
    }
    if hasattr(task, "perf_metrics"):  # optional Task hook: MFU for text_lm, per device
        tok_s = statistics.median(st.tok_s) if st.tok_s else math.nan
        extra.update(task.perf_metrics(tok_s / dd.world, trial.device))
    n_params = count_params(trial.raw)
    out = trial.out
    return write_metrics(
        out, spec, trial.cfg, task, st, model_file, trial.device, t_start, n_params, extra=extra
    )
