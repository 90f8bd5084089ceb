"""Every shipped config (default and examples) validates at every depth and resolves every trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT

from seqlab.config import TrainConfig, from_dict
from seqlab.config_load import json_schema, load_yaml, parse, validate_config
from seqlab.grid import expand_runs, resolve_trial

CONFIGS = [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "examples").glob("*.yaml"))]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_every_trial_resolves(path: Path) -> None:
    """The typed models check every key at every depth (datasets, checks, model, optim,
    schedule, guard, augment, eval, every grid value and variant); then every trial resolves
    into a TrainConfig with its defaults filled."""
    cfg = validate_config(load_yaml(path), [str(path)])
    assert cfg["experiments"] and cfg["datasets"]
    for name, exp in cfg["experiments"].items():
        runs = expand_runs(name, exp)
        assert runs
        for run in runs:
            trial = resolve_trial(name, exp, run, exp["seeds"][0], {"manifest": "-"})
            tc = parse(TrainConfig, trial["train"], f"{path.name}:{name}.{run}")
            assert from_dict(TrainConfig, trial["train"]) == tc  # what the loop rebuilds
            assert tc.model.arch == exp["train"]["model"]["arch"]


def test_shipped_configs_cover_every_dataset_kind_and_arch() -> None:
    """So that the test above reaches every model of the typed config."""
    kinds, archs = set(), set()
    for path in CONFIGS:
        cfg = load_yaml(path)
        kinds |= {d["kind"] for d in cfg["datasets"].values()}
        archs |= {x["train"]["model"]["arch"] for x in cfg["experiments"].values()}
    assert archs == {"lstm", "gpt2", "gru_ctc"}
    assert {
        "synthetic_units",
        "swuggy_synthetic",
        "synthetic_text_bins",
        "neural_synthetic",
    } <= kinds


def test_json_schema_is_generated_from_the_models() -> None:
    """workflow/schemas/config.schema.json (for editors) is the models' schema, not a copy
    that can drift: regenerate with `python -m seqlab.config > workflow/schemas/...`."""
    path = ROOT / "workflow" / "schemas" / "config.schema.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(json_schema()))
