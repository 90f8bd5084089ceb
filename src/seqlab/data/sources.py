"""The files a dataset block reads, found without opening one: the inputs of its preparation,
each checked for when the config loads."""

from __future__ import annotations

import glob
import os
from typing import Any

from seqlab.errors import ConfigError

#: keys of a dataset kind that name a file it reads
SOURCE_KEYS = {
    "units_text": ("train", "eval"),
    "neural_pickle": ("path",),
    "swuggy_zerospeech": ("gold", "units"),
    "sblimp_zerospeech": ("gold", "units"),
}
#: files inside the directory `path` names: the required ones, then optional ones (counted
#: where they exist)
SOURCE_DIRS = {
    "token_bins": (("train.bin", "val.bin"), ("meta.json", "meta.pkl")),
    "neural_npz": (
        ("train.npz", "test.npz"),
        ("competition.npz", *(f"{s}.features.npy" for s in ("train", "test", "competition"))),
    ),
}


def sources(block: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, file) for each file a dataset block reads, `~` expanded. A shard glob is expanded
    (kept as it is when it matches nothing, so a missing shard is named)."""
    kind = block["kind"]
    found = [(k, block[k]) for k in SOURCE_KEYS.get(kind, ()) if block.get(k)]
    if "gold" in block and os.path.isdir(gold := os.path.expanduser(block["gold"])):
        found[0] = ("gold", os.path.join(gold, "gold.csv"))  # a ZR2021 set directory
    if kind == "units_shards":
        for split in ("train", "eval"):
            for pattern in [block[split]] if isinstance(block[split], str) else block[split]:
                matches = sorted(glob.glob(os.path.expanduser(pattern))) or [pattern]
                found += [(split, m) for m in matches]
    if kind in SOURCE_DIRS:
        required, optional = SOURCE_DIRS[kind]
        folder = os.path.expanduser(block["path"])
        found += [("path", os.path.join(folder, f)) for f in required]
        found += [("path", p) for f in optional if os.path.exists(p := os.path.join(folder, f))]
    return [(k, os.path.expanduser(f)) for k, f in found]


def source_files(block: dict[str, Any]) -> list[str]:
    """The files a dataset block reads: what its preparation depends on."""
    return [f for _, f in sources(block)]


def require_source_files(datasets: dict[str, dict[str, Any]]) -> None:
    """ConfigError, one line each, for the files the datasets read that are not there (a shard
    glob that matches nothing included; relative paths start where snakemake runs), so that a
    wrong path is told with its key when the config loads, not as a missing job input."""
    lines = [
        f"datasets.{name}.{key}: no file matches {path!r}"
        f"{'' if os.path.isabs(path) else ' (relative to where snakemake runs)'}; "
        "fix the path or create the file"
        for name, block in datasets.items()
        for key, path in sources(block)
        if not os.path.exists(path)
    ]
    if lines:
        raise ConfigError("\n".join(lines))
