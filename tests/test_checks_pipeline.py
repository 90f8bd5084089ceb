"""Real snakemake: a dataset's `checks:` thresholds reach only its checks rule, for every kind.

Tuning a check (even `max_listed`, a reporting knob) used to rebuild the dataset and retrain
every trial downstream. Now prepare gets the dataset block without `checks:`, and training and
summaries take checks.json as a gate (`ancient`): a retuned check that passes reruns itself only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import PYTHON, ROOT, TINY_DATASET, TINY_TRAIN, markov_utterances
from test_neural import TINY_SYNTH, baseline_pickle

from seqlab.data.ingest import write_units_text
from seqlab.data.prepare import prepare_dataset
from seqlab.data.shards import write_shards
from seqlab.data.token_bins import write_bin


def sources(src: Path) -> dict[str, dict]:
    """One dataset of every kind that has check thresholds (the sWUGGY kinds have none); the
    real-data kinds read small files made here."""
    write_units_text(src / "units.txt", ((u.key, u.units) for u in markov_utterances(80, 1)))
    write_shards(markov_utterances(60, 2, prefix="t"), src / "sh", "train", 32)
    write_shards(markov_utterances(20, 3, prefix="e"), src / "sh", "eval", 32)
    (src / "bins").mkdir()
    write_bin(src / "bins" / "train.bin", np.arange(6000) % 200)
    write_bin(src / "bins" / "val.bin", np.arange(600) % 200)
    prepare_dataset("npz", {"kind": "neural_synthetic", **TINY_SYNTH}, src / "npz")
    baseline_pickle(src / "b.pkl")
    return {
        "syn": dict(TINY_DATASET),  # a copy: the test retunes its checks
        "txt": {"kind": "units_text", "train": str(src / "units.txt"), "vocab_size": 64},
        "shards": {
            "kind": "units_shards",
            "train": str(src / "sh" / "shards" / "train-*.tar"),
            "eval": str(src / "sh" / "shards" / "eval-*.tar"),
            "vocab_size": 64,
        },  # fmt: skip
        "tbins": {
            "kind": "synthetic_text_bins",
            "seed": 1,
            "lexicon_size": 200,
            "n_train_sentences": 300,
            "n_val_sentences": 30,
        },  # fmt: skip
        "bins": {"kind": "token_bins", "path": str(src / "bins"), "vocab_size": 257},
        "neural": {"kind": "neural_synthetic", **TINY_SYNTH, "checks": {"kernel_len": 8}},
        "npz": {"kind": "neural_npz", "path": str(src / "npz"), "checks": {"kernel_len": 8}},
        "pkl": {
            "kind": "neural_pickle",
            "path": str(src / "b.pkl"),
            "trusted": True,
            "checks": {"kernel_len": 8},
        },  # fmt: skip
    }


def run_snakemake(work: Path, targets: list[str], *args: str) -> subprocess.CompletedProcess:
    where = [
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(work),
        "--configfile",
        str(work / "config.yaml"),
    ]
    cmd = [PYTHON, "-m", "snakemake", *where, "--cores", "2", *args, *targets]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def snakemake(work: Path, targets: list[str], *args: str) -> str:
    proc = run_snakemake(work, targets, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def jobs(out: str) -> dict[str, int]:
    """The dry run's job table: {rule: count}."""
    table = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.slow  # ~1.5 min of CPU: 9 datasets prepared and checked, one trial
def test_a_check_threshold_reruns_only_that_datasets_checks(tmp_path: Path) -> None:
    datasets = sources(tmp_path / "src")
    cfg = {"datasets": datasets,
           "experiments": {"a": {"dataset": "syn", "train": TINY_TRAIN}}}  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    trial = "results/a/runs/base/seed0/metrics.json"
    targets = [f"results/data/{d}/checks.json" for d in datasets] + [trial]
    snakemake(work, targets)
    tunable = list(datasets)
    for d in tunable:  # a reporting knob of every dataset with thresholds
        datasets[d]["checks"] = {**datasets[d].get("checks", {}), "max_listed": 7}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(work, targets, "-n")
    assert jobs(out) == {"check_data": len(tunable)}, out
    for d in tunable:
        assert f"dataset={d}" in out
    datasets["syn"]["checks"]["max_listed"] = 8  # one dataset retuned, for real
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    before = (work / trial).stat().st_mtime_ns
    out = snakemake(work, ["results/data/syn/checks.json", trial])
    assert "rule check_data:" in out and "rule train:" not in out
    assert "rule prepare_data:" not in out and (work / trial).stat().st_mtime_ns == before


def planned(out: str) -> set[tuple[str, str]]:
    """(rule, dataset or experiment) of every job a dry run lists."""
    found, rule = set(), None
    for line in out.splitlines():
        if m := re.match(r"\s*(?:local)?rule (\w+):$", line):
            if rule:
                found.add((rule, ""))
            rule = m[1]
        elif rule and (m := re.match(r"\s*wildcards: (?:dataset|exp)=([^,\s]+)", line)):
            found.add((rule, m[1]))
            rule = None
    return found | ({(rule, "")} if rule else set())


def rebuilt(*names: str, trials: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    """What an edited source of datasets `names` must rerun: their preparation and checks,
    and the trials (experiments) trained on them."""
    data = {(rule, d) for d in names for rule in ("prepare_data", "check_data")}
    return data | {("train", e) for e in trials}


@pytest.mark.slow  # ~1.5 min of CPU: 6 datasets prepared and checked, three trials
def test_an_edited_source_file_rebuilds_its_dataset_and_nothing_else(tmp_path: Path) -> None:
    """The files a dataset reads are inputs of prepare_data: a units file changed in place
    (a re-tokenized corpus at the same path) or a rewritten shard reruns that dataset's
    preparation, checks and trials, and nothing of the other datasets."""
    src = tmp_path / "src"
    datasets = {
        d: b for d, b in sources(src).items() if d in ("syn", "txt", "shards", "bins", "npz", "pkl")
    }
    experiments = {
        e: {"dataset": d, "train": TINY_TRAIN}
        for e, d in (("a", "syn"), ("t", "txt"), ("s", "shards"))
    }
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(
        yaml.safe_dump({"datasets": datasets, "experiments": experiments})
    )
    targets = [f"results/data/{d}/checks.json" for d in datasets]
    targets += [f"results/{e}/runs/base/seed0/metrics.json" for e in experiments]
    snakemake(work, targets)
    assert planned(snakemake(work, targets, "-n")) == set()

    units = src / "units.txt"  # one unit of the first utterance changed, in place
    name, seq = units.read_text().split("\n", 1)[0].split("\t")
    first, rest = seq.split(",", 1)
    lines = units.read_text().split("\n")
    lines[0] = f"{name}\t{(int(first) + 1) % 64},{rest}"
    units.write_text("\n".join(lines))
    out = snakemake(work, targets, "-n")
    assert planned(out) == rebuilt("txt", trials=("t",)), out

    shard = src / "sh" / "shards" / "train-000000.tar"  # rewritten with one utterance changed
    utts = list(markov_utterances(60, 2, prefix="t"))
    utts[0].units[0] = (utts[0].units[0] + 1) % 64
    write_shards(utts, tmp_path / "edited", "train", 32)
    shutil.copyfile(tmp_path / "edited" / "shards" / shard.name, shard)
    out = snakemake(work, targets, "-n")
    assert planned(out) == rebuilt("txt", "shards", trials=("t", "s")), out

    # the other kinds that read files, each file rewritten with other content (a mere touch
    # reruns nothing: Snakemake compares the checksum of a file up to 1 MB, the time of larger)
    write_bin(src / "bins" / "val.bin", (np.arange(600) + 1) % 200)
    baseline_pickle(src / "b.pkl", per_day=4)
    other = {"kind": "neural_synthetic", **TINY_SYNTH, "seed": TINY_SYNTH["seed"] + 1}
    prepare_dataset("npz", other, tmp_path / "npz2")
    shutil.copyfile(tmp_path / "npz2" / "test.npz", src / "npz" / "test.npz")
    out = snakemake(work, targets, "-n")
    assert planned(out) == rebuilt("txt", "shards", "bins", "npz", "pkl", trials=("t", "s")), out


def test_a_missing_source_file_is_named_before_any_job(tmp_path: Path) -> None:
    bins = tmp_path / "bins"
    bins.mkdir()
    write_bin(bins / "train.bin", np.arange(6000) % 200)  # no val.bin
    cfg = {
        "datasets": {
            "syn": TINY_DATASET,
            "bins": {"kind": "token_bins", "path": str(bins), "vocab_size": 257},
        },
        "experiments": {"a": {"dataset": "syn", "train": TINY_TRAIN}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, ["results/data/bins/checks.json"])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and str(bins / "val.bin") in out, out
    assert "Traceback" not in out and not (tmp_path / "results" / "data").exists(), out
