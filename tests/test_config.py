"""The typed config: one line per problem, naming the dotted key or file:line, before any job.

Each kind of problem is tried through a real `snakemake -n` (what a user sees: one line per
problem, exit 1, no traceback, nothing written), the finer points through the library.
"""

from __future__ import annotations

import copy
import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PYTHON, ROOT, TINY_DATASET, TINY_TRAIN, parse

from seqlab.config import TrainConfig, from_dict
from seqlab.config_datasets import UnitChecks
from seqlab.config_load import problems, validate_config
from seqlab.errors import ConfigError, SeqlabError
from seqlab.files import read_yaml


def base() -> dict[str, Any]:
    return {
        "datasets": {"tiny": copy.deepcopy(TINY_DATASET)},
        "experiments": {
            "a": {
                "dataset": "tiny",
                "train": copy.deepcopy(TINY_TRAIN),
                "grid": {"optim.lr": [0.01, 0.003]},
            },
        },
    }


def dump(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def lines_of(cfg: dict[str, Any]) -> list[str]:
    return problems(cfg)[0]


# -- what a user sees: real snakemake ----------------------------------------------------------
MISSPELT = dump(base()).replace(
    "        name: constant\n", "        name: constant\n        warmpu: 5\n"
)
DUPLICATE = dump(base()) + "  a:\n    dataset: tiny\n    train: {max_steps: 3}\n"
GRID_TYPE = dump(base()).replace("      - 0.01\n      - 0.003\n", "      - 1e-2\n      - 5e-4\n")
GRID_RANGE = dump(base()).replace("    grid:\n", "    grid:\n      max_steps: [-5, 10]\n")
INVALID = dump(base()).replace("  tiny:\n", "  tiny: {kind: synthetic_units\n", 1)
BAD_NAME = dump(base()).replace("\n  a:\n", "\n  my exp:\n")
CASES = {
    "misspelt": (
        MISSPELT,
        ["experiments.a.train.schedule.warmpu: unknown key; did you mean 'warmup'?"],
    ),
    "duplicate": (
        DUPLICATE,
        ["config.yaml:40: key 'a' appears twice in one block (first at line 9); keep one"],
    ),
    "grid_type": (
        GRID_TYPE,
        [
            "experiments.a.grid.optim.lr[0]: '1e-2' is a string, not a number: YAML 1.1 reads",
            "experiments.a.grid.optim.lr[1]: '5e-4' is a string, not a number",
        ],
    ),
    "grid_range": (GRID_RANGE, ["experiments.a.grid.max_steps[0]: must be >= 1 (got -5)"]),
    "invalid_yaml": (
        INVALID,
        [
            "config/config.yaml:3:9: invalid YAML: while parsing a flow "
            "mapping expected ',' or '}', but got ':'"
        ],
    ),
    "bad_name": (BAD_NAME, ["experiments.my exp: 'my exp' is not a path-safe name"]),
}


@pytest.mark.parametrize("case", CASES)
def test_snakemake_tells_one_line_per_problem_before_any_job(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    cmd = [
        PYTHON,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        "--cores",
        "1",
        "-n",
    ]
    if case == "invalid_yaml":  # Snakemake parses a --configfile itself (no line): the default
        (tmp_path / "config").mkdir()  # config file is read by the Snakefile, with the line
        (tmp_path / "config" / "config.yaml").write_text(text)
    else:
        (tmp_path / "config.yaml").write_text(text)
        cmd += ["--configfile", str(tmp_path / "config.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Building DAG" not in proc.stderr + proc.stdout
    told = [ln for ln in proc.stderr.splitlines() if ln and not ln.startswith("Using workflow")]
    assert told[0].startswith("config error (") and len(told) == 1 + len(expected), told
    for line, want in zip(told[1:], expected, strict=True):
        assert want in line, (line, want)
    assert not (tmp_path / "results").exists()


# -- the library -------------------------------------------------------------------------------
def test_typos_at_every_depth_are_named_with_the_nearest_key() -> None:
    cfg = base()
    x = cfg["experiments"]["a"]
    x["seed"] = [0, 1]  # for seeds:
    x["eval"] = {"swugy": {"set": "tiny"}}
    x["train"]["model"]["hiden"] = 8
    x["train"]["optim"]["betas"] = [0.9, 0.99]
    x["train"]["guard"] = {"gnorm_treshold": 10.0}
    cfg["datasets"]["tiny"]["checks"] = {"max_listd": 7}
    cfg["datasets"]["tiny"]["n_train_utterance"] = 5
    cfg["experimnts"] = {}
    got = lines_of(cfg)
    for want in [
        "experimnts: unknown key; did you mean 'experiments'?",
        "datasets.tiny.n_train_utterance: unknown key; did you mean 'n_train_utterances'?",
        "datasets.tiny.checks.max_listd: unknown key; did you mean 'max_listed'?",
        "experiments.a.seed: unknown key; did you mean 'seeds'?",
        "experiments.a.eval.swugy: unknown key; did you mean 'swuggy'?",
        "experiments.a.train.model.hiden: unknown key; did you mean 'hidden'?",
        "experiments.a.train.guard.gnorm_treshold: unknown key; did you mean 'gnorm_threshold'?",
    ]:
        assert any(line.startswith(want) for line in got), (want, got)
    assert len(got) == 7


def test_yaml_string_number_gets_the_fix() -> None:
    cfg = base()
    cfg["experiments"]["a"]["train"]["optim"]["lr"] = "1e-3"  # what YAML 1.1 reads for 1e-3
    assert lines_of(cfg) == [
        "experiments.a.train.optim.lr: '1e-3' is a string, not a number: YAML 1.1 reads a "
        "number with an exponent but no dot as a string; write 1.0e-3"
    ]


def test_old_guard_min_lr_is_told_renamed() -> None:
    cfg = base()
    cfg["experiments"]["a"]["train"]["guard"] = {"min_lr": 1e-4}
    assert lines_of(cfg) == [
        "experiments.a.train.guard.min_lr: renamed: the guard's floor is `lr_floor` "
        "(schedule.min_lr keeps its name)"
    ]


def test_wrong_kind_arch_and_references() -> None:
    cfg = base()
    cfg["datasets"]["sw"] = {"kind": "swuggy_synthetic", "world": "tiny_x"}
    cfg["datasets"]["bins"] = {"kind": "synthetic_txt"}
    cfg["experiments"]["a"]["train"]["model"]["arch"] = "lstn"
    got = lines_of(cfg)
    assert got[0].startswith("datasets.bins.kind: 'synthetic_txt' is not one of synthetic_units,")
    assert got[0].endswith("did you mean 'synthetic_text_bins'?")
    assert got[1].startswith("experiments.a.train.model.arch: 'lstn' is not one of lstm, gpt2")
    del cfg["datasets"]["bins"]
    cfg["experiments"]["a"]["train"]["model"]["arch"] = "gru_ctc"
    del cfg["experiments"]["a"]["train"]["model"]["n_embd"]
    cfg["experiments"]["a"]["eval"] = {"swuggy": {"set": "tiny"}}
    cfg["experiments"]["b"] = {"dataset": "tny", "train": {"max_steps": 2}}
    cfg["compare"] = {"c": {"experiments": ["a", "c"]}}
    assert lines_of(cfg) == [
        "datasets.sw.world: 'tiny_x' is not a synthetic_units dataset (did you mean 'tiny'? "
        "have ['sw', 'tiny'])",
        "experiments.a.train.model.arch: 'gru_ctc' does not fit task unit_lm (ctc trains "
        "gru_ctc; unit_lm and text_lm train lstm or gpt2)",
        "experiments.a.eval.swuggy.set: 'tiny' is not a dataset of kind swuggy_synthetic or "
        "swuggy_zerospeech (have ['sw', 'tiny'])",
        "experiments.b.dataset: 'tny' is not under datasets: (did you mean 'tiny'? have "
        "['sw', 'tiny'])",
        "compare.c.experiments: 'c' is not an experiment (have ['a', 'b'])",
    ]


@pytest.mark.parametrize("name", ["my exp", "lstm+bf16", "../x", ".hidden", "a/b", "data"])
def test_names_are_path_safe(name: str) -> None:
    cfg = base()
    cfg["experiments"][name] = cfg["experiments"].pop("a")
    got = lines_of(cfg)
    assert len(got) == 1 and got[0].startswith(f"experiments.{name}: "), got
    cfg = base()
    cfg["datasets"][name] = cfg["datasets"].pop("tiny")
    cfg["experiments"]["a"]["dataset"] = name
    assert [line for line in lines_of(cfg) if line.startswith(f"datasets.{name}:")] or (
        name == "data"  # reserved only among experiments (results/data holds the datasets)
    )


def test_variants_and_grid_values_are_checked_in_place() -> None:
    cfg = base()
    cfg["experiments"]["a"]["grid"] = {"optim.lr": [0.01, -1.0], "optm.lr": [0.1]}
    cfg["experiments"]["a"]["variants"] = {"small": {"model.hiden": 8, "precision": "fp33"}}
    assert lines_of(cfg) == [
        "experiments.a.grid.optim.lr[1]: must be > 0.0 (got -1.0)",
        "experiments.a.grid.optm.lr[0]: override 'optm.lr': 'optm' is not a section of the "
        "base config",
        "experiments.a.variants.small.model.hiden: unknown key; did you mean 'hidden'? "
        "valid keys: arch, n_embd, hidden, n_layer, dropout",
        "experiments.a.variants.small.precision: must be one of 'fp32', 'amp_bf16', "
        "'bf16_pure', 'amp_fp16', 'fp16_naive' or 'auto' (got 'fp33')",
    ]


def test_defaults_are_filled_and_checks_accepted_for_every_unit_kind() -> None:
    cfg = base()
    cfg["datasets"]["txt"] = {"kind": "units_text", "train": "t.txt", "checks": {"max_listed": 2}}
    shards = {"train": "a/*.tar", "eval": ["b.tar"], "checks": {"window": 500}}
    cfg["datasets"]["shards"] = {"kind": "units_shards", **shards}
    out = validate_config(cfg)
    assert out["datasets"]["txt"]["checks"]["max_listed"] == 2
    assert out["datasets"]["shards"]["checks"]["window"] == 500
    assert out["datasets"]["tiny"]["checks"] == {
        k: v for k, v in dataclasses.asdict(UnitChecks()).items() if v is not None
    }
    x = out["experiments"]["a"]
    assert x["seeds"] == [0] and x["pack"] == 1 and "eval_resources" not in x
    assert x["train"]["guard"]["lr_floor"] == 0.0 and x["train"]["schedule"]["warmup"] == 0
    assert x["grid"] == {"optim.lr": [0.01, 0.003]}


def test_duplicate_key_and_invalid_yaml_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("datasets:\n  a: {kind: synthetic_units}\n  b: {}\n  a: {}\n")
    with pytest.raises(ConfigError, match=rf"^{p}:4: key 'a' appears twice .*line 2\); keep one"):
        read_yaml(p)
    p.write_text("a:\n\tb: 1\n")
    with pytest.raises(ConfigError, match=rf"^{p}:2:1: invalid YAML: .*character '\\t'"):
        read_yaml(p)
    p.write_text("datasets: {}\nexperiments: {}\n")  # a mapping, not a list
    assert problems(read_yaml(p))[0] == [
        "datasets: must be a mapping with at least 1 entry (got {})",
        "experiments: must be a mapping with at least 1 entry (got {})",
    ]
    # one experiment's train: block reused by another with `<<: *anchor`, keys overridden
    p.write_text("a: &t\n  max_steps: 10\n  optim: {lr: 0.1}\nb:\n  <<: *t\n  optim: {lr: 1}\n")
    assert read_yaml(p)["b"] == {"max_steps": 10, "optim": {"lr": 1}}


def test_runs_that_would_share_an_id_are_refused_when_the_config_loads() -> None:
    """Run ids keep only path-safe characters, so two variants can name one directory."""
    cfg = base()
    cfg["experiments"]["a"]["variants"] = {"x y": {"max_steps": 4}, "x-y": {"max_steps": 5}}
    assert lines_of(cfg) == [
        "experiments.a: two runs share the id 'x-y__optim.lr~0.01' (an id keeps letters, "
        "digits and . _ + -); rename a variant or change a value"
    ]


def test_library_entry_points_take_the_config_dataclasses() -> None:
    """The loop's TrainConfig is the config's block: a validated dict rebuilds it with every
    default filled and nested blocks typed; a key the block lacks is named, not dropped."""
    tc = parse(TrainConfig, {"optim": {"name": "sgd", "lr": 0.1}}, "t")
    assert tc.optim.momentum == 0.0 and tc.augment.white_noise == 0.0
    assert from_dict(TrainConfig, dataclasses.asdict(tc), "t") == tc
    with pytest.raises(SeqlabError, match=r"^t\.optim\.lr: must be > 0\.0 \(got 0\)$"):
        parse(TrainConfig, {"optim": {"name": "sgd", "lr": 0}}, "t")
    with pytest.raises(SeqlabError, match=r"^t\.guard\.min_lr: unknown key; .*keys: enabled, "):
        from_dict(TrainConfig, {"guard": {"min_lr": 0.1}}, "t")


def test_every_key_is_documented() -> None:
    """config/README.md names every key of every model (so the reference cannot fall behind)."""
    import typing

    from seqlab.config import Config

    doc = (ROOT / "config" / "README.md").read_text()
    seen: set[type] = set()
    missing = []

    def walk(ann: Any) -> None:
        if dataclasses.is_dataclass(ann):
            if ann in seen:
                return
            seen.add(ann)
            for name, f in typing.get_type_hints(ann, include_extras=True).items():
                if f"`{name}`" not in doc and f"`{name}:" not in doc:
                    missing.append(f"{ann.__name__}.{name}")
                walk(f)
        for arg in typing.get_args(ann):
            walk(arg)

    walk(Config)
    assert len(seen) > 25 and not missing, missing


def test_checks_across_keys_name_the_key() -> None:
    cfg = base()
    x = cfg["experiments"]["a"]
    x["seeds"] = [0, 1, 0]
    x["train"]["schedule"] = {"name": "cosine", "warmup": 10}  # max_steps is 6
    x["grid"] = {"max_steps": [20, 8]}
    assert lines_of(cfg) == [
        "experiments.a.seeds: [0, 1, 0] repeats a seed",
        "experiments.a.train.schedule.warmup: 10 exceeds max_steps 6",
    ]
    x["seeds"] = [0, 1]
    x["train"]["max_steps"] = 20
    assert lines_of(cfg) == [
        "experiments.a.grid.max_steps[1]: train.schedule.warmup: 10 exceeds max_steps 8"
    ]


def test_values_that_fail_only_later_are_refused_when_the_config_loads() -> None:
    """A GPT-2 context shorter than seq_len fails at the first evaluation, a bad
    speaker_regex at export, an infinite lr at the first step: all are config errors."""
    cfg = base()
    x = cfg["experiments"]["a"]
    x["train"]["model"] = {"arch": "gpt2", "block_size": 16, "n_embd": 16, "n_head": 2}
    x["train"]["seq_len"] = 32
    cfg["datasets"]["text"] = {"kind": "units_text", "train": "t.txt", "speaker_regex": "(spk"}
    got = lines_of(cfg)
    assert len(got) == 2, got
    assert got[0].startswith("datasets.text.speaker_regex: '(spk' is not a regular expression")
    assert got[1] == (
        "experiments.a.train.seq_len: 32 exceeds model.block_size 16 (GPT-2's learned "
        "positions); raise block_size or lower seq_len"
    )
    x["train"]["model"]["block_size"], x["train"]["seq_len"] = 32, 16
    x["grid"] = {"seq_len": [16, 32], "model.block_size": [32, 16]}  # each value fits alone
    del cfg["datasets"]["text"]
    assert lines_of(cfg) == [
        "experiments.a.grid: the run {seq_len=32, model.block_size=16}: train.seq_len: 32 "
        "exceeds model.block_size 16 (GPT-2's learned positions); raise block_size or lower "
        "seq_len"
    ]
    x["grid"] = {"optim.lr": [0.01]}
    x["train"]["seq_len"] = 16
    x["train"]["optim"]["lr"] = float("inf")
    assert lines_of(cfg) == [
        "experiments.a.train.optim.lr: input should be a finite number (got inf)"
    ]
