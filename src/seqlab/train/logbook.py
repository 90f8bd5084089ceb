"""What a running trial writes as it goes: `log.jsonl`, TensorBoard scalars, the human line.

`log.jsonl` holds one JSON object per record, appended and flushed as it happens, so a
running trial's curve is on disk (and `seqlab status` can read it). Record kinds:

    train  {step, loss, lr, gnorm, tok_s, time}
    eval   {step, <metric>: value ..., time}
    event  {step, event, <info> ..., time}

`time` is unix seconds. A resumed trial keeps the records up to its checkpoint's step and
drops the ones a killed run wrote after it (they are replayed), so the file has neither
duplicates nor gaps. Every record also goes to `ckpt/log.jsonl`: Snakemake deletes a job's
declared outputs (log.jsonl among them) before it reruns the job, and a resumed trial takes
its earlier records from that copy. The same numbers go to TensorBoard event files in the
trial directory (tags train/loss, train/lr, train/grad_norm, train/tokens_per_s,
eval/<metric>, events as text), so `tensorboard --logdir results/<exp>` shows
runs/<run>/seed<k> side by side.
`add_scalars` lets evaluation code add its scores (sWUGGY, PER) to a trial's events later.
At the end, `write_metrics` publishes model.pt and metrics.json (the rule's target) last.
"""

from __future__ import annotations

import math
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import seqlab
from seqlab.files import atomic_write, json_line, read_jsonl, write_failure, write_json
from seqlab.train.checkpoint import save_checkpoint

LOG = "log.jsonl"


def read_log(trial_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a trial's log.jsonl (a torn last line left out: seqlab.files.read_jsonl)."""
    return read_jsonl(Path(trial_dir) / LOG)


def _tb_writer(trial_dir: Path, purge_step: int | None = None) -> Any:
    """purge_step: TensorBoard hides what an earlier (killed) writer logged from that step on."""
    from torch.utils.tensorboard import SummaryWriter  # imported on use: tensorboard is heavy

    return SummaryWriter(log_dir=str(trial_dir), flush_secs=10, purge_step=purge_step)


def add_scalars(trial_dir: str | Path, step: int, scalars: dict[str, float]) -> None:
    """Add scalars (e.g. {"eval/swuggy": 0.61}) to a trial's TensorBoard events, after the
    fact: evaluation modules call this when they score a trained model."""
    with _tb_writer(Path(trial_dir)) as w:
        for tag, value in scalars.items():
            w.add_scalar(tag, value, step)


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Logbook:
    """The running record of one trial (rank 0 writes; other ranks only count)."""

    def __init__(
        self,
        trial_dir: Path,
        max_steps: int,
        echo: Callable[[str], None],
        writer: bool = True,
        tensorboard: bool = True,
    ) -> None:
        self.dir, self.max_steps, self.echo, self.writer = Path(trial_dir), max_steps, echo, writer
        self.path = self.dir / LOG
        self.copy = self.dir / "ckpt" / LOG  # outlives Snakemake's removal of the outputs
        self.tensorboard = tensorboard and writer
        self._files: list[Any] = []
        self._tb: Any = None
        self._t0, self._step0 = time.time(), 0

    def open(self, resume_step: int | None) -> None:
        """Start the log afresh (None) or continue it from a resumed step."""
        self._t0, self._step0 = time.time(), resume_step or 0
        if not self.writer:
            return
        kept = self.kept()
        keep = [] if resume_step is None else [e for e in kept if e["step"] <= resume_step]
        self._rewrite(keep)
        if resume_step is None:  # a fresh start: curves of a discarded trajectory go too
            for old in self.dir.glob("events.out.tfevents.*"):
                old.unlink()
        if self.tensorboard:
            self._tb = _tb_writer(self.dir, None if resume_step is None else resume_step + 1)

    def kept(self) -> list[dict[str, Any]]:
        """The records an earlier run left: log.jsonl, or its copy when Snakemake removed it."""
        return read_jsonl(self.path if self.path.exists() else self.copy)

    def has_records(self) -> bool:
        return self.path.exists() or self.copy.exists()

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        for f in self._files:
            f.close()
        text = "".join(json_line(e) for e in records)
        try:
            self.copy.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_failure(self.copy.parent, e) from e
        for path in (self.copy, self.path):
            atomic_write(path, lambda tmp: tmp.write_text(text))
        # held open while the trial runs
        self._files = [open(p, "a") for p in (self.copy, self.path)]  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        record["time"] = round(time.time(), 3)
        line = json_line(record)
        for f in self._files:
            try:
                f.write(line)
                f.flush()
            except OSError as e:
                raise write_failure(Path(f.name), e) from e

    def train(self, step: int, loss: float, lr: float, gnorm: float, tok_s: float) -> None:
        self.write(
            {"kind": "train", "step": step, "loss": loss, "lr": lr, "gnorm": gnorm, "tok_s": tok_s}
        )
        if self._tb is not None:
            for tag, v in (
                ("loss", loss),
                ("lr", lr),
                ("grad_norm", gnorm),
                ("tokens_per_s", tok_s),
            ):
                self._tb.add_scalar(f"train/{tag}", v, step)
            self._tb.flush()  # the curve is on disk at each log interval, as log.jsonl
        done = step - self._step0
        eta = (time.time() - self._t0) / done * (self.max_steps - step) if done > 0 else math.nan
        self.echo(
            f"step {step}/{self.max_steps} | loss {loss:.4f} | tok/s {tok_s / 1000:.0f}k | "
            f"lr {lr:.2e} | gnorm {gnorm:.2f} | eta {_eta(eta)}"
        )

    def eval(self, step: int, scores: dict[str, float]) -> None:
        self.write({"kind": "eval", "step": step, **scores})
        if self._tb is not None:
            for k, v in scores.items():
                self._tb.add_scalar(f"eval/{k}", v, step)
        self.echo(f"step {step} | eval " + " | ".join(f"{k} {v:.4f}" for k, v in scores.items()))

    def event(self, step: int, name: str, **info: Any) -> None:
        self.write({"kind": "event", "step": step, "event": name, **info})
        line = f"event {name} " + " ".join(f"{k}={v}" for k, v in info.items())
        if self._tb is not None:
            self._tb.add_text("events", line, step)
        self.echo(f"step {step} | {line}")

    def rewind(self, step: int) -> None:
        """After a roll-back: train/eval records past `step` go (they are replayed); events
        stay (they say what happened)."""
        if self.writer:
            self._rewrite([e for e in self.kept() if e["kind"] == "event" or e["step"] <= step])

    def close(self) -> None:
        """Close both; a failing TensorBoard writer (full disk) is said, not raised: the
        log.jsonl and the checkpoints are what the trial depends on."""
        files, tb, self._files, self._tb = self._files, self._tb, [], None
        if tb is not None:
            try:
                tb.close()
            except Exception as e:
                self.echo(f"tensorboard events incomplete: {type(e).__name__}: {e}")
        for f in files:
            try:
                f.close()
            except OSError as e:
                raise write_failure(Path(f.name), e) from e


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
