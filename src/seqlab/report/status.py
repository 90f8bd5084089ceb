"""`seqlab status`: every trial of a study, read from the trial files only.

It needs no Snakemake and no scheduler: the trials come from the config (seqlab.grid expands the
grid exactly as the workflow does) and each trial's state from what is on disk under
``results/{exp}/runs/{run}/seed{seed}/``, so it works on the submit host while Slurm runs jobs.
An experiment that the config does not have (it ran from another ``--configfile``) is listed
from its trials' own ``config.json`` files under results/: what ran or was set up to run.

How a state is told (a heuristic on files, said plainly):

- **done**: ``metrics.json`` exists (the train rule's target, written last and atomically).
- **failed**: no ``metrics.json``, and ``train.log`` (the rule's log: the trainer's stdout and
  stderr) ends with an error: a Python traceback's last line (``RuntimeError: ...``) or the
  one-line ``error: ...`` of a refused input. Snakemake removes a failed job's outputs but
  keeps its log, so this is what a failed trial looks like on disk. A ``metrics.json`` or
  ``config.json`` that does not parse is a failed trial too, named in its row.
- **running**: ``train.log`` or ``log.jsonl`` exists, without ``metrics.json`` or an error. The
  step, loss and tokens/s are the last ``train`` record of ``log.jsonl`` (appended while the
  trial runs), else the trainer's last ``step N | loss X`` line in ``train.log``.
- **stalled?**: looks running, but nothing in the trial directory was written for
  ``stale_after`` seconds (default 30 min): a job killed without a word (OOM killer, a node
  lost, a Slurm time limit) looks like this. It is not counted as failed.
- **pending**: none of the above (at most ``config.json``).

The exit status is 1 when any trial failed, 2 for a usage error (an experiment neither in the
config nor under results/, a config named that is not there), else 0.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError, UsageError
from seqlab.files import read_json, read_jsonl, read_yaml
from seqlab.grid import expand_runs

#: the last line of a traceback (``ValueError: ...``, ``torch.OutOfMemoryError: ...``) or the
#: one-line ``error: ...`` that seqlab.errors.run_cli prints for a refused input
ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*|error: .+|Killed.*)$")
STEP_LINE = re.compile(r"^step (\d+)(?:/\d+)? \| loss ([-\d.eE+naif]+)(?: \| tok/s ([\d.]+)(k?))?")


@dataclass
class Trial:
    """One trial's state as read from disk."""

    exp: str
    run: str
    seed: int
    dir: Path
    state: str = "pending"
    step: int | None = None
    max_steps: int | None = None
    loss: float | None = None
    tok_s: float | None = None
    eta_s: float | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def last_error(train_log: Path) -> str | None:
    """The error line that ends a failed trial's log, or None when the log ends otherwise."""
    if not train_log.exists():
        return None
    lines = [ln.rstrip() for ln in train_log.read_text(errors="replace").splitlines()]
    tail = [ln for ln in lines[-60:] if ln.strip()]
    for line in reversed(tail[-5:]):  # the error is the last words, or nearly (snakemake notes)
        if ERROR_LINE.match(line):
            return line
    return None


def _progress(trial: Trial, cfg: Mapping[str, Any]) -> None:
    """Step, loss, tokens/s and ETA of a running trial from log.jsonl (or train.log)."""
    train = cfg.get("train") or {}
    trial.max_steps = train.get("max_steps")
    recs = [r for r in read_jsonl(trial.dir / "log.jsonl") if r.get("kind") == "train"]
    if recs:
        last = recs[-1]
        trial.step, trial.loss, trial.tok_s = last.get("step"), last.get("loss"), last.get("tok_s")
        timed = [r for r in recs if isinstance(r.get("time"), int | float)]
        if len(timed) >= 2 and timed[-1]["time"] > timed[0]["time"]:
            rate = (timed[-1]["step"] - timed[0]["step"]) / (timed[-1]["time"] - timed[0]["time"])
        else:
            tokens = (
                train.get("batch_size", 0) * train.get("seq_len", 0) * train.get("grad_accum", 1)
            )
            rate = trial.tok_s / tokens if trial.tok_s and tokens else None
        if rate and trial.max_steps and trial.step is not None:
            trial.eta_s = max(0.0, (trial.max_steps - trial.step) / rate)
        return
    log = trial.dir / "train.log"
    for line in reversed(log.read_text(errors="replace").splitlines() if log.exists() else []):
        if m := STEP_LINE.match(line.strip()):
            trial.step, trial.loss = int(m[1]), float(m[2])
            trial.tok_s = float(m[3]) * (1000 if m[4] else 1) if m[3] else None
            break


def _done(trial: Trial, metrics: Mapping[str, Any]) -> None:
    trial.state = "done"
    trial.step, trial.max_steps = metrics.get("steps"), metrics.get("max_steps")
    select = metrics.get("select_metric", "eval_loss")
    best = metrics.get("best_eval_loss") if select == "eval_loss" else metrics.get("best")
    trial.loss = best if isinstance(best, int | float) and math.isfinite(best) else None
    trial.tok_s = metrics.get("tokens_per_s")
    trial.detail = f"{metrics.get('stop_reason', '?')}; best {select}"
    if metrics.get("best_step") is not None:
        trial.detail += f" @ {metrics['best_step']}"


def read_trial(exp: str, run: str, seed: int, results: Path, stale_after: float) -> Trial:
    """One trial's state (see the module docstring for the rules)."""
    d = results / exp / "runs" / run / f"seed{seed}"
    trial = Trial(exp, run, seed, d)
    try:
        cfg = read_json(d / "config.json") if (d / "config.json").exists() else {}
        if (d / "metrics.json").exists():
            _done(trial, read_json(d / "metrics.json"))
            return trial
    except SeqlabError as e:  # a damaged file is this trial's state, not the table's end
        trial.state = "failed"
        trial.detail = f"{str(e).removeprefix(str(d) + '/')}; delete it and rerun the trial"
        return trial
    if not (d / "train.log").exists() and not (d / "log.jsonl").exists():
        return trial
    _progress(trial, cfg)
    error = last_error(d / "train.log")
    if error:
        trial.state, trial.detail = "failed", error
        return trial
    newest = max(p.stat().st_mtime for p in d.rglob("*") if p.is_file())
    idle = time.time() - newest
    trial.state = "stalled?" if idle > stale_after else "running"
    if trial.state == "stalled?":
        trial.detail = f"no write for {idle / 60:.0f} min (killed without an error line?)"
    return trial


#: the config `seqlab status` reads when none is named (where `snakemake` finds it)
DEFAULT_CONFIG = "config/config.yaml"


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The study's config YAML (the file Snakemake was given); with no path, the default
    config if there is one (else no experiments: what ran is then read from results/)."""
    if path is None:
        path = DEFAULT_CONFIG
        if not Path(path).exists():
            return {"experiments": {}}
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such config; pass the one the study runs with (--config)")
    cfg = read_yaml(path) or {}  # a duplicate key or invalid YAML: file:line
    if not isinstance(cfg.get("experiments"), Mapping):
        raise UsageError(f"{path}: no `experiments:` mapping; is this a seqlab config?")
    return cfg


def trials_on_disk(results: str | Path, exp: str = "*") -> dict[str, list[tuple[str, int]]]:
    """{experiment: [(run, seed)]} of the trials that have a config.json under `results`
    (written before a trial trains), whichever config they came from."""
    found: dict[str, list[tuple[str, int]]] = {}
    for path in Path(results).glob(f"{exp}/runs/*/seed*/config.json"):
        seed = path.parent.name.removeprefix("seed")
        if seed.isdigit():
            found.setdefault(path.parents[3].name, []).append((path.parents[1].name, int(seed)))
    return {e: sorted(trials) for e, trials in sorted(found.items())}


def study_status(
    cfg: Mapping[str, Any],
    exps: Sequence[str] = (),
    results: str | Path = "results",
    stale_after: float = 1800.0,
) -> dict[str, list[Trial]]:
    """{experiment: [Trial]} for the named experiments (none named: the config's, then those
    found only under results/). The config's trials include pending ones; an experiment it
    does not have shows the trials found under results/."""
    known = cfg["experiments"]
    on_disk = trials_on_disk(results)
    unknown = [e for e in exps if e not in known and e not in on_disk]
    if unknown:
        raise UsageError(
            f"no experiment {', '.join(unknown)} in the config (have {sorted(known)}) nor "
            f"under {results}/ (have {sorted(on_disk)}); name the config it ran with (--config)"
        )
    names = list(exps) or [*known, *(e for e in on_disk if e not in known)]
    if not names:
        raise UsageError(
            f"no experiments: none in the config and no trials under {results}/; name the "
            "config the study runs with (--config) or its results directory (--results)"
        )
    out = {}
    for name in names:
        if name in known:
            exp = known[name]
            trials = [
                (run, int(s)) for run in expand_runs(name, exp) for s in exp.get("seeds", [0])
            ]
        else:
            trials = on_disk[name]
        out[name] = [
            read_trial(name, run, seed, Path(results), stale_after) for run, seed in trials
        ]
    return out


STYLES = {
    "done": "green",
    "running": "cyan",
    "failed": "bold red",
    "stalled?": "yellow",
    "pending": "dim",
}


def fmt_duration(seconds: float | None) -> str:
    """1h05m, 4m10s, 12s; '' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _cell(x: float | None, fmt: str) -> str:
    return "" if x is None or not math.isfinite(x) else format(x, fmt)


def render(status: Mapping[str, Sequence[Trial]]) -> Any:
    """One rich table per experiment, a one-line count in its title."""
    from rich.console import Group
    from rich.table import Table

    tables = []
    for exp, trials in status.items():
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.state] = counts.get(t.state, 0) + 1
        title = f"{exp}: {len(trials)} trials — " + ", ".join(f"{n} {s}" for s, n in counts.items())
        table = Table(title=title, title_justify="left", expand=False)
        for col, just in (
            ("run", "left"),
            ("seed", "right"),
            ("state", "left"),
            ("step", "right"),
            ("loss", "right"),
            ("tok/s", "right"),
            ("ETA", "right"),
            ("detail", "left"),
        ):
            table.add_column(col, justify=just, overflow="fold")
        for t in trials:
            step = (
                "" if t.step is None else f"{t.step}" + (f"/{t.max_steps}" if t.max_steps else "")
            )
            table.add_row(
                t.run,
                str(t.seed),
                f"[{STYLES.get(t.state, '')}]{t.state}[/]",
                step,
                _cell(t.loss, ".4f"),
                _cell(t.tok_s, ",.0f"),
                fmt_duration(t.eta_s) if t.state == "running" else "",
                t.detail,
            )
        tables.append(table)
    return Group(*tables)


def status_command(
    config: str | Path | None,
    exps: Sequence[str] = (),
    results: str | Path = "results",
    watch: bool = False,
    interval: float = 5.0,
    stale_after: float = 1800.0,
    console: Any = None,
) -> int:
    """Print (or, with `watch`, keep refreshing) the tables; 1 if any trial failed, else 0."""
    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    cfg = load_config(config)

    def failed(st: Mapping[str, Sequence[Trial]]) -> bool:
        return any(t.state == "failed" for ts in st.values() for t in ts)

    st = study_status(cfg, exps, results, stale_after)
    if not watch:
        console.print(render(st))
        return int(failed(st))
    with Live(render(st), console=console, refresh_per_second=2) as live:
        try:
            while any(t.state not in ("done", "failed") for ts in st.values() for t in ts):
                time.sleep(interval)
                st = study_status(cfg, exps, results, stale_after)
                live.update(render(st))
        except KeyboardInterrupt:
            pass
    return int(failed(st))
