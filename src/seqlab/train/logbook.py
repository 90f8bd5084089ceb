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
What a finished trial publishes (model.pt, metrics.json) is seqlab.train.publish.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from seqlab.files import atomic_write, json_line, read_jsonl, write_failure

LOG = "log.jsonl"


def read_log(trial_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a trial's log.jsonl (a torn last line left out: seqlab.files.read_jsonl)."""
    return read_jsonl(Path(trial_dir) / LOG)


class Throughput:
    """Tokens/s and ms per step over the steps counted since the last reading; time spent
    `untimed` (evaluations, checkpoints) is left out."""

    def __init__(self, tokens_per_step: int) -> None:
        self.tokens_per_step = tokens_per_step
        self.restart()

    def restart(self) -> None:
        self.t_last, self.steps = time.perf_counter(), 0

    def count_step(self) -> None:
        self.steps += 1

    @contextlib.contextmanager
    def untimed(self) -> Iterator[None]:
        t_side = time.perf_counter()
        yield
        self.t_last += time.perf_counter() - t_side

    def read(self) -> tuple[float, float]:
        """(tokens/s, ms per step) since the last reading (or restart); then starts anew."""
        dt = time.perf_counter() - self.t_last
        n = max(self.steps, 1)
        self.restart()
        return n * self.tokens_per_step / dt, 1000 * dt / n


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
