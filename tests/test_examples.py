"""Every shipped config (default and examples) validates, expands and resolves every trial."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT

from seqlab.grid import expand_runs, resolve_trial
from seqlab.train.config import TrainConfig

CONFIGS = [ROOT / "config" / "config.yaml", *sorted((ROOT / "config" / "examples").glob("*.yaml"))]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_every_trial_resolves(path: Path) -> None:
    cfg = yaml.safe_load(path.read_text())
    jsonschema.validate(cfg, SCHEMA)
    for name, exp in cfg["experiments"].items():
        assert exp["dataset"] in cfg["datasets"], name
        runs = expand_runs(name, exp)
        assert runs
        for run in runs:
            trial = resolve_trial(name, exp, run, exp.get("seeds", [0])[0], {"manifest": "-"})
            TrainConfig.from_dict(trial["train"], where=f"{path.name}:{name}.{run}")
    for spec in (cfg.get("compare") or {}).values():
        assert set(spec["experiments"]) <= set(cfg["experiments"])
