#!/usr/bin/env python
"""Write an experiment's precision table (each mode relative to fp32) and its plot.

By hand: `precision.py results/lm/summary.csv results/lm/precision.csv
results/lm/plots/precision.svg`.
"""

import argparse

from seqlab.errors import run_cli
from seqlab.report.precision_study import write_precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("summary", help="the experiment's summary.csv")
    ap.add_argument("table", help="output CSV")
    ap.add_argument("plot", help="output SVG")
    args = ap.parse_args()
    write_precision(args.summary, args.table, args.plot)
    print(f"wrote {args.table} and {args.plot}")


if __name__ == "__main__":
    run_cli(main)
