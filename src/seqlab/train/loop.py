"""The training loop: one for every task, readable top to bottom.

Input: a resolved trial config (what `config.json` holds). Output, in the trial directory:
`metrics.json`, `log.jsonl`, `model.pt` (the best checkpoint by the task's real eval metric).
Resumable state lives in `ckpt/` (`last.pt`, `best.pt`): rerunning a killed trial continues
from `last.pt` and, on CPU, ends bitwise where an uninterrupted run would, because the data
order is a function of (seed, step) and the RNG state is checkpointed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

import seqlab
from seqlab.io import atomic_write, write_json
from seqlab.models import build_model, count_params, model_spec
from seqlab.train import distributed
from seqlab.train.checkpoint import load_checkpoint, save_checkpoint
from seqlab.train.config import TrainConfig
from seqlab.train.optim import build_optimizer, lr_at, set_lr
from seqlab.train.precision import (
    Precision,
    optim_state_dtypes,
    set_tf32,
    unsupported_reason,
)
from seqlab.train.tasks import Task, build_task


class Preempted(Exception):
    """Raised after a stop request (SIGTERM, Slurm's warning signal) once the state is saved."""


@dataclass
class TrainerState:
    """Everything besides weights and optimizer that a resumed trial must get back."""

    step: int = 0
    best: float = math.inf
    best_step: int = -1
    bad_evals: int = 0
    lr_scale: float = 1.0
    n_cuts: int = 0
    n_skipped: int = 0
    consecutive_skips: int = 0
    n_rollbacks: int = 0
    last_eval_step: int = -1
    last_eval: dict[str, float] = field(default_factory=dict)
    eval_at: dict[str, float] = field(default_factory=dict)
    train_loss_at: dict[str, float] = field(default_factory=dict)
    recent: list[float] = field(default_factory=list)
    tok_s: list[float] = field(default_factory=list)
    ms_iter: list[float] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""


#: trainer fields a rollback keeps (the measurements and the guard's own state)
ROLLBACK_KEEPS = ("lr_scale", "n_cuts", "n_rollbacks", "n_skipped", "best", "best_step",
                  "bad_evals")  # fmt: skip
#: train keys that do not change the weights' trajectory: a checkpoint made under other values
#: of these is resumed (e.g. a larger max_steps continues a finished trial)
BOOKKEEPING = {"max_steps", "eval_interval", "eval_batches", "ckpt_interval", "log_interval",
               "patience", "min_delta", "milestones", "keep_steps", "threads", "device",
               "compile"}  # fmt: skip


def trajectory_fingerprint(trial: dict[str, Any], data: dict[str, Any], world: int) -> str:
    """What a checkpoint must match to be resumed: the trajectory-relevant config, the data
    (the manifest's hash) and the number of processes."""
    train = {k: v for k, v in trial["train"].items() if k not in BOOKKEEPING}
    payload = {"train": train, "seed": trial["seed"], "task": trial.get("task"),
               "data": data.get("manifest_sha256"), "world": world}  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _silent(_line: str) -> None:
    """The echo of ranks other than 0."""


def code_versions() -> dict[str, str]:
    src = Path(seqlab.__file__).resolve().parent
    try:
        git = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
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


def train(
    trial: dict[str, Any],
    out_dir: str | Path,
    should_stop: Callable[[], bool] = lambda: False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one trial to completion (or resume it) and write its outputs; returns metrics."""
    cfg = TrainConfig.from_dict(trial["train"])
    out, ckpt_dir = Path(out_dir), Path(out_dir) / "ckpt"
    torch.set_num_threads(cfg.threads)
    dd, device = distributed.setup(cfg.device)
    if not dd.main:
        echo = _silent
    seed = int(trial["seed"])
    t_start = time.time()
    tf32 = set_tf32(cfg.tf32)  # explicit and recorded: "fp32" means IEEE fp32 unless tf32
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # this trial's peak, not the process's

    reason = unsupported_reason(cfg.precision, device)
    if reason is not None:  # a precision this device cannot run: recorded, not failed
        echo(f"skipping trial: {reason}")
        dd.close()
        if not dd.main:
            return {"stop_reason": "unsupported", "rank": dd.rank}
        return _finish(out, trial, cfg, None, TrainerState(stop_reason="unsupported"), {}, device,
                       t_start, 0, extra={"skip_reason": reason})  # fmt: skip

    torch.manual_seed(seed)  # fixes the initialisation; the task fixes the data order
    task: Task = build_task(trial, cfg, device)
    prec = Precision(cfg.precision, device.type)
    raw_model = build_model(cfg.model, task.vocab_size).to(device=device, dtype=prec.param_dtype)
    model = torch.compile(raw_model) if cfg.compile else raw_model
    if dd.enabled:
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = build_optimizer(raw_model, cfg.optim)
    scaler = prec.scaler()
    base_lr = float(cfg.optim["lr"])
    st = TrainerState()
    fingerprint = trajectory_fingerprint(trial, task.data_info(), dd.world)

    def save(path: Path) -> None:
        rng = dd.gather_rng()  # a collective: every rank takes part, rank 0 writes
        if dd.main:
            save_checkpoint(path, {
                "model": raw_model.state_dict(), "optim": opt.state_dict(),
                "scaler": scaler.state_dict(), "rng": rng,
                "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                "trainer": asdict(st), "fingerprint": fingerprint,
            })  # fmt: skip
        dd.barrier()

    def restore(ck: dict[str, Any], trainer_too: bool) -> None:
        """ck loaded on the CPU: RNG states must stay CPU tensors; load_state_dict moves the
        weights and the optimizer state to their parameters' device."""
        raw_model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng"][min(dd.rank, len(ck["rng"]) - 1)])
        if ck["cuda_rng"]:
            torch.cuda.set_rng_state_all(ck["cuda_rng"])
        if trainer_too:
            st.__dict__.update(TrainerState(**ck["trainer"]).__dict__)

    def event(name: str, **info: Any) -> None:
        st.log.append({"kind": "event", "step": st.step, "event": name, **info})
        echo(f"step {st.step} | event {name} " + " ".join(f"{k}={v}" for k, v in info.items()))

    def cut_lr(why: str) -> None:
        g = cfg.guard
        lr_now = lr_at(st.step, cfg.schedule, base_lr, cfg.max_steps) * st.lr_scale
        if st.n_cuts >= g.max_cuts or lr_now <= g.lr_floor:
            return
        st.lr_scale *= g.lr_cut
        st.n_cuts += 1
        event("lr_cut", why=why, lr_scale=round(st.lr_scale, 6), n_cuts=st.n_cuts)

    def evaluate() -> None:
        model.eval()
        with prec.autocast():
            res = task.evaluate(raw_model if dd.enabled else model)
        model.train()
        st.last_eval, st.last_eval_step = res, st.step
        st.log.append({"kind": "eval", "step": st.step, **res})
        if st.step in cfg.milestones:  # eval_loss_at: the loss, whatever picks the best
            st.eval_at[str(st.step)] = res.get("eval_loss", res[task.select])
        value = res[task.select]
        echo(f"step {st.step} | eval " + " | ".join(f"{k} {v:.4f}" for k, v in res.items()))
        if math.isfinite(value) and value < st.best - cfg.min_delta:
            st.best, st.best_step, st.bad_evals = value, st.step, 0
            if dd.main:
                save_checkpoint(ckpt_dir / "best.pt", {"model": raw_model.state_dict(),
                                                    "step": st.step, "eval": res})  # fmt: skip
        elif st.step > 0:
            st.bad_evals += 1
            if cfg.patience and st.bad_evals >= cfg.patience:
                st.stop_reason = "early_stop"
                event("early_stop", best_step=st.best_step, patience=cfg.patience)

    resumed = False
    if (ckpt_dir / "last.pt").exists():
        ck = load_checkpoint(ckpt_dir / "last.pt")
        if ck.get("fingerprint") == fingerprint:
            restore(ck, trainer_too=True)
            event("resume", from_step=st.step)
            resumed = True
        else:  # made by another config or other data: resuming would publish stale results
            if dd.main:
                for old in ckpt_dir.glob("*.pt"):
                    old.unlink()
            dd.barrier()
            event("ckpt_discarded", why="config or data changed since the checkpoint")
    if not resumed:
        evaluate()  # step 0: the untrained loss, the start of every curve

    model.train()
    accum = cfg.grad_accum
    t_last, steps_since = time.perf_counter(), 0
    while st.step < cfg.max_steps and not st.stop_reason:
        lr = lr_at(st.step, cfg.schedule, base_lr, cfg.max_steps) * st.lr_scale
        if st.lr_scale < 1.0:
            lr = max(lr, cfg.guard.lr_floor)
        set_lr(opt, lr)
        loss_sum = 0.0
        for micro in range(accum):
            batch = task.train_batch((st.step * accum + micro) * dd.world + dd.rank)
            sync = not dd.enabled or micro == accum - 1  # DDP all-reduces on the last only
            with prec.autocast(), contextlib.nullcontext() if sync else model.no_sync():
                loss = task.loss(model, batch)
                scaler.scale(loss / accum).backward()
            loss_sum += loss.item()
        train_loss = dd.mean(loss_sum / accum)  # every rank decides skips on the same number
        scaler.unscale_(opt)
        clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        gnorm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), clip).item()
        finite = math.isfinite(train_loss) and math.isfinite(gnorm)
        if scaler.is_enabled():
            scaler.step(opt)  # skips the update itself on inf/nan grads, then lowers the scale
            scaler.update()
        elif finite or not cfg.guard.enabled:
            opt.step()
        opt.zero_grad(set_to_none=True)
        st.step += 1
        steps_since += 1

        # the stability guard: skip non-finite updates, cut the LR, roll back after a spike
        g = cfg.guard
        st.consecutive_skips = 0 if finite else st.consecutive_skips + 1  # GradScaler's too
        if not math.isfinite(train_loss) and (
            not g.enabled or st.consecutive_skips >= 10 * g.max_skips
        ):
            st.stop_reason = "diverged"
            event("diverged", loss=train_loss)
            break
        if not finite and not scaler.is_enabled() and g.enabled:
            st.n_skipped += 1
            event("skip_update", loss=train_loss, gnorm=gnorm)
            if st.consecutive_skips % g.max_skips == 0:
                cut_lr(f"{st.consecutive_skips} consecutive non-finite updates")
        elif finite:
            if g.enabled and g.gnorm_threshold and gnorm > g.gnorm_threshold:
                cut_lr(f"grad norm {gnorm:.2f} > {g.gnorm_threshold}")
            window = st.recent[-g.spike_window :]
            spiking = g.enabled and g.spike_factor and len(window) >= max(2, g.spike_window // 2)
            if spiking and train_loss > g.spike_factor * statistics.fmean(window):
                if st.n_rollbacks < g.max_rollbacks and (ckpt_dir / "last.pt").exists():
                    to_step, kept = st.step, dict(st.__dict__)
                    restore(load_checkpoint(ckpt_dir / "last.pt"), trainer_too=True)
                    # weights, optimizer, RNG and step go back; what was measured stays
                    for k in ROLLBACK_KEEPS:
                        setattr(st, k, kept[k])
                    st.n_rollbacks += 1
                    st.log = [
                        e for e in kept["log"] if e["kind"] == "event" or e["step"] <= st.step
                    ]
                    event("rollback", loss=train_loss, from_step=to_step, to_step=st.step)
                    cut_lr("loss spike")
                    continue
                event("spike", loss=train_loss, rollbacks_left=0)
            st.recent = (st.recent + [train_loss])[-g.spike_window :]
        if st.step in cfg.milestones:
            st.train_loss_at[str(st.step)] = train_loss

        if st.step % cfg.log_interval == 0 or st.step == cfg.max_steps:
            dt = time.perf_counter() - t_last
            tok_s = steps_since * accum * dd.world * task.tokens_per_batch / dt
            if st.step > cfg.log_interval:  # the first interval is warm-up, kept out of medians
                st.tok_s.append(tok_s)
                st.ms_iter.append(1000 * dt / steps_since)
            st.log.append({"kind": "train", "step": st.step, "loss": train_loss, "lr": lr,
                           "gnorm": gnorm, "tok_s": tok_s})  # fmt: skip
            echo(f"step {st.step} | loss {train_loss:.4f} | tok/s {tok_s / 1000:.0f}k | "
                 f"lr {lr:.2e} | gnorm {gnorm:.2f}")  # fmt: skip
            t_last, steps_since = time.perf_counter(), 0
        t_side = time.perf_counter()  # eval and checkpoint time stay out of tok/s and ms/iter
        if (
            st.step % cfg.eval_interval == 0
            or st.step in cfg.milestones
            or st.step == cfg.max_steps
        ):
            evaluate()
        if st.step in cfg.keep_steps and dd.main:  # weights only, for evaluations over steps
            save_checkpoint(ckpt_dir / f"step{st.step}.pt",
                            {"model": raw_model.state_dict(), "step": st.step})  # fmt: skip
        stop_now = dd.any(should_stop()) and st.step < cfg.max_steps
        if stop_now:
            event("preempted")
        if st.step % cfg.ckpt_interval == 0 or stop_now:
            save(ckpt_dir / "last.pt")
        t_last += time.perf_counter() - t_side
        if stop_now:
            dd.close()
            raise Preempted(f"stopped at step {st.step}; checkpoint saved, rerun to resume")

    if st.last_eval_step != st.step:
        evaluate()
    st.stop_reason = st.stop_reason or "max_steps"
    n_params = count_params(raw_model)
    dd.barrier()
    dd.close()
    if not dd.main:  # rank 0 alone writes the outputs
        return {"steps": st.step, "stop_reason": st.stop_reason, "rank": dd.rank}
    best = ckpt_dir / "best.pt"
    best_state = load_checkpoint(best)["model"] if best.exists() else raw_model.state_dict()
    model_file = {"model": best_state, "model_config": model_spec(raw_model),
                  "vocab_size": task.vocab_size, "step": st.best_step, "trial": trial}  # fmt: skip
    extra = {"world_size": dd.world, "tf32": tf32, "optim_state_dtypes": optim_state_dtypes(opt),
             "param_dtype": str(prec.param_dtype).removeprefix("torch.")}  # fmt: skip
    if hasattr(task, "perf_metrics"):  # optional Task hook: MFU for text_lm, per device
        tok_s = statistics.median(st.tok_s) if st.tok_s else math.nan
        extra.update(task.perf_metrics(tok_s / dd.world, device))
    return _finish(out, trial, cfg, task, st, model_file, device, t_start, n_params,
                   extra=extra)  # fmt: skip


def _finish(
    out: Path,
    trial: dict[str, Any],
    cfg: TrainConfig,
    task: Task | None,
    st: TrainerState,
    model_file: dict[str, Any],
    device: torch.device,
    t_start: float,
    n_params: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish model.pt, log.jsonl, then metrics.json (the rule's target) last."""
    # a skipped trial still publishes model.pt (the rule's output), saying why it has none
    save_checkpoint(out / "model.pt", model_file or {"model": None, **(extra or {})})
    lines = "".join(json.dumps(e) + "\n" for e in st.log)
    atomic_write(out / "log.jsonl", lambda tmp: tmp.write_text(lines))
    mem, mem_kind = peak_memory_mb(device)
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
        "best_eval_loss": min(
            (e["eval_loss"] for e in st.log if e["kind"] == "eval"), default=math.nan
        ),
        "best": st.best if math.isfinite(st.best) else math.nan,
        "best_step": st.best_step,
        "eval_loss_at": st.eval_at,
        "train_loss_at": st.train_loss_at,
        "final_train_loss": next(
            (e["loss"] for e in reversed(st.log) if e["kind"] == "train"), math.nan
        ),
        "tokens_per_s": statistics.median(st.tok_s) if st.tok_s else math.nan,
        "ms_per_iter": statistics.median(st.ms_iter) if st.ms_iter else math.nan,
        "peak_mem_mb": mem,
        "peak_mem_kind": mem_kind,
        "wall_s": time.time() - t_start,
        "params": n_params,
        "precision": cfg.precision,
        "n_skipped": st.n_skipped,
        "n_lr_cuts": st.n_cuts,
        "n_rollbacks": st.n_rollbacks,
        "device": str(device),
        "versions": code_versions(),
        "data": task.data_info() if task else {},
        "model_path": "model.pt" if model_file else None,  # None: skipped, no weights
        **{f"final_{k}": v for k, v in final.items() if k != "eval_loss"},
        **(extra or {}),
    }
    write_json(out / "metrics.json", metrics)
    return metrics
