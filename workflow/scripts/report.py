#!/usr/bin/env python
"""Build results/report.html from the experiments' final.json and the comparison tables.

By hand: `report.py --experiments lstm gpt2 --compare results/compare/*.csv
--out results/report.html`.
"""

import argparse

from seqlab.errors import run_cli
from seqlab.report.study import report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--experiments", nargs="+", required=True)
    ap.add_argument("--compare", nargs="*", default=[])
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    print(report(args.experiments, args.results, args.compare, args.out))


if __name__ == "__main__":
    run_cli(main)
