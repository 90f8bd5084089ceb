"""The config from the command line: `seqlab check-config` and `snakemake -n` refuse, in one
line and before any job, what would fail later (missing unit files, packing a multi-GPU
trial), and read `--config` values as the config file would."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PYTHON, ROOT
from test_config import base, dump, lines_of

from seqlab.config_load import load_config
from seqlab.errors import ConfigError


def test_check_config_command_names_file_and_line(tmp_path: Path) -> None:
    """`seqlab check-config`: what Snakemake's own parser of a --configfile cannot say."""
    bad = tmp_path / "my.yaml"
    bad.write_text("datasets:\n  a: {kind: x\nexperiments: {}\n")
    cmd = [PYTHON, "-m", "seqlab.commands", "check-config"]
    proc = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and f"{bad}:3:12: invalid YAML" in proc.stderr, proc.stderr
    typo = copy.deepcopy(base())
    typo["experiments"]["a"]["train"]["schedule"]["warmpu"] = 3
    bad.write_text(yaml.safe_dump(typo))
    proc = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "experiments.a.train.schedule.warmpu: unknown key; did you mean 'warmup'?" in (
        proc.stderr
    )
    proc = subprocess.run(
        [*cmd, str(ROOT / "config/config.yaml")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "valid" in proc.stdout, proc.stderr
    bad.write_bytes(b"experiments:\n  # caf\xe9 (Latin-1)\n  a: {}\n")
    proc = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and f"{bad}:2: not UTF-8 (byte 0xe9)" in proc.stderr, proc.stderr


# -- what fails later is told at load, by check-config and the Snakefile alike -----------------
def snakemake_dry_run(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir)]
    cmd += ["--configfile", str(workdir / "config.yaml"), "--cores", "1", "-n", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=workdir)


def check_config(path: Path) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-m", "seqlab.commands", "check-config", str(path.name)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=path.parent)


def test_missing_data_files_are_named_at_load(tmp_path: Path) -> None:
    """A file a dataset reads that is not there (a units file, a shard glob that matches
    nothing, a token bin) fails `check-config` and `snakemake -n` with one line naming its key,
    not as a missing job input, nor in prepare_data on a cluster node after submission."""
    cfg = base()
    cfg["datasets"]["txt"] = {"kind": "units_text", "train": "units/train.txt"}
    tars = {"train": "shards/train-*.tar", "eval": ["shards/eval.tar"]}
    cfg["datasets"]["tars"] = {"kind": "units_shards", **tars}
    cfg["datasets"]["bins"] = {"kind": "token_bins", "path": "owt", "vocab_size": 50257}
    (tmp_path / "config.yaml").write_text(dump(cfg))
    want = [
        f"datasets.{name}.{key}: no file matches {path!r} (relative to where snakemake runs); "
        "fix the path or create the file"
        for name, key, path in [
            ("txt", "train", "units/train.txt"),
            ("tars", "train", "shards/train-*.tar"),
            ("tars", "eval", "shards/eval.tar"),
            ("bins", "path", "owt/train.bin"),
            ("bins", "path", "owt/val.bin"),
        ]
    ]
    for proc in (snakemake_dry_run(tmp_path), check_config(tmp_path / "config.yaml")):
        told = [ln for ln in proc.stderr.splitlines() if ln and not ln.startswith("Using")]
        assert proc.returncode == 1 and told[1:] == want, proc.stderr
        assert told[0].startswith("config error (") and told[0].endswith("config.yaml):")
    for f in (
        "units/train.txt",
        "shards/train-000.tar",
        "shards/eval.tar",
        "owt/train.bin",
        "owt/val.bin",
    ):
        (tmp_path / f).parent.mkdir(exist_ok=True)
        (tmp_path / f).write_text("")
    proc = check_config(tmp_path / "config.yaml")
    assert proc.returncode == 0 and proc.stdout == "config.yaml: valid\n", proc.stderr
    assert snakemake_dry_run(tmp_path).returncode == 0
    assert not (tmp_path / "results").exists()


def test_pack_with_more_than_one_gpu_per_trial_fails_check_config(tmp_path: Path) -> None:
    cfg = base()
    cfg["experiments"]["a"].update(pack=2, resources={"gpu": 3})
    assert lines_of(cfg) == [
        "experiments.a.pack: 2 packs trials onto one GPU, but resources.gpu asks for more than "
        "one per trial (DDP): use pack: 1 or gpu: 1"
    ]
    (tmp_path / "config.yaml").write_text(dump(cfg))
    proc = check_config(tmp_path / "config.yaml")
    assert proc.returncode == 1 and "experiments.a.pack: 2 packs trials" in proc.stderr


def test_command_line_values_read_as_in_a_config_file(tmp_path: Path) -> None:
    """Snakemake reads the values nested in --config as strings: they are read as the same
    text in the config file would be. A number quoted in the file is still refused."""
    (tmp_path / "config.yaml").write_text(dump(base()))
    override = "experiments={a: {seeds: [5], train: {max_steps: 10, optim: {lr: 1e-3}}}}"
    proc = snakemake_dry_run(tmp_path, "--config", override)
    assert proc.returncode == 0 and "/seed5/config.json" in proc.stdout, proc.stderr
    overrides = {"experiments": {"a": {"train": {"max_steps": "10", "tf32": "true"}}}}
    train = load_config([str(tmp_path / "config.yaml")], overrides)["experiments"]["a"]["train"]
    assert train["max_steps"] == 10 and train["tf32"] is True
    cfg = base()
    cfg["experiments"]["a"]["train"]["max_steps"] = "700"  # max_steps: "700" in the file
    (tmp_path / "config.yaml").write_text(dump(cfg))
    with pytest.raises(ConfigError) as e:
        load_config([str(tmp_path / "config.yaml")])
    assert str(e.value) == (
        "experiments.a.train.max_steps: '700' is a string, not a number: write it without quotes"
    )
    proc = snakemake_dry_run(tmp_path, "--config", "experiments={a: {train: {max_steps: ten}}}")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-2:] == [
        f"config error ({tmp_path / 'config.yaml'}, --config):",
        "experiments.a.train.max_steps: input should be a valid integer (got 'ten')",
    ], proc.stderr
