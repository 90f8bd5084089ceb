#!/usr/bin/env python
"""The precision study by hand, with the command line of the hand-run study's run.py.

    lm.py --config amp_bf16 --seed 0        # one mode, one seed
    lm.py --config all --seeds 3            # every mode of the grid, seeds 0..2
    lm.py --config amp_bf16 --max_iters 100 # quick test

Trials are those of the `lm` experiment in config/config.yaml (or --configfile), resolved by
seqlab.grid exactly as the Snakemake rules resolve them, and trained by the same library call
(seqlab.train.loop.train) into the same results/{exp}/runs/{run}/seed{seed}/ directories, so a
later `snakemake results/lm/final.json` reuses them. `--max_iters N` is an extra override, so
its trials are runs of their own (`max_steps~N__precision~...`), never mixed with the
configured ones. Each trial runs in a fresh process: peak memory (RSS on CPU, CUDA max
allocated on GPU) is then the trial's own, not the high-water mark of earlier trials.
"""

import argparse
import copy
import multiprocessing as mp
from pathlib import Path
from typing import Any

from seqlab.config_load import load_config
from seqlab.data.checks import check_and_write
from seqlab.data.prepare import prepare_dataset
from seqlab.errors import SeqlabError, run_cli
from seqlab.files import read_json, write_json
from seqlab.grid import expand_runs, resolve_trial
from seqlab.report.precision_study import format_precision_table, precision_table
from seqlab.report.summary import load_trials
from seqlab.train.loop import train

ROOT = Path(__file__).resolve().parents[2]


def narrowed(exp: dict[str, Any], mode: str, max_iters: int | None) -> dict[str, Any]:
    """The experiment as the command line narrows it: a mode outside the grid becomes the
    grid's only precision, and `--max_iters N` a grid key of one value (so its runs have ids
    of their own, `max_steps~N__precision~...`, never mixed with the configured ones)."""
    exp = copy.deepcopy(exp)
    grid = exp["grid"] = dict(exp.get("grid") or {})
    if mode != "all" and mode not in grid.get("precision", []):
        grid["precision"] = [mode]
    if max_iters:
        grid["max_steps"] = [max_iters]
    return exp


def trials_of(
    cfg: dict, exp_name: str, mode: str, seeds: list[int], max_iters: int | None, results: Path
) -> list[dict[str, Any]]:
    """Resolved trial configs (the train rule's config.json) for `mode` ('all': every run)."""
    if exp_name not in cfg["experiments"]:
        raise SeqlabError(
            f"experiment {exp_name!r} not in the config; has {list(cfg['experiments'])}"
        )
    exp = narrowed(cfg["experiments"][exp_name], mode, max_iters)
    d = results / "data" / exp["dataset"]
    data = {
        "dataset": exp["dataset"],
        "manifest": str(d / "manifest.json"),
        "checks": str(d / "checks.json"),
    }
    runs = [
        r
        for r, v in expand_runs(exp_name, exp).items()
        if mode == "all" or v["overrides"].get("precision") == mode
    ]
    return [resolve_trial(exp_name, exp, run, seed, data) for run in runs for seed in seeds]


def ensure_data(cfg: dict, name: str, results: Path) -> None:
    """The prepare and check_data rules' library calls, when their outputs are missing."""
    d, block = results / "data" / name, cfg["datasets"][name]
    if not (d / "manifest.json").exists():
        prepare_dataset(name, block, d)
    if not (d / "checks.json").exists():
        check_and_write(d / "manifest.json", d / "checks.json", block.get("checks"))


def _train_one(trial: dict[str, Any], out: str) -> None:
    """The train rule's library call, in a fresh process (a user error: one line, exit 1)."""
    tag = f"[{trial['run']} seed{trial['seed']}]"
    run_cli(lambda: train(trial, out, echo=lambda line: print(f"{tag} {line}", flush=True)))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="all", help="precision mode (fp32, amp_bf16, ...) or 'all'")
    ap.add_argument("--seed", type=int, help="one seed")
    ap.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: the experiment's seeds)")
    ap.add_argument("--max_iters", type=int, help="override train.max_steps (a quick test)")
    ap.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--experiment", default="lm")
    ap.add_argument("--results", default="results", help="results directory (default: ./results)")
    ap.add_argument("--force", action="store_true", help="retrain trials that have metrics.json")
    args = ap.parse_args()
    cfg = load_config([args.configfile])  # as the Snakefile
    results = Path(args.results)
    exp = cfg["experiments"].get(args.experiment, {})
    seeds = (
        [args.seed]
        if args.seed is not None
        else list(range(args.seeds))
        if args.seeds
        else exp.get("seeds", [0])
    )
    trials = trials_of(cfg, args.experiment, args.config, seeds, args.max_iters, results)
    ensure_data(cfg, exp["dataset"], results)
    dirs = []
    for trial in trials:
        out = results / args.experiment / "runs" / trial["run"] / f"seed{trial['seed']}"
        dirs.append(out)
        same = (out / "config.json").exists() and read_json(out / "config.json") == trial
        if same and (out / "metrics.json").exists() and not args.force:
            print(f"{out}: done already (--force retrains)")
            continue
        write_json(out / "config.json", trial)
        proc = mp.get_context("spawn").Process(target=_train_one, args=(trial, str(out)))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SeqlabError(f"{out}: training failed (exit status {proc.exitcode})")
    print(format_precision_table(precision_table(load_trials(dirs))))


if __name__ == "__main__":
    run_cli(main)
