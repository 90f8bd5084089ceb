"""The `seqlab` console script: the package's top layer (argparse subcommands).

    seqlab status [EXP ...] [--config config/config.yaml] [--results results] [--watch]
    seqlab check-config FILE.yaml      # the checks Snakemake runs at load, file:line for YAML

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


def _check_config(args: argparse.Namespace) -> int:
    """What the Snakefile checks at load, for a file Snakemake would parse first itself
    (a `--configfile`: Snakemake's own message for invalid YAML names no file or line)."""
    from seqlab.config_load import ConfigError, load_yaml, validate_config

    try:
        validate_config(load_yaml(args.file), [args.file])
    except ConfigError as e:
        print(f"config error ({args.file}):\n{e}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid")
    return 0


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
    cc = sub.add_parser(
        "check-config",
        help="validate a config file as Snakemake's load would (exit 1 on any problem)",
        description="One line per problem: the dotted key and the fix, or file:line:column "
        "for invalid YAML and duplicated keys.",
    )
    cc.add_argument("file", help="the YAML config file")
    cc.set_defaults(func=_check_config)
    return ap


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_cli(lambda: sys.exit(args.func(args)))


if __name__ == "__main__":
    main()
