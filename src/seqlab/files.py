"""Small file helpers shared by every stage: atomic writes, strict JSON and YAML, the JSON-lines
log."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from seqlab.errors import ConfigError, SeqlabError

#: temp files of atomic writes: `.{name}.{random}.tmp` beside the final name
TEMP_GLOB = ".*.tmp"
#: below this many free bytes a failed write is reported as a full disk
LOW_SPACE = 1 << 20


def write_failure(path: Path, e: BaseException) -> SeqlabError:
    """One line for a failed write: the path and the cause (a full disk, a read-only or
    unwritable directory), whatever layer raised it (torch's own errors name neither)."""
    if path.parent.exists() and not path.parent.is_dir():
        cause = f"{path.parent} is not a directory"
    elif isinstance(e, OSError) and e.errno is not None:
        cause = os.strerror(e.errno)
    else:
        cause = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if (
        free is not None
        and free < LOW_SPACE
        and (not isinstance(e, OSError) or e.errno in (errno.ENOSPC, errno.EDQUOT, None))
    ):
        cause = f"no space left on device ({free} bytes free)"
    return SeqlabError(
        f"{path}: cannot write ({cause}); free space or fix the permissions of "
        f"{path.parent}, then rerun (the previous file is intact)"
    )


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str | Path, write: Callable[[Path], None], keep_previous: Path | None = None
) -> Path:
    """Call `write(tmp)` on a temp file beside `path`, then rename it into place.

    A reader never sees a half-written file and a crash leaves the old file intact: the data
    and the directory are fsynced before and after the rename, so a node crash cannot leave
    an empty file under the final name. The file is created with mode 0666 less the umask
    (mkstemp's 0600 would hide results from labmates). `keep_previous`: the old file is first
    renamed there (one rename each: at every instant one complete file exists). Any failure
    is one SeqlabError line naming the path and the cause.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, Exception) and not isinstance(e, SeqlabError):
            raise write_failure(path, e) from e
        raise
    return path


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete temp files that a killed atomic write left behind; returns them."""
    stale = sorted(Path(directory).glob(TEMP_GLOB)) if Path(directory).is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def jsonable(obj: Any) -> Any:
    """numpy scalars -> Python, NaN/inf -> None, recursively: every JSON seqlab writes is
    strict JSON (RFC 8259), which jq, browsers and other languages' parsers all read."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype") and getattr(obj, "ndim", None) == 0:
        obj = obj.item()  # a numpy (or 0-d torch) scalar
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write `obj` as pretty, key-sorted, strict JSON (stable diffs between reruns;
    a non-finite number, a diverged loss say, is written as null)."""
    text = json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def json_line(record: Mapping[str, Any]) -> str:
    """One strict-JSON line of a `.jsonl` log (non-finite numbers as null)."""
    return json.dumps(jsonable(record), allow_nan=False) + "\n"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (`json_line`'s): the one reader of a trial's log.jsonl.

    The log is appended while a trial runs, so a reader may meet a torn last line (a job killed
    mid-write, or a trial still writing): a line that does not parse is left out, and a missing
    file has no records.
    """
    path = Path(path)
    records = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_json(path: str | Path) -> Any:
    """Read JSON, turning a missing or malformed file into a one-line SeqlabError."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SeqlabError(f"{path}: file not found") from None
    except IsADirectoryError:
        hint = (
            f"; did you mean {path / 'manifest.json'}?" if (path / "manifest.json").exists() else ""
        )
        raise SeqlabError(f"{path}: is a directory, not a JSON file{hint}") from None
    except OSError as e:
        raise SeqlabError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise SeqlabError(f"{path}: not valid JSON (not UTF-8 at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise SeqlabError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def unpickle_trusted(path: str | Path) -> Any:
    """Unpickle a file the config marks trusted (the caller checks that: a pickle runs any
    code it contains); a missing, truncated or foreign file is one line."""
    import pickle

    try:
        with open(path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - the config marks this file trusted
    except FileNotFoundError:
        raise SeqlabError(f"{path}: file not found") from None
    except Exception as e:  # noqa: BLE001 - any unpickling error is the file's fault
        raise SeqlabError(
            f"{path}: unreadable pickle ({type(e).__name__}: {e}); copy it again or rebuild it"
        ) from None


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, streamed (a GPT-2 checkpoint is 0.5 GB)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (SafeLoader keeps the last).
    Keys merged in with `<<: *anchor` may be overridden: that is what merging is for."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{key_node.start_mark.name}:{line}: key {key!r} appears twice in one block "
                    f"(first at line {seen[key]}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """A config file parsed; invalid YAML or a duplicate key -> ConfigError `file:line: what`."""
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
