#!/usr/bin/env python
"""Run the tokenization checks of a dataset; write checks.json only if every check passes.

By hand: `check_data.py results/data/spidr_synth/manifest.json /tmp/checks.json`.
"""

import argparse
import json

from seqlab.data.checks import check_and_write
from seqlab.errors import run_cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("manifest")
    ap.add_argument("out")
    ap.add_argument("--params", default="{}", help="check thresholds as JSON")
    args = ap.parse_args()
    result = check_and_write(args.manifest, args.out, json.loads(args.params))
    print(f"all checks passed; unigram entropy {result['unigram_entropy_nats']:.3f} nats")


if __name__ == "__main__":
    run_cli(main)
