#!/usr/bin/env python
"""Score one trial on a sWUGGY set: the official submission file(s) + swuggy.json.

By hand: `swuggy.py results/lstm/runs/base/seed0 --set results/data/swuggy_synth/manifest.json`
(writes seed0/swuggy.json and seed0/swuggy/lexical/dev.txt; --params takes the experiment's
eval.swuggy block as JSON: checkpoints, length_normalised, batch_size, device, threads).
"""

import argparse
import json
from pathlib import Path

from seqlab.errors import run_cli
from seqlab.eval.swuggy import evaluate_trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("trial", help="trial directory (holds model.pt, ckpt/)")
    ap.add_argument("--set", required=True, help="the set's manifest.json")
    ap.add_argument("--out", help="swuggy.json path (default: TRIAL/swuggy.json)")
    ap.add_argument("--submission", help="submission directory (default: TRIAL/swuggy)")
    ap.add_argument("--params", default="{}", help="eval.swuggy options as JSON")
    args = ap.parse_args()
    trial = Path(args.trial)
    res = evaluate_trial(
        trial,
        args.set,
        args.out or trial / "swuggy.json",
        args.submission or trial / "swuggy",
        json.loads(args.params),
    )
    held = res.get("heldout", {}).get("lexical_all")
    print(
        f"{res['set']}: lexical_all {res['lexical_all']:.4f} "
        f"(held-out voices {held if held is None else round(held, 4)}) "
        f"on {res['n_pairs']} pairs in {res['wall_s']:.1f}s on {res['device']}"
    )


if __name__ == "__main__":
    run_cli(main)
