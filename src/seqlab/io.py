"""Small file helpers shared by every stage: atomic writes and one-line user errors."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


class SeqlabError(Exception):
    """A problem the user can fix: printed as one line (what, where, what to do), exit 1."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temp file beside `path`, then rename it into place.

    A reader never sees a half-written file and a crash leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write `obj` as pretty, key-sorted JSON (stable diffs between reruns)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path: str | Path) -> Any:
    """Read JSON, turning a missing or malformed file into a one-line SeqlabError."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SeqlabError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise SeqlabError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
