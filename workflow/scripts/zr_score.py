#!/usr/bin/env python
"""Score one trial on a sWUGGY or sBLIMP set: the official submission files + swuggy.json or
sblimp.json.

By hand:
    zr_score.py sblimp results/lstm/runs/base/seed0 --set results/data/sblimp_synth/manifest.json
(writes seed0/sblimp.json and seed0/sblimp/syntactic/dev.txt, the other scoring convention's
file under seed0/sblimp/mean_logprob/; --params takes the experiment's eval.sblimp or
eval.swuggy block as JSON: checkpoints, length_normalised, batch_size, device, threads).
"""

import argparse
import json
from pathlib import Path

from seqlab.errors import run_cli
from seqlab.eval.zr import evaluate_trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("benchmark", choices=["swuggy", "sblimp"])
    ap.add_argument("trial", help="trial directory (holds model.pt, ckpt/)")
    ap.add_argument("--set", required=True, help="the set's manifest.json")
    ap.add_argument("--out", help="results path (default: TRIAL/BENCHMARK.json)")
    ap.add_argument("--submission", help="submission directory (default: TRIAL/BENCHMARK)")
    ap.add_argument("--params", default="{}", help="eval.BENCHMARK options as JSON")
    args = ap.parse_args()
    trial, name = Path(args.trial), args.benchmark
    res = evaluate_trial(
        name,
        trial,
        args.set,
        args.out or trial / f"{name}.json",
        args.submission or trial / name,
        json.loads(args.params),
    )
    head = "lexical_all" if name == "swuggy" else "syntactic_all"
    held = res.get("heldout", {}).get(head)
    print(
        f"{res['set']}: {head} {res[head]:.4f} by {res['convention']} "
        f"(held-out voices {held if held is None else round(held, 4)}) "
        f"on {res['n_pairs']} pairs in {res['wall_s']:.1f}s on {res['device']}"
    )


if __name__ == "__main__":
    run_cli(main)
