#!/usr/bin/env python
"""Prepare a dataset (synthetic generation or ingest) into its directory + manifest.json.

By hand: `prepare_data.py --name spidr_synth --params '{"kind": "synthetic_units"}'
--out results/data/spidr_synth`.
"""

import argparse
import json

from seqlab.data.prepare import describe, prepare_dataset
from seqlab.errors import run_cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True, help="dataset name (its key under datasets:)")
    ap.add_argument("--params", required=True, help="the dataset's config block as JSON")
    ap.add_argument("--out", required=True, help="dataset directory (gets manifest.json)")
    args = ap.parse_args()
    manifest = prepare_dataset(args.name, json.loads(args.params), args.out)
    print("\n".join(describe(manifest)))


if __name__ == "__main__":
    run_cli(main)
