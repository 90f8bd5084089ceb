"""The `seqlab` console script: the package's top layer (argparse subcommands).

    seqlab status [EXP ...] [--config config/config.yaml] [--results results] [--watch]

Subcommands read files only; nothing here runs or schedules jobs (Snakemake and Slurm do).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seqlab.cli import run_cli


def _status(args: argparse.Namespace) -> int:
    from seqlab.report.status import status_command

    return status_command(args.config, args.experiments, args.results, watch=args.watch,
                          interval=args.interval, stale_after=60 * args.stale_minutes)  # fmt: skip


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="seqlab", description="seqlab: sequence-model studies.")
    sub = ap.add_subparsers(dest="command", required=True)
    st = sub.add_parser(
        "status",
        help="every trial of a study: done, running, failed or pending (exit 1 if any failed)",
        description="One table per experiment, read from results/ only, so it works on the "
        "submit host while Slurm runs the jobs. Exit status 1 when any trial failed.",
    )
    st.add_argument("experiments", nargs="*", metavar="EXP", help="experiments (default: all)")
    st.add_argument("--config", default="config/config.yaml",
                    help="the config the study runs with (default: %(default)s)")  # fmt: skip
    st.add_argument("--results", default="results", help="results directory (default: %(default)s)")
    st.add_argument("--watch", action="store_true", help="refresh until every trial has ended")
    st.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    st.add_argument("--stale-minutes", type=float, default=30.0,
                    help="minutes without a write before a trial shows as 'stalled?'")  # fmt: skip
    st.set_defaults(func=_status)
    return ap


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_cli(lambda: sys.exit(args.func(args)))


if __name__ == "__main__":
    main()
