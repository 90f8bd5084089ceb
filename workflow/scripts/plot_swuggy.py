#!/usr/bin/env python
"""Plot an experiment's sWUGGY (per run with seed spread, and over training steps).

By hand: `plot_swuggy.py results/lstm/summary.csv results/lstm/plots/swuggy.svg`.
"""

import argparse

import pandas as pd

from seqlab.errors import run_cli
from seqlab.report.swuggy_plots import plot_swuggy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("summary", help="the experiment's summary.csv")
    ap.add_argument("out", help="the SVG to write")
    args = ap.parse_args()
    df = pd.read_csv(args.summary)
    plot_swuggy(df, args.out, title=f"{df['experiment'].iloc[0]}: sWUGGY")


if __name__ == "__main__":
    run_cli(main)
