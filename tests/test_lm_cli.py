"""workflow/scripts/lm.py resolves the same trials as the train rule (seqlab.grid)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from conftest import ROOT

from seqlab.grid import resolve_trial

CFG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
DATA = {
    "dataset": "text_synth",
    "manifest": "results/data/text_synth/manifest.json",
    "checks": "results/data/text_synth/checks.json",
}


def _lm():
    spec = importlib.util.spec_from_file_location("lm_cli", ROOT / "workflow/scripts/lm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_configured_mode_is_the_rules_trial() -> None:
    exp = CFG["experiments"]["lm"]
    got = _lm().trials_of(CFG, "lm", "amp_bf16", [0, 1], None, Path("results"))
    assert got == [resolve_trial("lm", exp, "precision~amp_bf16", s, DATA) for s in (0, 1)]


def test_max_iters_and_an_off_grid_mode_are_runs_of_their_own() -> None:
    lm = _lm()
    got = lm.trials_of(CFG, "lm", "all", [0], 7, Path("results"))
    assert len(got) == len(CFG["experiments"]["lm"]["grid"]["precision"])
    assert {t["run"] for t in got} >= {"max_steps~7__precision~fp32"}
    assert all(t["train"]["max_steps"] == 7 for t in got)
    cfg = {**CFG, "experiments": {"lm": {**CFG["experiments"]["lm"], "grid": {}}}}
    (off,) = lm.trials_of(cfg, "lm", "bf16_pure", [3], None, Path("results"))
    assert off["run"] == "precision~bf16_pure" and off["seed"] == 3
    assert off["train"]["precision"] == "bf16_pure"
    assert off["overrides"] == {"precision": "bf16_pure"}
