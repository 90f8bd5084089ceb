"""The `seqlab` console script: the package's top layer (argparse subcommands).

    seqlab status [EXP ...] [--config config/config.yaml] [--results results] [--watch]
    seqlab --version
    seqlab check-config FILE.yaml      # the checks Snakemake runs at load, file:line for YAML
    seqlab export-shards MANIFEST OUT  # a prepared unit dataset as WebDataset shards
    seqlab export-hf TRIAL_DIR OUT     # a GPT-2 trial as a Hugging Face GPT2LMHeadModel

Subcommands read results or write where they are told; nothing here runs or schedules jobs
(Snakemake and Slurm do).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from seqlab.errors import ConfigError, SeqlabError, run_cli
from seqlab.files import read_json

T = TypeVar("T")


def _status(args: argparse.Namespace) -> int:
    from seqlab.report.status import status_command

    return status_command(
        args.config,
        args.experiments,
        args.results,
        watch=args.watch,
        interval=args.interval,
        stale_after=60 * args.stale_minutes,
    )


def _check_config(args: argparse.Namespace) -> int:
    """What the Snakefile checks at load, for a file Snakemake would parse first itself
    (a `--configfile`: Snakemake's own message for invalid YAML names no file or line)."""
    from seqlab.config_load import load_config
    from seqlab.data.sources import require_source_files

    try:
        require_source_files(load_config([args.file])["datasets"])
    except ConfigError as e:
        print(f"config error ({args.file}):\n{e}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid")
    return 0


def _into_new_dir(out: Path, write: Callable[[Path], T]) -> T:
    """All or nothing: `write` fills a temp dir beside `out`, renamed to `out` when it
    returns, so a failure leaves no partial output. `out` must be new or an empty dir."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SeqlabError(
            f"{out}: exists and is not an empty directory; name a new one "
            "(an export never mixes its files with other files)"
        )
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        tmp.mkdir(parents=True)
        result = write(tmp)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _export_shards(args: argparse.Namespace) -> int:
    """Every split of a prepared unit dataset as `OUT/{split}-{i:06d}.tar`, the interchange
    format (text ingest writes only the packed store)."""
    from seqlab.data.ingest import export_shards

    out = Path(args.out_dir)
    if args.shard_size < 1:
        raise SeqlabError(f"--shard-size {args.shard_size}: must be at least 1")
    written = _into_new_dir(out, lambda tmp: export_shards(args.manifest, tmp, args.shard_size))
    for split, shards in written.items():
        n = sum(int(e.get("n_samples", 0)) for e in shards)
        print(f"{split}: {len(shards)} shards, {n} utterances -> {out}/{split}-*.tar")
    return 0


def _export_hf(args: argparse.Namespace) -> int:
    """A GPT-2 trial's model.pt (through seqlab's loader, which verifies it) as a Hugging Face
    GPT2LMHeadModel directory; BOS/EOS from the manifest of the data the trial trained on."""
    from seqlab.data.manifest import bos_eos
    from seqlab.models.gpt2 import GPT
    from seqlab.models.hf_gpt2 import write_hf_gpt2
    from seqlab.train.load import load_model

    trial, out = Path(args.trial_dir), Path(args.out_dir)
    if not (trial / "model.pt").is_file():
        raise SeqlabError(
            f"{trial}: no model.pt; give a finished trial's directory (results/EXP/runs/RUN/seedN)"
        )
    model, ck = load_model(trial / "model.pt")
    if not isinstance(model, GPT):
        arch = (ck.get("model_config") or {}).get("arch")
        raise SeqlabError(
            f"{trial}: its model is {arch}, not gpt2; export-hf writes GPT-2 trials only "
            "(as Hugging Face's GPT2LMHeadModel)"
        )
    trial_config = ck.get("trial") or read_json(trial / "config.json")  # what the trial ran
    manifest = args.manifest or trial_config.get("data", {}).get("manifest", "(none)")
    if not Path(manifest).is_file():
        raise SeqlabError(
            f"{manifest}: the trial's dataset manifest not found (for its BOS/EOS ids); "
            "run from where snakemake ran, or give --manifest"
        )
    bos, eos = bos_eos(read_json(manifest))
    _into_new_dir(out, lambda tmp: write_hf_gpt2(model, tmp, bos, eos))
    print(
        f"{trial} -> {out}: GPT2LMHeadModel (step {ck.get('step')}), vocab_size "
        f"{model.config.vocab_size}, bos_token_id {bos}, eos_token_id {eos}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="seqlab", description="seqlab: sequence-model studies.")
    ap.add_argument("--version", action="version", version=f"%(prog)s {version('seqlab')}")
    sub = ap.add_subparsers(dest="command", required=True)
    st = sub.add_parser(
        "status",
        help="every trial of a study: done, running, failed or pending (exit 1 if any failed)",
        description="One table per experiment, read from results/ only, so it works on the "
        "submit host while Slurm runs the jobs. Exit status 1 when any trial failed, 2 for an "
        "experiment found neither in the config nor under results/.",
    )
    st.add_argument("experiments", nargs="*", metavar="EXP", help="experiments (default: all)")
    st.add_argument(
        "--config",
        help="the config the study runs with, for its pending trials (default: "
        "config/config.yaml if there is one); an experiment it does not have is listed from "
        "the trials' config.json files under --results",
    )
    st.add_argument("--results", default="results", help="results directory (default: %(default)s)")
    st.add_argument("--watch", action="store_true", help="refresh until every trial has ended")
    st.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    st.add_argument(
        "--stale-minutes",
        type=float,
        default=30.0,
        help="minutes without a write before a trial shows as 'stalled?'",
    )
    st.set_defaults(func=_status)
    cc = sub.add_parser(
        "check-config",
        help="validate a config file as Snakemake's load would (exit 1 on any problem)",
        description="One line per problem: the dotted key and the fix, or file:line:column "
        "for invalid YAML and duplicated keys.",
    )
    cc.add_argument("file", help="the YAML config file")
    cc.set_defaults(func=_check_config)
    ex = sub.add_parser(
        "export-shards",
        help="write a prepared unit dataset as WebDataset shards (the interchange format)",
        description="Every split of the dataset as OUT/{split}-NNNNNN.tar, one sample per "
        "utterance: __key__, units.npy (uint16, no BOS/EOS) and json (its metadata). A "
        "`units_shards` dataset reads them back.",
    )
    ex.add_argument("manifest", help="the dataset's manifest.json (results/data/NAME/)")
    ex.add_argument("out_dir", help="a new or empty directory for the shards")
    ex.add_argument("--shard-size", type=int, default=1000, help="utterances per shard")
    ex.set_defaults(func=_export_shards)
    hf = sub.add_parser(
        "export-hf",
        help="write a GPT-2 trial as a Hugging Face GPT2LMHeadModel (config.json + safetensors)",
        description="OUT_DIR gets config.json and model.safetensors, which "
        "transformers.GPT2LMHeadModel.from_pretrained(OUT_DIR) loads: the trial's model.pt "
        "weights (its best step), the real vocabulary (padding rows dropped) and the data's "
        "BOS/EOS ids. GPT-2 trials only.",
    )
    hf.add_argument("trial_dir", help="a finished trial: results/EXP/runs/RUN/seedN")
    hf.add_argument("out_dir", help="a new or empty directory")
    hf.add_argument(
        "--manifest",
        help="the dataset's manifest.json, for BOS/EOS (default: the one config.json names)",
    )
    hf.set_defaults(func=_export_hf)
    return ap


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_cli(lambda: sys.exit(args.func(args)))


if __name__ == "__main__":
    main()
