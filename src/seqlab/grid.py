"""Runs of an experiment: grid x variants -> readable, path-safe, stable run ids.

Pure Python (no torch) so the Snakefile can import it to expand trials.

    grid:     {"optim.name": ["adam", "adamw"], "optim.lr": [0.01, 0.0005]}   # cartesian
    variants: {"small_256x2": {"model.hidden": 256}, "paper": {...}}          # named sets

Every variant is combined with every grid point. Run ids: `optim.lr~0.01__optim.name~adam`
(keys sorted, so reordering the config never renames a run), prefixed by the variant name
(`small_256x2__optim.lr~0.01`); `base` when there is neither grid nor variants.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

from seqlab.errors import SeqlabError

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def format_value(v: Any) -> str:
    """A short, path-safe rendering of an override value (0.0005 -> '0.0005', 1e-05 -> '1e-05')."""
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif v is None:
        s = "none"
    elif isinstance(v, float):
        s = format(v, "g")
    elif isinstance(v, list | tuple):
        s = "-".join(format_value(x) for x in v)
    else:
        s = str(v)
    return _UNSAFE.sub("-", s)


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with dotted `overrides` applied (each section must exist in base;
    the key itself may be new: validation then says whether it is a valid key)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        *sections, last = key.split(".")
        cur = out
        for p in sections:
            if not isinstance(cur.get(p), dict):
                raise SeqlabError(f"override {key!r}: {p!r} is not a section of the base config")
            cur = cur[p]
        cur[last] = copy.deepcopy(value)
    return out


def run_id(overrides: dict[str, Any], variant: str | None = None) -> str:
    """How a run is named: `key~value` per grid override, keys sorted, joined by `__`, the
    variant's name first (`small_256x2__optim.lr~0.01`); `base` with neither."""
    parts = [f"{k}~{format_value(overrides[k])}" for k in sorted(overrides)]
    if variant is not None:
        parts.insert(0, _UNSAFE.sub("-", variant))
    return "__".join(parts) or "base"


def expand_runs(exp_name: str, exp: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{run_id: {"overrides": {...}, "variant": name | None}} for one experiment.

    A typo in an override key (`optim.lrr`) is refused earlier, when the config is validated:
    every grid value and variant is checked there as if substituted into the base `train:`.
    Here only an override whose section is missing from the base (`optimm.lr`) fails, with
    the experiment named; the key itself is not checked.
    """
    grid: dict[str, list[Any]] = exp.get("grid") or {}
    variants: dict[str, dict[str, Any]] = exp.get("variants") or {}
    base = exp.get("train") or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SeqlabError(f"experiments.{exp_name}.grid.{key}: must be a non-empty list")
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    named: list[tuple[str | None, dict[str, Any]]] = list(variants.items()) or [(None, {})]
    runs: dict[str, dict[str, Any]] = {}
    for variant, vo in named:
        for where, overrides in ((f"variants.{variant}", vo or {}), ("grid", points[0])):
            try:
                apply_overrides(base, overrides)
            except SeqlabError as e:
                raise SeqlabError(f"experiments.{exp_name}.{where}: {e}") from None
        for point in points:
            overrides = {**(vo or {}), **point}
            rid = run_id(point, variant)
            if rid in runs:
                raise SeqlabError(
                    f"experiments.{exp_name}: two runs share the id {rid!r} (an id keeps "
                    "letters, digits and . _ + -); rename a variant or change a value"
                )
            runs[rid] = {"overrides": overrides, "variant": variant}
    return runs


def resolve_trial(
    exp_name: str, exp: dict[str, Any], run: str, seed: int, data: dict[str, Any]
) -> dict[str, Any]:
    """The resolved trial config written to config.json and read by the training loop."""
    runs = expand_runs(exp_name, exp)
    if run not in runs:
        raise SeqlabError(f"experiment {exp_name!r} has no run {run!r}; runs: {sorted(runs)}")
    r = runs[run]
    train = apply_overrides(exp.get("train") or {}, r["overrides"])
    if train.get("init_from"):  # each seed may start from its own parent: `.../seed{seed}/...`
        train["init_from"] = train["init_from"].replace("{seed}", str(int(seed)))
    return {
        "experiment": exp_name,
        "run": run,
        "seed": int(seed),
        "task": exp.get("task", "unit_lm"),
        "variant": r["variant"],
        "overrides": r["overrides"],
        "data": data,
        "train": train,
    }
