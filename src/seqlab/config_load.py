"""Load and validate the config once: one line per problem, naming the file:line or dotted key.

pydantic validates the dataclasses of seqlab.config as they are (TypeAdapter). Kept apart from
them so that seqlab.config reads as a reference of every key (with no pydantic import),
and this file as the policy of how problems are told: YAML files re-read with a loader that
refuses duplicate keys (PyYAML keeps the last silently), names checked as path parts, every
model error turned into `dotted.key: what is wrong; the fix`, grid and variant values validated
as if substituted into the base, and the references between sections checked.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from seqlab.config import (
    SWUGGY_KINDS,
    TASK_KINDS,
    Config,
    GuardConfig,
    TrainConfig,
    apply_overrides,
)
from seqlab.errors import SeqlabError

T = TypeVar("T")

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
RESERVED = {"experiments": ("data", "logs", "compare", "report.html")}
#: pydantic error type -> what the value must be (its ctx fills the braces)
WANTS = {
    "greater_than_equal": ">= {ge}",
    "greater_than": "> {gt}",
    "less_than_equal": "<= {le}",
    "less_than": "< {lt}",
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "dataclass_type": "a mapping",
    "dataclass_args_type": "a mapping",
    "literal_error": "one of {expected}",
    "too_short": "a list of at least {min_length}",
    "too_long": "a list of at most {max_length}",
    "string_too_short": "a non-empty string",
    "string_pattern_mismatch": "like {pattern}",
}
NUMBER_ERRORS = ("float_type", "int_type", "float_parsing", "int_parsing")


class ConfigError(SeqlabError):
    """The config is invalid; str(e) holds one line per problem."""


# -- YAML --------------------------------------------------------------------------------------
class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (SafeLoader keeps the last).
    Keys merged in with `<<: *anchor` may be overridden: that is what merging is for."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{key_node.start_mark.name}:{line}: key {key!r} appears twice in one block "
                    f"(first at line {seen[key]}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; invalid YAML or a duplicate key -> ConfigError `file:line: what`."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    except UnicodeDecodeError as e:
        line = open(path, "rb").read()[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 (byte {e.object[e.start]:#04x}); save the config as UTF-8"
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ConfigError(f"{where}: invalid YAML: {what}") from None


# -- validation errors -> one line each -------------------------------------------------------
@functools.cache
def adapter(cls: Any) -> TypeAdapter:
    return TypeAdapter(cls)


def dump(obj: Any) -> dict[str, Any]:
    """Plain dict with defaults filled; None (= "default/auto/from the data") left out."""
    return adapter(type(obj)).dump_python(obj, mode="python", exclude_none=True)


def _strip(ann: Any) -> Any:
    """The type under Annotated[...] and Optional[...] (X | None)."""
    while True:
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if origin is typing.Annotated:
            ann = args[0]
        elif origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
            ann = args[0] if args[1] is type(None) else args[1]
        else:
            return ann


def _tag(member: Any) -> Any:
    """The `kind`/`arch` of one block of a tagged union, or None."""
    return getattr(member, "kind", None) or getattr(member, "arch", None)


def locate(root: Any, loc: tuple[Any, ...]) -> tuple[str, Any]:
    """The dotted key of a pydantic error location (union member labels dropped) and the
    dataclass that holds its last part (for a misspelt key: the block whose keys to suggest)."""
    parts: list[str] = []
    ann: Any = root
    holder: Any = None
    for item in loc:
        ann = _strip(ann)
        origin = typing.get_origin(ann)
        if dataclasses.is_dataclass(ann):
            holder = ann
            ann = typing.get_type_hints(ann, include_extras=True).get(item)
            parts.append(str(item))
        elif origin is dict:
            parts.append(str(item))
            ann = typing.get_args(ann)[1]
        elif origin in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(ann) if m is not type(None)]
            ann = next((m for m in members if _tag(m) == item), "union")
        elif isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
            ann = typing.get_args(ann)[0] if origin is list else None
    return ".".join(parts), holder


def _near(word: Any, choices: Any) -> str:
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"did you mean {near[0]!r}? " if near else ""


def _number_fix(text: str) -> str:
    m = re.fullmatch(r"\s*([+-]?\d+)([eE][+-]?\d+)\s*", text)
    return f"{m.group(1)}.0{m.group(2)}" if m else text.strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def message(err: dict[str, Any], holder: Any, key: Any) -> str:
    """What is wrong and the fix, for one pydantic error."""
    kind, value, msg = err["type"], err.get("input"), err["msg"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        valid = [f.name for f in dataclasses.fields(holder)] if holder else []
        if holder is GuardConfig and key == "min_lr":
            return "renamed: the guard's floor is `lr_floor` (schedule.min_lr keeps its name)"
        near = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
        hint = f"did you mean {near[0]!r}? " if near else ""
        return f"unknown key; {hint}valid keys: {', '.join(valid)}"
    if kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
        return "required key is missing"
    if kind in NUMBER_ERRORS and isinstance(value, str) and _is_number(value):
        return (
            f"{value!r} is a string, not a number: YAML 1.1 reads a number with an exponent but "
            f"no dot as a string; write {_number_fix(value)}"
        )
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in err["ctx"]["expected_tags"].split(",")]
        return f"{err['ctx']['tag']!r} is not one of {', '.join(tags)}; {_near(value, tags)}"
    if kind == "union_tag_not_found":
        return "required key is missing"
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if kind in WANTS:
        ctx = err.get("ctx", {})
        want = WANTS[kind].format(**ctx)
        if kind in ("too_short", "too_long") and isinstance(value, dict):  # not a list
            n = ctx.get("min_length", ctx.get("max_length"))
            bound = "at least" if kind == "too_short" else "at most"
            want = f"a mapping with {bound} {n} entr{'y' if n == 1 else 'ies'}"
        return f"must be {want} (got {value!r})"
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return f"{msg[:1].lower()}{msg[1:]}{shown}"


def errors_of(root: Any, e: ValidationError, prefix: str = "") -> list[str]:
    """One line per located problem (a union's alternatives at one key share a line)."""
    lines: dict[str, list[str]] = {}
    for err in e.errors():
        path, holder = locate(root, tuple(err["loc"]))
        key = err["loc"][-1] if err["loc"] else None
        if err["type"].startswith("union_tag"):  # the bad or missing `kind` / `arch`
            path += "." + err["ctx"]["discriminator"].strip("'")
            err = {**err, "input": (err["input"] or {}).get(path.rsplit(".", 1)[1])}
        m = message(err, holder, key)
        if err["type"] == "value_error" and (inner := re.match(r"([\w.]+): ", m)):
            path, m = ".".join(p for p in (path, inner[1]) if p), m[inner.end() :]
        full = ".".join(p for p in (prefix, path) if p) or "config"
        msgs = lines.setdefault(full, [])
        if m not in msgs:
            msgs.append(m)
    return [f"{path}: {' or '.join(msgs)}".rstrip("; ") for path, msgs in lines.items()]


def parse(cls: type[T], data: Any, what: str) -> T:
    """One block (a `train:`, a dataset, `eval.swuggy`) validated as `cls`; SeqlabError names
    the dotted key (`what` is its prefix) or, for a name like "dataset 'x'", leads with it."""
    dotted = re.fullmatch(r"[\w.]+", what) is not None
    try:
        return adapter(cls).validate_python(data)
    except ValidationError as e:
        lines = "; ".join(errors_of(cls, e, what if dotted else ""))
        raise SeqlabError(lines if dotted else f"{what}: {lines}") from None


# -- the whole config --------------------------------------------------------------------------


def name_problems(raw: dict[str, Any]) -> list[str]:
    """Names become path parts and wildcard values: letters, digits, `_`, `.`, `-` only."""
    out = []
    for section in ("datasets", "experiments", "compare"):
        block = raw.get(section)
        for name in block if isinstance(block, dict) else ():
            if not isinstance(name, str) or not NAME.fullmatch(name):
                out.append(
                    f"{section}.{name}: {name!r} is not a path-safe name (it becomes a directory "
                    "under results/); use letters, digits, '_', '.' and '-', not first '.' or '-'"
                )
            elif name in RESERVED.get(section, ()):
                out.append(f"{section}.{name}: the name is reserved (results/{name}); rename it")
    return out


def reference_problems(cfg: Config) -> list[str]:
    """References between sections: datasets of experiments, sWUGGY sets, worlds, compares."""
    out, kinds = [], {n: d.kind for n, d in cfg.datasets.items()}
    sets = [n for n, k in kinds.items() if k in SWUGGY_KINDS]
    for name, d in cfg.datasets.items():
        world = getattr(d, "world", None)
        if d.kind == "swuggy_synthetic" and kinds.get(world) != "synthetic_units":
            out.append(
                f"datasets.{name}.world: {world!r} is not a synthetic_units dataset "
                f"({_near(world, kinds)}have {sorted(kinds)})"
            )
    for name, x in cfg.experiments.items():
        where = f"experiments.{name}"
        if x.dataset not in kinds:
            out.append(
                f"{where}.dataset: {x.dataset!r} is not under datasets: "
                f"({_near(x.dataset, kinds)}have {sorted(kinds)})"
            )
        elif kinds[x.dataset] not in TASK_KINDS[x.task]:
            out.append(
                f"{where}.dataset: {x.dataset!r} is a {kinds[x.dataset]} dataset; task "
                f"{x.task} reads {', '.join(TASK_KINDS[x.task])}"
            )
        if (x.task == "ctc") != (x.train.model.arch == "gru_ctc"):
            out.append(
                f"{where}.train.model.arch: {x.train.model.arch!r} does not fit task "
                f"{x.task} (ctc trains gru_ctc; unit_lm and text_lm train lstm or gpt2)"
            )
        sw = x.eval.swuggy
        if sw is not None and kinds.get(sw.set) not in SWUGGY_KINDS:
            out.append(
                f"{where}.eval.swuggy.set: {sw.set!r} is not a dataset of kind "
                f"{' or '.join(SWUGGY_KINDS)} ({_near(sw.set, sets)}have {sorted(kinds)})"
            )
    for name, c in cfg.compare.items():
        for e in c.experiments:
            if e not in cfg.experiments:
                out.append(
                    f"compare.{name}.experiments: {e!r} is not an experiment "
                    f"({_near(e, cfg.experiments)}have {sorted(cfg.experiments)})"
                )
    return out


def _train_problems(
    base: dict[str, Any], overrides: dict[str, Any], where: str, variant: bool = False
) -> list[str]:
    """Problems of `base` with `overrides` applied, told at `where` (the grid value's key, or
    the variant's name followed by its key)."""
    try:
        candidate = apply_overrides(base, overrides)
    except SeqlabError as e:
        return [f"{where}: {e}"]
    try:
        adapter(TrainConfig).validate_python(candidate)
    except ValidationError as e:
        lines = errors_of(TrainConfig, e, "train")
        out = []
        for line in lines:  # the inner key repeats the grid key: say it once
            key = next((k for k in overrides if line.startswith(f"train.{k}: ")), None)
            if key is None:
                out.append(f"{where}: {line}")
            else:
                out.append(f"{where}{'.' + key if variant else ''}: {line[len(key) + 8 :]}")
        return out
    return []


def grid_problems(name: str, train: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    """Every grid value and variant validated as if substituted into the base `train:`."""
    out, where = [], f"experiments.{name}"
    grid = raw.get("grid") or {}
    for key, values in grid.items():
        for i, v in enumerate(values):
            out += _train_problems(train, {key: v}, f"{where}.grid.{key}[{i}]")
    variants = raw.get("variants") or {}
    for vname, overrides in variants.items():
        out += _train_problems(train, overrides, f"{where}.variants.{vname}", variant=True)
    if out or not all(isinstance(v, list) for v in grid.values()):
        return out
    # each value is valid alone; a run combines them (seq_len 64 with block_size 32)
    named = [(f"variants.{n}", o or {}) for n, o in variants.items()] or [("grid", {})]
    for vwhere, vo in named:
        for combo in itertools.islice(itertools.product(*grid.values()), 100_000):
            point = {**vo, **dict(zip(grid, combo, strict=True))}
            bad = _train_problems(train, point, "train", variant=True)
            if bad:
                shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
                return [f"{where}.{vwhere}: the run {{{shown}}}: {bad[0]}"]
    return out


def problems(raw: Any) -> tuple[list[str], dict[str, Any] | None]:
    """(one line per problem, the validated config as plain dicts with defaults filled)."""
    if not isinstance(raw, dict):
        return [f"config: must be a mapping with datasets: and experiments:, got {raw!r}"], None
    out = name_problems(raw)
    try:
        cfg = adapter(Config).validate_python(raw)
    except ValidationError as e:
        return out + errors_of(Config, e), None
    out += reference_problems(cfg)
    resolved = dump(cfg)
    for name, x in resolved["experiments"].items():
        raw_x = raw["experiments"][name]
        x["grid"], x["variants"] = raw_x.get("grid") or {}, raw_x.get("variants") or {}
        out += grid_problems(name, x["train"], raw_x)
    return out, resolved


def validate_config(raw: Any, files: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The config as plain dicts with every default filled, or ConfigError (one line each).

    `files`: the YAML files the config came from, re-read for duplicate keys and syntax (the
    loader that produced `raw` keeps the last of two equal keys without a word)."""
    lines = []
    for f in files:
        try:
            load_yaml(f)
        except ConfigError as e:
            lines.append(str(e))
    if lines:
        raise ConfigError("\n".join(lines))
    lines, resolved = problems(raw)
    if lines or resolved is None:
        raise ConfigError("\n".join(lines))
    return resolved


def json_schema() -> dict[str, Any]:
    """The JSON schema of the config file, for editors (workflow/schemas/config.schema.json)."""
    schema = adapter(Config).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = "seqlab config; generated by `python -m seqlab.config` (do not edit)"
    return schema
