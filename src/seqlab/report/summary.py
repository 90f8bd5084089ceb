"""Per-experiment summaries: trial directories -> summary.csv (one row per trial) -> final.json.

Everything here is recomputed from the trials' own files (config.json, metrics.json, log.jsonl),
so tables that used to be kept by hand can never go stale.

summary.csv columns
    experiment, run, variant, seed, task; one column per override key (``optim.lr``...);
    ``overrides`` (the run's overrides as JSON); every metric of metrics.json flattened
    (nested dicts dotted: ``versions.git``; milestone dicts as ``eval_loss@40``,
    ``train_loss@40``); ``log.last_{eval,train}_{loss,step}`` (last logged values, the plateau
    fallback); ``event.{kind}`` (event counts from log.jsonl); ``cfg.{dotted}`` (the resolved
    train config); ``trial_dir``.

final.json layout (``make_final``)::

    experiment, task, n_trials
    rank_by, lower_is_better
    plateau: {milestone, margin, metric, baseline_nats}       # the rule applied to every run
    runs: {run_id: {
        variant, overrides, config (resolved train config, dotted), seeds: [int], n_seeds,
        metrics: {name: {mean, std, min, max, n, values}},     # values aligned with seeds
        plateau: {rate, n_flagged, milestone, margin, metric, baseline_nats,
                  per_seed: [{seed, plateau, loss, step, source}]},
        stop_reasons: {reason: count}, events: {kind: total}, stability: {n_skipped, ...},
        best_seed, model_paths: {seed: path}, rank}}
    ranking: [{run, mean, std, n}]    # by the rank metric's mean, best first, missing last
    best_run, best_seed, best_model_path
    data: {dataset, manifest_sha256}; code: {seqlab, torch, python, git}   # a list if mixed
    generated_from: [trial_dir]
    factors: {design, factors: [{key, levels, exact, confounded, rows, verdict}], verdicts}
        # what mattered, per grid key (seqlab.report.factors); null without a grid

Conventions: std is the sample std (ddof=1); with one finite value it is null, not 0.0, because
the spread is unknown rather than zero. Means skip non-finite values (a diverged seed's NaN
loss); ``n`` says how many values were finite. Every NaN is written as null. A seed plateaus
when its loss at the milestone is >= baseline - margin (within the margin of the unigram
entropy, or above it); when the milestone was not reached the last logged loss is used and
``source`` says ``last_logged`` (or ``final``, from metrics.json, when the log has none).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqlab.config import Plateau, from_dict
from seqlab.errors import SeqlabError
from seqlab.files import atomic_write, jsonable, read_json, write_json
from seqlab.report.factors import factors_of_final
from seqlab.report.logs import log_frame

ID_COLS = ["experiment", "run", "variant", "seed", "task"]
#: columns that are neither metrics nor overrides (prefixes end in a dot).
NON_METRIC_PREFIXES = ("cfg.", "event.", "log.")
NON_METRIC_COLS = {*ID_COLS, "overrides", "trial_dir", "model_path", "max_steps"}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> one level with dotted keys (``{"optim": {"lr": 1}}`` -> ``optim.lr``)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _log_columns(log: pd.DataFrame) -> dict[str, Any]:
    """Last logged train/eval loss (the plateau fallback) and event counts of one trial."""
    row: dict[str, Any] = {}
    for kind, col in (("train", "loss"), ("eval", "eval_loss")):
        part = log[log["kind"] == kind]
        if col in part and len(part):
            last = part.sort_values("step").iloc[-1]
            row[f"log.last_{kind}_loss"] = last[col]
            row[f"log.last_{kind}_step"] = last["step"]
    if "event" in log:
        counts = log.loc[log["kind"] == "event", "event"].value_counts()
        row.update({f"event.{k}": int(v) for k, v in sorted(counts.items())})
    return row


def _metric_columns_of(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten metrics.json; ``*_at`` milestone dicts become ``eval_loss@40`` style columns."""
    row: dict[str, Any] = {}
    for key, value in metrics.items():
        if key in ("experiment", "run", "seed", "task"):
            continue
        if isinstance(value, Mapping) and key.endswith("_at"):
            row.update({f"{key[:-3]}@{k}": v for k, v in value.items()})
        elif isinstance(value, Mapping):
            row.update(flatten(value, f"{key}."))
        elif isinstance(value, list):
            row[key] = json.dumps(value)
        else:
            row[key] = value
    return row


#: per-trial evaluation files (written by the eval rules beside metrics.json) and the column
#: prefix of their flattened scalars: swuggy.json -> swuggy.lexical_all, sblimp.json ->
#: sblimp.syntactic_all, per.json -> per.per ...
EVAL_FILES: dict[str, str] = {
    "swuggy.json": "swuggy.",
    "sblimp.json": "sblimp.",
    "per.json": "per.",
}


def _eval_columns(trial_dir: Path) -> dict[str, Any]:
    """Scalars of the evaluation files present in the trial directory."""
    row: dict[str, Any] = {}
    for name, prefix in EVAL_FILES.items():
        if (trial_dir / name).exists():
            flat = flatten(read_json(trial_dir / name), prefix)
            row.update({k: v for k, v in flat.items() if isinstance(v, int | float | str | None)})
    return row


def load_trials(trial_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """One row per trial directory (see the module docstring for the columns)."""
    rows = []
    for trial_dir in trial_dirs:
        trial_dir = Path(trial_dir)
        config = read_json(trial_dir / "config.json")
        metrics = read_json(trial_dir / "metrics.json")
        overrides = config.get("overrides") or {}
        row: dict[str, Any] = {c: config.get(c, metrics.get(c)) for c in ID_COLS}
        row.update(overrides)
        row["overrides"] = json.dumps(overrides, sort_keys=True)
        row.update(_metric_columns_of(metrics))
        row.update(_eval_columns(trial_dir))
        row.update(_log_columns(log_frame(trial_dir)))
        row.update({f"cfg.{k}": v for k, v in flatten(config.get("train") or {}).items()})
        if metrics.get("precision"):  # the mode that ran: `auto` is resolved by the device
            row["cfg.precision"] = metrics["precision"]
        row["trial_dir"] = str(trial_dir)
        rows.append(row)
    if not rows:
        raise SeqlabError("load_trials: no trial directories given")
    df = pd.DataFrame.from_records(rows)
    fixed = [c for c in ID_COLS if c in df] + override_columns(df)

    def group(col: str) -> int:  # metrics, then event counts, last-logged values, config
        prefixes = ("event.", "log.", "cfg.")
        return next((i + 1 for i, p in enumerate(prefixes) if col.startswith(p)), 0)

    rest = sorted(
        (c for c in df if c not in fixed and c != "trial_dir"), key=lambda c: (group(c), c)
    )
    ordered = fixed + rest + ["trial_dir"]
    return df[ordered].sort_values(["experiment", "run", "seed"], ignore_index=True)


def override_columns(df: pd.DataFrame) -> list[str]:
    """The override keys used by any run, in first-seen order."""
    keys: dict[str, None] = {}
    for text in df.get("overrides", pd.Series(dtype=object)).dropna():
        keys.update(dict.fromkeys(json.loads(text)))
    return list(keys)


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Numeric metric columns: everything numeric that is not an id, override, config or log."""
    skip = NON_METRIC_COLS | set(override_columns(df))
    return [
        c
        for c in df
        if c not in skip
        and not c.startswith(NON_METRIC_PREFIXES)
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]


def write_summary_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Atomically write summary.csv; lists (betas...) are written as JSON for a clean re-read."""
    out = df.copy()
    for col in [c for c in out if pd.api.types.is_object_dtype(out[c])]:
        out[col] = out[col].map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
    return atomic_write(path, lambda tmp: out.to_csv(tmp, index=False))


def _stats(values: pd.Series) -> dict[str, Any]:
    """mean/std(ddof=1)/min/max over the finite values, plus the per-seed values."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = x[np.isfinite(x)]
    n = len(finite)
    return {
        "mean": float(finite.mean()) if n else None,
        "std": float(finite.std(ddof=1)) if n > 1 else None,
        "min": float(finite.min()) if n else None,
        "max": float(finite.max()) if n else None,
        "n": n,
        "values": [float(v) if math.isfinite(v) else None for v in x],
    }


def _num(row: pd.Series, col: str) -> float:
    """A row's value as float, NaN when absent or not numeric."""
    try:
        return float(row[col]) if col in row and row[col] is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def plateau_of_seed(row: pd.Series, milestone: int, metric: str) -> tuple[float, float, str]:
    """(loss, step, source) at the milestone, else the last logged loss, else the final loss."""
    loss = _num(row, f"{metric}_loss@{milestone}")
    if math.isfinite(loss):
        return loss, float(milestone), "milestone"
    loss = _num(row, f"log.last_{metric}_loss")
    if math.isfinite(loss):
        return loss, _num(row, f"log.last_{metric}_step"), "last_logged"
    return _num(row, f"final_{metric}_loss"), _num(row, "steps"), "final"


def plateau_of_run(rows: pd.DataFrame, baseline: float | None, rule: Mapping[str, Any]) -> dict:
    """The plateau rate of one run (`rows`: its trials): the share of its seeds whose loss at
    the rule's milestone (`plateau_of_seed`) is >= baseline - margin, the baseline being the
    train split's unigram entropy; seeds without a finite loss, or runs without a baseline,
    are left out of the rate (`n_flagged`: how many seeds it is over)."""
    per_seed = []
    for _, row in rows.iterrows():
        loss, step, source = plateau_of_seed(row, int(rule["milestone"]), rule["metric"])
        flag = None
        if baseline is not None and math.isfinite(loss):
            flag = bool(loss >= baseline - float(rule["margin"]))
        per_seed.append(
            {
                "seed": int(row["seed"]),
                "plateau": flag,
                "loss": loss,
                "step": step,
                "source": source,
            }
        )
    flags = [s["plateau"] for s in per_seed if s["plateau"] is not None]
    return {
        "rate": sum(flags) / len(flags) if flags else None,
        "n_flagged": len(flags),
        **dict(rule),
        "baseline_nats": baseline,
        "per_seed": per_seed,
    }


def _single(values: pd.Series) -> Any:
    """The one value of a column, or the sorted list of its values when trials disagree."""
    distinct = sorted({str(v) for v in values.dropna()})
    return distinct[0] if len(distinct) == 1 else distinct or None


def _unique(df: pd.DataFrame, prefix: str) -> dict[str, Any]:
    """Columns under `prefix` (versions., data.) -> their single value, or a sorted list."""
    return {c[len(prefix) :]: _single(df[c]) for c in df if c.startswith(prefix)}


def model_path(row: pd.Series) -> str:
    """The trial's model file: metrics' model_path relative to the trial dir (model.pt default)."""
    name = row.get("model_path")
    return str(Path(row["trial_dir"]) / (name if isinstance(name, str) else "model.pt"))


def _seed_order(values: pd.Series, lower_is_better: bool) -> list[int]:
    """Positions ordered best first; NaN last."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    key = x if lower_is_better else -x
    key = np.where(np.isfinite(key), key, np.inf)
    return list(np.argsort(key, kind="stable"))


def make_final(
    df: pd.DataFrame,
    checks: Mapping[str, Any] | None,
    plateau: Mapping[str, Any] | None = None,
    rank_by: str = "best_eval_loss",
    lower_is_better: bool = True,
) -> dict[str, Any]:
    """The experiment's verdict (layout in the module docstring), JSON-ready."""
    experiments = sorted(df["experiment"].dropna().unique())
    if len(experiments) != 1:
        raise SeqlabError(f"make_final: expected one experiment, got {experiments}")
    rule = dataclasses.asdict(from_dict(Plateau, plateau or {}, "plateau"))
    if rule["metric"] not in ("eval", "train"):
        raise SeqlabError(f"plateau metric {rule['metric']!r}: use 'eval' or 'train'")
    baseline = (checks or {}).get("unigram_entropy_nats")
    metrics = metric_columns(df)
    events = sorted(c for c in df if c.startswith("event."))
    runs: dict[str, dict[str, Any]] = {}
    for run, rows in df.sort_values("seed").groupby("run", sort=True):
        first = rows.iloc[0]
        paths = {int(r["seed"]): model_path(r) for _, r in rows.iterrows()}
        rank_values = rows[rank_by] if rank_by in rows else pd.Series([math.nan] * len(rows))
        best_pos = _seed_order(rank_values, lower_is_better)[0]
        runs[str(run)] = {
            "variant": first.get("variant"),
            "overrides": json.loads(first.get("overrides") or "{}"),
            "config": {c[4:]: first[c] for c in df if c.startswith("cfg.")},
            "seeds": [int(s) for s in rows["seed"]],
            "n_seeds": len(rows),
            "metrics": {m: _stats(rows[m]) for m in metrics},
            "plateau": plateau_of_run(rows, baseline, rule),
            "stop_reasons": rows.get("stop_reason", pd.Series()).value_counts().to_dict(),
            "events": {e[6:]: int(rows[e].fillna(0).sum()) for e in events},
            "stability": {
                k: int(rows[k].fillna(0).sum()) if k in rows else 0
                for k in ("n_skipped", "n_lr_cuts", "n_rollbacks")
            },
            "best_seed": int(rows.iloc[best_pos]["seed"]),
            "model_paths": paths,
        }
    ranking = []
    for run, info in runs.items():
        stats = info["metrics"].get(rank_by, {})
        ranking.append({"run": run, **{k: stats.get(k) for k in ("mean", "std")}})
        ranking[-1]["n"] = stats.get("n", 0)
    sign = 1.0 if lower_is_better else -1.0
    ranking.sort(key=lambda r: (r["mean"] is None, sign * (r["mean"] or 0.0), r["run"]))
    for i, r in enumerate(ranking, start=1):
        runs[r["run"]]["rank"] = i
    best = ranking[0]["run"] if ranking and ranking[0]["mean"] is not None else None
    best_seed = runs[best]["best_seed"] if best else None
    final = {
        "experiment": experiments[0],
        "task": _single(df["task"]) if "task" in df else None,
        "n_trials": len(df),
        "rank_by": rank_by,
        "lower_is_better": lower_is_better,
        "plateau": {**rule, "baseline_nats": baseline},
        "runs": runs,
        "ranking": ranking,
        "best_run": best,
        "best_seed": best_seed,
        "best_model_path": runs[best]["model_paths"][best_seed] if best else None,
        "data": _unique(df, "data."),
        "code": _unique(df, "versions."),
        "generated_from": sorted(df["trial_dir"].astype(str)),
    }
    out = jsonable(final)
    out["factors"] = jsonable(factors_of_final(out, override_columns(df)))
    return out


def write_final(final: Mapping[str, Any], path: str | Path) -> Path:
    """Atomically write final.json (sorted keys, so reruns give identical bytes)."""
    return write_json(path, final)
