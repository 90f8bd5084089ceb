#!/usr/bin/env python
"""Write one cross-experiment comparison table (results/compare/{name}.csv).

By hand: `compare.py lstm_vs_gpt2 '{"kind": "experiments", "experiments": ["lstm", "gpt2"]}'
results/compare/lstm_vs_gpt2.csv`.
"""

import argparse
import json

from seqlab.errors import run_cli
from seqlab.report.study import compare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name")
    ap.add_argument("spec", help="the comparison's config block as JSON")
    ap.add_argument("out")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    table = compare(args.name, json.loads(args.spec), args.results, args.out)
    print(f"{args.name}: {len(table)} rows")


if __name__ == "__main__":
    run_cli(main)
