#!/usr/bin/env python
"""Plot an experiment's sWUGGY or sBLIMP (per run with seed spread, and over training steps).

By hand: `plot_zr.py sblimp results/lstm/summary.csv results/lstm/plots/sblimp.svg`.
"""

import argparse

import pandas as pd

from seqlab.errors import run_cli
from seqlab.report.zr_plots import BENCHMARKS, plot_zr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("benchmark", choices=sorted(BENCHMARKS))
    ap.add_argument("summary", help="the experiment's summary.csv")
    ap.add_argument("out", help="the SVG to write")
    args = ap.parse_args()
    df = pd.read_csv(args.summary)
    name = BENCHMARKS[args.benchmark][0]
    plot_zr(df, args.benchmark, args.out, title=f"{df['experiment'].iloc[0]}: {name}")


if __name__ == "__main__":
    run_cli(main)
