#!/usr/bin/env python
"""Write a JSON document (given on the command line) to a file, atomically and key-sorted.

Used by the trial_config rule: `write_json.py results/.../config.json '{"seed": 0, ...}'`.
"""

import argparse
import json

from seqlab.errors import run_cli
from seqlab.files import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("document", help="a JSON document")
    args = ap.parse_args()
    write_json(args.out, json.loads(args.document))


if __name__ == "__main__":
    run_cli(main)
