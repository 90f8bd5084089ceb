#!/usr/bin/env python
"""Decode a CTC trial's model.pt (its best checkpoint by PER) on a split; write per.json.

By hand: `per.py results/gru_ctc/runs/base/seed0/model.pt /tmp/per.json --split competition`.
"""

import argparse

from seqlab.errors import run_cli
from seqlab.eval.per import write_per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="the trial's model.pt")
    ap.add_argument("out", help="per.json to write")
    ap.add_argument("--split", default="test", help="split of the trial's dataset (test)")
    args = ap.parse_args()
    res = write_per(args.model, args.out, args.split)
    base = res["baseline"]
    print(
        f"PER {res['per']:.4f} on {res['n_trials']} {args.split} trials "
        f"(blank {base['blank_per']:.3f}, majority {base['majority_per']:.3f})"
    )


if __name__ == "__main__":
    run_cli(main)
