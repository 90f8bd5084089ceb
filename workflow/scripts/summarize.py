#!/usr/bin/env python
"""Summarize one experiment's trials: summary.csv, final.json, ledger.md, plots/*.svg.

By hand: `summarize.py --out results/lstm --checks results/data/x/checks.json
results/lstm/runs/*/seed*`.
"""

import argparse
import json

from seqlab.errors import run_cli
from seqlab.report.study import summarize_experiment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("trials", nargs="+", help="trial directories")
    ap.add_argument("--out", required=True, help="experiment directory results/{exp}")
    ap.add_argument("--checks", help="the dataset's checks.json (plateau baseline)")
    ap.add_argument("--plateau", default="{}", help="plateau rule as JSON")
    ap.add_argument("--base-train", default="{}", help="the experiment's base train config")
    args = ap.parse_args()
    final = summarize_experiment(
        args.trials,
        args.checks,
        args.out,
        plateau=json.loads(args.plateau),
        base_train=json.loads(args.base_train),
    )
    print(f"{final['experiment']}: {len(final['runs'])} runs; best {final['best_run']}")


if __name__ == "__main__":
    run_cli(main)
