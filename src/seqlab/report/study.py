"""Stage entry points of the report side: one call per rule (summarize, compare, report).

Each reads only the files the pipeline wrote, so every table and plot is regenerated from
the trials and never goes stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from seqlab.errors import SeqlabError
from seqlab.files import read_json
from seqlab.report.compare import compare_experiments, compare_optimizers, write_compare_csv
from seqlab.report.html import build_report
from seqlab.report.ledger import write_ledger
from seqlab.report.plots import plot_loss_curves, plot_seed_points
from seqlab.report.precision_study import precision_table, table_records
from seqlab.report.summary import load_trials, make_final, write_final, write_summary_csv

#: plots written by summarize_experiment, relative to results/{exp}/
#: train-loss curves; eval curves of the metric that picks the best checkpoint (eval loss for
#: LMs, PER for CTC); bars of the best value of that metric per run
PLOTS = ("plots/train_loss.svg", "plots/eval.svg", "plots/best.svg")
#: written by the `precision` rule for experiments whose grid varies `precision`
PRECISION_PLOT = "plots/precision.svg"
#: written by the plot rules when the trials were scored on sWUGGY / sBLIMP
SWUGGY_PLOT = "plots/swuggy.svg"
SBLIMP_PLOT = "plots/sblimp.svg"


def summarize_experiment(
    trial_dirs: Sequence[str | Path],
    checks: str | Path | None,
    out_dir: str | Path,
    plateau: Mapping[str, Any] | None = None,
    base_train: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """summary.csv, final.json, ledger.md and plots/*.svg of one experiment."""
    out = Path(out_dir)
    df = load_trials(trial_dirs)
    if df.empty:
        raise SeqlabError(f"{out}: no trials to summarize")
    checks_data = read_json(checks) if checks else None
    # rank by the metric that chose each trial's best checkpoint (eval loss for LMs, PER for
    # CTC): `best` in metrics.json is that metric's best value
    selects = set(df["select_metric"].dropna()) if "select_metric" in df else {"eval_loss"}
    rank_by = "best_eval_loss" if selects <= {"eval_loss"} else "best"
    final = make_final(df, checks_data, plateau, rank_by=rank_by)
    write_summary_csv(df, out / "summary.csv")
    baseline = (checks_data or {}).get("unigram_entropy_nats")
    exp = final["experiment"]
    plot_loss_curves(
        df, out / PLOTS[0], metric="loss", baseline=baseline, title=f"{exp}: train loss"
    )
    select = "eval_loss" if rank_by == "best_eval_loss" else sorted(selects)[0]
    plot_loss_curves(
        df,
        out / PLOTS[1],
        metric=select,
        baseline=baseline if select == "eval_loss" else None,
        title=f"{exp}: {select} on the eval split",
    )
    plot_seed_points(final, rank_by, out / PLOTS[2], title=f"{exp}: best {select} per run")
    write_ledger(exp, final, base_train or {}, out / "ledger.md")
    if "cfg.precision" in df and df["cfg.precision"].nunique() > 1:  # a precision study
        final["precision"] = {"baseline": "fp32", "rows": table_records(precision_table(df))}
    write_final(final, out / "final.json")  # last: it is the rule's target
    return final


def compare(
    name: str, spec: Mapping[str, Any], results: str | Path, out_csv: str | Path
) -> pd.DataFrame:
    """One cross-experiment table, results/compare/{name}.csv.

    spec.kind = "experiments": one row per (experiment, run), each metric over seeds;
    spec.kind = "optimizers": Adam vs AdamW paired by seed and every other setting;
    spec.kind = "precision": each precision mode relative to fp32 (seqlab.report.precision_study).
    """
    results = Path(results)
    exps = list(spec["experiments"])
    if (
        spec.get("kind") == "precision"
    ):  # each mode relative to fp32 (seqlab.report.precision_study)
        df = pd.concat([pd.read_csv(results / e / "summary.csv") for e in exps])
        table = precision_table(df)
    elif spec.get("kind", "experiments") == "experiments":
        finals = {e: read_json(results / e / "final.json") for e in exps}
        table = compare_experiments(finals)
    else:
        df = pd.concat([pd.read_csv(results / e / "summary.csv") for e in exps])
        table = compare_optimizers(df, a=spec.get("a", "adam"), b=spec.get("b", "adamw"))
        if table.empty:
            raise SeqlabError(
                f"compare.{name}: no {spec.get('a', 'adam')}/{spec.get('b', 'adamw')} pairs with "
                f"equal settings and seeds in {exps}; add both optimizers to one grid"
            )
    write_compare_csv(table, out_csv)
    return table


def report(
    experiments: Sequence[str],
    results: str | Path,
    compare_csvs: Sequence[str | Path],
    out_html: str | Path,
) -> Path:
    """results/report.html: one self-contained page over every experiment."""
    results = Path(results)
    specs = {}
    for exp in experiments:
        final = read_json(results / exp / "final.json")
        specs[exp] = {
            "final": final,
            "summary_csv": results / exp / "summary.csv",
            "ledger": results / exp / "ledger.md",
            "plots": [results / exp / p for p in PLOTS]
            + [p for p in [results / exp / PRECISION_PLOT] if p.exists()]
            + [p for p in [results / exp / SWUGGY_PLOT] if p.exists()]
            + [p for p in [results / exp / SBLIMP_PLOT] if p.exists()],
            "trial_dirs": final.get("generated_from", []),
        }
    return build_report(specs, compare_csvs, out_html)
