"""The report's first screen: what was run, what came out, what mattered.

Experiments with their trials and best run; the factor verdicts of every grid
(seqlab.report.factors); each comparison table with a one-line verdict computed from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from seqlab.report.compare import fmt_mean_std
from seqlab.report.tables import Html, breakable, df_table, html_table, slug, verdict_list

#: what each kind of comparison table shows, as a caption
COMPARE_KINDS = {
    "optimizers": "optimizers paired by seed and every other setting",
    "precision": "precision modes relative to fp32",
    "experiments": "experiments side by side (mean ± std over seeds)",
}


def compare_kind(table: pd.DataFrame) -> str:
    """Which comparison a results/compare/*.csv holds, from its columns."""
    if "verdict" in table and any(c.startswith("run_") for c in table):
        return "optimizers"
    if "throughput_ratio" in table:
        return "precision"
    return "experiments"


def _optimizer_verdict(t: pd.DataFrame) -> str:
    a, b = (c[4:] for c in t if c.startswith("run_"))
    n, seeds = len(t), t["seed"].nunique()
    wd = sorted(set(t["weight_decay"].dropna())) if "weight_decay" in t else []
    b_name = f"{b} (weight_decay {', '.join(f'{w:g}' for w in wd)})" if wd else b
    counts = t["verdict"].value_counts()
    if counts.get("identical", 0) == n:
        return (
            f"{b_name} equals {a} on all {seeds} seeds ({n} pairs with every other "
            "setting equal): identical loss curves"
        )
    same = counts.get("identical", 0) + sum(v for k, v in counts.items() if k.startswith("within"))
    worst = pd.to_numeric(t["max |diff| train loss"], errors="coerce").max()
    return (
        f"{b_name} vs {a}: the same within tolerance on {same}/{n} pairs, differs on "
        f"{n - same} (largest train-loss gap {worst:.3g} nats)"
    )


def _precision_verdict(t: pd.DataFrame) -> str:
    ok = t[~t["diverged"].astype(bool) & ~t["skipped"].astype(bool)]
    ok = ok[ok["precision"] != "fp32"]
    parts = []
    if len(ok):
        speed = ", ".join(
            f"{p} {r:.2f}×"
            for p, r in zip(ok["precision"], ok["throughput_ratio"], strict=True)
            if pd.notna(r)
        )
        parts.append(f"tokens/s vs fp32: {speed}")
        delta = pd.to_numeric(ok["loss_delta"], errors="coerce").abs().max()
        if pd.notna(delta):
            parts.append(f"final loss within {delta:.3g} nats of fp32")
    for flag, word in (("diverged", "diverged"), ("skipped", "skipped")):
        names = t.loc[t[flag].astype(bool), "precision"].tolist()
        if names:
            parts.append(f"{word}: {', '.join(names)}")
    return "; ".join(parts) or "no precision mode finished"


def _experiments_verdict(t: pd.DataFrame) -> str:
    metric = next(
        (c[:-5] for c in t if c.endswith(" mean") and "loss" in c and t[c].notna().any()), None
    )
    if metric is None:
        return "no loss at a milestone every experiment reached; see the table"
    best = t.loc[t.groupby("experiment")[f"{metric} mean"].idxmin().dropna()]
    best = best.sort_values(f"{metric} mean")
    first, rest = best.iloc[0], best.iloc[1:]
    others = "; ".join(f"{r['experiment']} {r[metric]}" for _, r in rest.iterrows())
    text = f"lowest {metric}: {first['experiment']} ({first[metric]}"
    text += f"; {others})" if others else ")"
    if "plateau_rate" in best and best["plateau_rate"].notna().any():
        rates = ", ".join(
            f"{r['experiment']} {r['plateau_rate']:.0%}"
            for _, r in best.iterrows()
            if pd.notna(r["plateau_rate"])
        )
        text += f"; plateau rate of each best run: {rates}"
    return text


def compare_verdict(table: pd.DataFrame) -> str:
    """One computed sentence per comparison table."""
    if table.empty:
        return "no rows"
    kind = compare_kind(table)
    if kind == "optimizers":
        return _optimizer_verdict(table)
    if kind == "precision":
        return _precision_verdict(table)
    return _experiments_verdict(table)


def _num(x: float, digits: int) -> str:
    """Values with `digits` or more integer digits as integers with separators (12,738, 240),
    the rest to `digits` significant digits (no exponent notation at the report's scales)."""
    return f"{x:,.0f}" if abs(x) >= 10 ** (digits - 1) else f"{x:.{digits}g}"


def _pm(mean: Any, std: Any) -> str:
    """'4.176 ± 0.003', '12,738 ± 0' (just the mean when std is unknown)."""
    if pd.isna(mean):
        return ""
    return _num(mean, 4) if pd.isna(std) else f"{_num(mean, 4)} ± {_num(std, 2)}"


#: the columns a reader needs from each comparison table (the CSV keeps them all)
SHOWN = {
    "optimizers": (
        "experiment",
        "seed",
        "lr",
        "weight_decay",
        "steps_compared",
        "max |diff| train loss",
        "max |diff| eval loss",
        "verdict",
    ),
    "precision": (
        "experiment",
        "precision",
        "n_seeds",
        "throughput_ratio",
        "memory_ratio",
        "loss_delta",
        "diverged",
        "skipped",
        "tokens_per_s",
        "peak_mem_mb",
        "final_eval_loss",
        "skip_reason",
    ),
}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """A comparison table as shown on the page: key columns, 'mean ± std' cells, no empties."""
    kind = compare_kind(table)
    if kind in SHOWN:
        out = table[[c for c in SHOWN[kind] if c in table]].copy()
        runs = [c for c in table if c.startswith("run_")]
        if runs:  # the settings both sides share: side a's run id without its optimizer
            a = runs[0][4:]
            shared = table[runs[0]].astype(str).str.replace(f"optim.name~{a}", "", regex=False)
            out.insert(1, "shared settings", shared.str.strip("_").replace("", "base"))
        if out["experiment"].nunique() == 1:
            out = out.drop(columns="experiment")
    else:
        out = table.drop(columns=[c for c in table if c.endswith((" mean", " std"))])
        for m in [c[:-5] for c in table if c.endswith(" mean")]:
            out[m] = [_pm(a, b) for a, b in zip(table[f"{m} mean"], table[f"{m} std"], strict=True)]
        if "plateau_milestone" in out:
            steps = sorted(set(out.pop("plateau_milestone").dropna().astype(int)))
            rate = out.pop("plateau_rate").map(lambda r: "" if pd.isna(r) else f"{r:.0%}")
            out[f"plateau @ step {', '.join(map(str, steps))}"] = rate
    return out.dropna(axis=1, how="all").loc[:, lambda d: (d.astype(str) != "").any()]


def _trials_cell(final: Mapping[str, Any]) -> str:
    n = final.get("n_trials", 0)
    stops: dict[str, int] = {}
    for info in final.get("runs", {}).values():
        for k, v in (info.get("stop_reasons") or {}).items():
            stops[k] = stops.get(k, 0) + v
    bad = {k: v for k, v in stops.items() if k in ("diverged", "unsupported")}
    return f"{n} done" + (f" ({', '.join(f'{v} {k}' for k, v in bad.items())})" if bad else "")


def experiments_table(finals: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per experiment: task, trials, runs, best run and its value, plateau."""
    rows = []
    for name, f in finals.items():
        best = f.get("best_run")
        info = f["runs"].get(best, {}) if best else {}
        rate = (info.get("plateau") or {}).get("rate")
        rows.append(
            [
                Html(f'<a href="#exp-{slug(name)}">{escape(name)}</a>'),
                f.get("task"),
                _trials_cell(f),
                len(f.get("runs", {})),
                Html(f"<code>{breakable(best)}</code>") if best else "—",
                fmt_mean_std((info.get("metrics") or {}).get(f.get("rank_by"))),
                None if rate is None else f"{rate:.0%}",
            ]
        )
    header = [
        "experiment",
        "task",
        "trials",
        "runs",
        "best run",
        "its score (mean ± std)",
        "plateau",
    ]
    return html_table(header, rows, "overview-experiments")


def _read_csv(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def overview(
    finals: Mapping[str, Mapping[str, Any]], compare_csvs: Sequence[str | Path], out_dir: Path
) -> str:
    """The overview section (id="overview"), comparisons included (id="compare")."""
    parts = ['<section id="overview"><h2>Overview</h2>', experiments_table(finals)]
    ranked = ", ".join(f"{n}: {f.get('rank_by')}" for n, f in finals.items())
    parts.append(f'<p class="lead">Score = the metric that ranks runs ({escape(ranked)}).</p>')
    mattered = [
        (v["kind"], v["text"], name)
        for name, f in finals.items()
        for v in (f.get("factors") or {}).get("verdicts", [])
    ]
    if mattered:
        parts.append('<div id="overview-factors"><h3>What mattered (computed from the grids)</h3>')
        parts.append(verdict_list(mattered) + "</div>")
    parts.append('<div id="compare"><h3>Comparisons</h3>')
    for csv in compare_csvs:
        table = _read_csv(csv)
        cid = f"compare-{slug(Path(csv).stem)}"
        kind = COMPARE_KINDS[compare_kind(table)] if not table.empty else ""
        href = escape(os.path.relpath(csv, out_dir), quote=True)
        parts.append(
            f'<div id="{cid}"><h4>{escape(Path(csv).stem)} <small>— {escape(kind)} '
            f'(<a href="{href}">csv</a>)</small></h4>'
            f'<p class="verdict">{escape(compare_verdict(table))}</p>'
            f"{df_table(display_table(table), f'{cid}-table') if len(table) else ''}</div>"
        )
    parts.append("</div></section>")
    return "\n".join(parts)
