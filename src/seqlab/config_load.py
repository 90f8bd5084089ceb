"""Load and validate the config once: one line per problem, naming the file:line or dotted key.

pydantic validates the dataclasses of seqlab.config as they are (TypeAdapter); this module is
the policy of how problems are told. `python -m seqlab.config_load` prints the JSON schema.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import types
import typing
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from seqlab.config import Config, GuardConfig, TrainConfig, near
from seqlab.config_datasets import SBLIMP_KINDS, SWUGGY_KINDS, TASK_KINDS
from seqlab.errors import ConfigError, SeqlabError
from seqlab.files import read_yaml
from seqlab.grid import apply_overrides, expand_runs

#: pydantic error type -> what the value must be (ge/gt/le/lt come from the error's ctx)
WANTS = {"bool_type": "true or false", "literal_error": "one of {expected}"}
BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


# -- validation errors -> one line each -------------------------------------------------------
@functools.cache
def adapter(cls: Any) -> TypeAdapter:
    return TypeAdapter(cls)


def locate(root: Any, loc: tuple[Any, ...]) -> tuple[str, Any]:
    """The dotted key of a pydantic error location (a tagged union's tag dropped) and the
    dataclass that holds its last part (for a misspelt key: the block whose keys to suggest)."""
    parts, ann, holder = [], root, None
    for item in (i for i in loc if i != "[key]"):  # [key]: the name itself is wrong
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if typing.get_origin(ann) in (typing.Union, types.UnionType):  # X | None, or tagged
            ann = next((m for m in args if len(args) == 1 or _tag(m) == item), None)
            if len(args) > 1:
                continue  # the item was the tag
        if dataclasses.is_dataclass(ann):
            holder, ann = ann, typing.get_type_hints(ann).get(item)  # Annotated stripped
            parts.append(str(item))
        elif typing.get_origin(ann) is dict:
            parts.append(str(item))
            ann = typing.get_args(ann)[1]
        elif isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
            ann = (typing.get_args(ann) or [None])[0]
    return ".".join(parts), holder


def _tag(block: Any) -> Any:
    return getattr(block, "kind", None) or getattr(block, "arch", None)


def message(err: dict[str, Any], holder: Any, key: Any) -> str:
    """What is wrong and the fix, for one pydantic error."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx", {})
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        if holder is GuardConfig and key == "min_lr":
            return "renamed: the guard's floor is `lr_floor` (schedule.min_lr keeps its name)"
        valid = [f.name for f in dataclasses.fields(holder)] if holder else []
        return f"unknown key; {near(key, valid)}valid keys: {', '.join(valid)}"
    if kind.startswith("missing") or kind == "union_tag_not_found":
        return "required key is missing"
    if kind in ("int_type", "float_type") and isinstance(value, str):
        if m := re.fullmatch(r"\s*([+-]?\d+)([eE][+-]?\d+)\s*", value):  # YAML 1.1: 1e-3
            return (
                f"{value!r} is a string, not a number: YAML 1.1 reads a number with an exponent "
                f"but no dot as a string; write {m[1]}.0{m[2]}"
            )
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value.strip()):
            return f"{value!r} is a string, not a number: write it without quotes"
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in ctx["expected_tags"].split(",")]
        return f"{ctx['tag']!r} is not one of {', '.join(tags)}; {near(value, tags)}"
    if kind == "value_error":
        return err["msg"].removeprefix("Value error, ")
    if kind == "too_short" and isinstance(value, dict):
        return f"must be a mapping with at least {ctx['min_length']} entry (got {value!r})"
    if bound := [f"{BOUNDS[k]} {v}" for k, v in ctx.items() if k in BOUNDS]:
        return f"must be {bound[0]} (got {value!r})"
    if kind in WANTS:
        return f"must be {WANTS[kind].format(**ctx)} (got {value!r})"
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return f"{err['msg'][:1].lower()}{err['msg'][1:]}{shown}"


def errors_of(root: Any, e: ValidationError, prefix: str = "") -> list[str]:
    """One line per located problem (a union's alternatives at one key share a line)."""
    lines: dict[str, list[str]] = {}
    for err in e.errors():
        path, holder = locate(root, tuple(err["loc"]))
        if err["type"].startswith("union_tag"):  # the bad or missing `kind` / `arch`
            tag = err["ctx"]["discriminator"].strip("'")
            path, err = f"{path}.{tag}".lstrip("."), {**err, "input": err["input"].get(tag)}
        m = message(err, holder, err["loc"][-1] if err["loc"] else None)
        if err["type"] == "value_error" and (inner := re.match(r"([\w.]+): ", m)):
            path, m = f"{path}.{inner[1]}".lstrip("."), m[inner.end() :]
        msgs = lines.setdefault(".".join(p for p in (prefix, path) if p) or "config", [])
        msgs += [] if m in msgs else [m]
    return [f"{path}: {' or '.join(msgs)}".rstrip("; ") for path, msgs in lines.items()]


# -- across keys: references, grids, files -----------------------------------------------------
def _absent(where: str, value: Any, what: str, have: Any, nearest: Any = None) -> str:
    hint = near(value, have if nearest is None else nearest)
    return f"{where}: {value!r} is not {what} ({hint}have {sorted(have)})"


def reference_problems(cfg: Config) -> list[str]:
    """References between sections: datasets of experiments, sWUGGY/sBLIMP sets, worlds,
    compares."""
    out, kinds = [], {n: d.kind for n, d in cfg.datasets.items()}
    for name, d in cfg.datasets.items():
        synthetic_set = d.kind in ("swuggy_synthetic", "sblimp_synthetic")
        if synthetic_set and kinds.get(d.world) != "synthetic_units":
            out.append(
                _absent(f"datasets.{name}.world", d.world, "a synthetic_units dataset", kinds)
            )
    for name, x in cfg.experiments.items():
        where, arch = f"experiments.{name}", x.train.model.arch
        if x.dataset not in kinds:
            out.append(_absent(f"{where}.dataset", x.dataset, "under datasets:", kinds))
        elif kinds[x.dataset] not in TASK_KINDS[x.task]:
            out.append(
                f"{where}.dataset: {x.dataset!r} is a {kinds[x.dataset]} dataset; task "
                f"{x.task} reads {', '.join(TASK_KINDS[x.task])}"
            )
        if (x.task == "ctc") != (arch == "gru_ctc"):
            out.append(
                f"{where}.train.model.arch: {arch!r} does not fit task {x.task} (ctc trains "
                "gru_ctc; unit_lm and text_lm train lstm or gpt2)"
            )
        for bench, set_kinds in (("swuggy", SWUGGY_KINDS), ("sblimp", SBLIMP_KINDS)):
            ev = getattr(x.eval, bench)
            if ev is not None and kinds.get(ev.set) not in set_kinds:
                sets = [n for n, k in kinds.items() if k in set_kinds]
                what = f"a dataset of kind {' or '.join(set_kinds)}"
                out.append(_absent(f"{where}.eval.{bench}.set", ev.set, what, kinds, sets))
    for name, c in cfg.compare.items():
        for e in c.experiments:
            if e not in cfg.experiments:
                out.append(
                    _absent(f"compare.{name}.experiments", e, "an experiment", cfg.experiments)
                )
    return out


def _override_problems(base: dict, overrides: dict, where: str, per_key: bool) -> list[str]:
    """Problems of the `train:` block `base` with `overrides` applied, told at `where` (a
    problem at an override's own key at `where.key` when `per_key`, as a variant's keys)."""
    try:
        adapter(TrainConfig).validate_python(apply_overrides(base, overrides))
        return []
    except SeqlabError as e:
        return [f"{where}: {e}"]
    except ValidationError as e:
        lines = errors_of(TrainConfig, e, "train")
    out = []
    for line in lines:
        key, what = line.split(": ", 1)
        if (key := key.removeprefix("train.")) in overrides:
            out.append(f"{where}{'.' + key if per_key else ''}: {what}")
        else:
            out.append(f"{where}: {line}")
    return out


def grid_problems(name: str, x: dict[str, Any]) -> list[str]:
    """Every grid value and variant validated as if substituted into the base `train:`; then
    every run, as values valid alone may not fit together (seq_len 64 with block_size 32)."""
    where, train, grid, variants = f"experiments.{name}", x["train"], x["grid"], x["variants"]
    out = [
        line
        for key, values in grid.items()
        for i, v in enumerate(values)
        for line in _override_problems(train, {key: v}, f"{where}.grid.{key}[{i}]", False)
    ]
    for vname, overrides in variants.items():
        out += _override_problems(train, overrides, f"{where}.variants.{vname}", True)
    if out:
        return out
    try:
        runs = expand_runs(name, x)  # as the workflow names them: two that share an id fail
    except SeqlabError as e:
        return [str(e)]
    for run in itertools.islice(runs.values(), 100_000):
        if bad := _override_problems(train, run["overrides"], "train", True):
            shown = ", ".join(f"{k}={v!r}" for k, v in run["overrides"].items())
            vwhere = "grid" if run["variant"] is None else f"variants.{run['variant']}"
            return [f"{where}.{vwhere}: the run {{{shown}}}: {bad[0]}"]
    return []


# -- the whole config --------------------------------------------------------------------------
def problems(raw: Any) -> tuple[list[str], dict[str, Any] | None]:
    """(one line per problem, the validated config as plain dicts with defaults filled)."""
    if not isinstance(raw, dict):
        return [f"config: must be a mapping with datasets: and experiments:, got {raw!r}"], None
    try:
        cfg = adapter(Config).validate_python(raw)
    except ValidationError as e:
        return errors_of(Config, e), None
    resolved = adapter(Config).dump_python(cfg, exclude_none=True)  # None: default/auto
    out = reference_problems(cfg)
    for name, x in resolved["experiments"].items():
        raw_x = raw["experiments"][name]  # as written (a dump drops the None in a value)
        x["grid"], x["variants"] = raw_x.get("grid") or {}, raw_x.get("variants") or {}
        out += grid_problems(name, x)
    return out, resolved


def validate_config(raw: Any) -> dict[str, Any]:
    """The config as plain dicts with every default filled, or ConfigError (one line each)."""
    lines, resolved = problems(raw)
    if lines or resolved is None:
        raise ConfigError("\n".join(lines))
    return resolved


def _typed(value: Any) -> Any:
    """A --config value as its text reads in a config file (Snakemake reads nested --config
    values as strings), a number with an exponent but no dot included."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    try:
        read = yaml.safe_load(value) if isinstance(value, str) else value
    except yaml.YAMLError:
        return value
    if isinstance(read, str) and re.fullmatch(r"\s*[+-]?\d+[eE][+-]?\d+\s*", read):
        return float(read)
    return read if read is None or isinstance(read, bool | int | float) else value


def _merge(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` merged into `into`, mapping by mapping (as Snakemake merges config sources)."""
    for k, v in new.items():
        into[k] = _merge(into[k], v) if isinstance(v, dict) and isinstance(into.get(k), dict) else v
    return into


def load_config(files: list[str], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config of YAML `files` (each parsed once; later ones merged over earlier ones) and
    command-line `overrides` (Snakemake's --config), validated, with every default filled;
    else ConfigError, one line per problem."""
    raw: Any = {}
    for text in map(read_yaml, files):  # invalid YAML: ConfigError `file:line: what`
        raw = _merge(raw, text) if isinstance(raw, dict) and isinstance(text, dict) else text
    return validate_config(_merge(raw, _typed(overrides or {})) if isinstance(raw, dict) else raw)


def json_schema() -> dict[str, Any]:
    """The JSON schema of the config file, for editors (workflow/schemas/config.schema.json)."""
    schema = adapter(Config).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = "seqlab config; generated by `python -m seqlab.config_load`"
    return schema


if __name__ == "__main__":
    import json

    print(json.dumps(json_schema(), indent=1, sort_keys=True))
