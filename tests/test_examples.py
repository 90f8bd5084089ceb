"""Every shipped config (default and examples) validates at every depth, and each of its runs
reaches the typed config the loop reads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, parse

from seqlab.config import TrainConfig, from_dict
from seqlab.config_load import json_schema, validate_config
from seqlab.files import read_yaml
from seqlab.grid import expand_runs, resolve_trial

CONFIGS = [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "examples").glob("*.yaml"))]


def typed_value(config: Any, dotted: str) -> Any:
    """The value at a dotted key (`optim.lr`, `guard.lr_cut`) of a typed config, whose
    sections are dataclasses or dicts; tuples read as lists, as YAML writes them."""
    for part in dotted.split("."):
        config = config[part] if isinstance(config, dict) else getattr(config, part)
    return list(config) if isinstance(config, tuple) else config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_every_run_reaches_the_typed_config(path: Path) -> None:
    """The typed config checks every key at every depth (datasets, checks, model, optim,
    schedule, guard, augment, eval, every grid value and variant). Then every grid point of
    every variant is a run of its own, and each run's overrides are what the loop reads: the
    typed config of its trial holds every override's value, so no two runs train the same."""
    cfg = validate_config(read_yaml(path))  # (data paths of examples are placeholders)
    for name, exp in cfg["experiments"].items():
        runs = expand_runs(name, exp)
        n_points = math.prod(len(values) for values in (exp.get("grid") or {}).values())
        assert len(runs) == n_points * max(1, len(exp.get("variants") or {})), name
        typed = {}
        for run, spec in runs.items():
            trial = resolve_trial(name, exp, run, exp["seeds"][0], {"manifest": "-"})
            tc = parse(TrainConfig, trial["train"], f"{path.name}:{name}.{run}")
            assert from_dict(TrainConfig, trial["train"]) == tc  # what the loop rebuilds
            for key, value in spec["overrides"].items():
                assert typed_value(tc, key) == value, f"{name}.{run}: {key}"
            typed[run] = repr(tc)
        assert len(set(typed.values())) == len(runs), f"{name}: two runs train the same config"


def test_shipped_configs_cover_every_dataset_kind_and_arch() -> None:
    """So that the test above reaches every model of the typed config."""
    kinds, archs = set(), set()
    for path in CONFIGS:
        cfg = read_yaml(path)
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
    that can drift: regenerate with `python -m seqlab.config_load > workflow/schemas/...`."""
    path = ROOT / "workflow" / "schemas" / "config.schema.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(json_schema()))
