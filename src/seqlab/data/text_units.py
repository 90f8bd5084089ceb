"""Quantized unit text files, parsed in blocks: names per line, units vectorised.

Line formats (ZeroSpeech 2021 / GSLM / fairseq's quantizer), detected per line:
`name<TAB>u1,u2,...`, `name|u1 u2 ...`, `name u1 u2 ...`. fairseq's `--hide-fname` writes
units only (`u1 u2 ...`): such a file is recognised from its first line (no TAB or `|`, the
first field a number) and read whole as units-only, each utterance named `file:line`
(recorded in the manifest's `line_formats`); a file that mixes units-only and named lines is
refused with one line, never reinterpreted. A named space-format line whose name is a number
is refused too (name or unit? ambiguous): use the TAB or `|` format for numeric names.
A gzip-compressed file (`train.txt.gz`, recognised by its magic bytes, not its name) is read
as it is, decompressed on the fly.

A block of ~4 MB is split into lines in Python (names, line numbers: ~1 us a line), and all
units of the block are parsed at once with numpy (digit runs -> integers), so parsing runs at
tens of millions of units/s on one core. A block with any problem is re-read line by line to
raise the same one-line error (`file:line: ...`) as before.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from seqlab.errors import SeqlabError

GZIP_MAGIC = b"\x1f\x8b"
OTHER_COMPRESSION = (  # (magic bytes as a regex, name, how to decompress): not read as they are
    (rb"\xfd7zXZ\x00", "xz", "xz -dk"),
    (rb"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
    (rb"BZh[1-9]1AY&SY", "bzip2", "bzip2 -dk"),
)
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark some editors write: not part of the name
BLOCK_BYTES = 1 << 22  # 4 MB of text: ~1M units, ~60 MB of numpy temporaries
_ALLOWED = np.zeros(256, bool)
_ALLOWED[list(b"0123456789 ,\t\r\n")] = True


@dataclass
class TextBlock:
    names: list[str]
    lines: list[int]  # 1-based line number of each utterance
    lengths: np.ndarray  # int64 units per utterance
    units: np.ndarray  # uint16, concatenated
    n_bytes: int  # bytes of the file on disk consumed so far (for progress)


def _is_units_only(line: bytes) -> bool:
    s = line.strip()
    return bool(s) and b"\t" not in s and b"|" not in s and s.split()[0].isdigit()


def _split(line: bytes) -> tuple[bytes, int]:
    """(name, offset where the units start) of a named line."""
    for sep in (b"\t", b"|"):
        i = line.find(sep)
        if i >= 0:
            return line[:i].strip(), i + 1
    lead = len(line) - len(line.lstrip())
    body = line[lead:].rstrip()
    m = body.find(b" ") if b"\t" not in body else re.search(rb"\s", body).start()
    end = lead + (m if m >= 0 else len(body))
    return line[lead:end], end + 1


def parse_line(
    line: str, where: str, vocab_size: int, units_only: bool, uname: str = ""
) -> tuple[str, np.ndarray]:
    """One line, checked field by field: the slow path that words every error."""
    if units_only:
        if "\t" in line or "|" in line or not line.split()[0].isdigit():
            raise SeqlabError(
                f"{where}: line has a name, but line 1 of this file has none (fairseq "
                "--hide-fname, units only); a file must be all named or all units-only"
            )
        name, rest = uname, line
    else:
        name_b, start = _split(line.encode())
        name, rest = name_b.decode(errors="replace"), line.encode()[start:].decode()
        if not name:
            raise SeqlabError(f"{where}: line has no name; expected 'name<TAB>u1,u2,...'")
        if name.isdigit() and "\t" not in line and "|" not in line:
            raise SeqlabError(
                f"{where}: first field {name!r} is a number: a name or a unit? (this file's line "
                "1 has a name); write numeric names as 'name<TAB>u1,u2,...' or give every line "
                "units only"
            )
    fields_ = [t for t in re.split(r"[,\s]+", rest.strip()) if t]
    if not fields_:
        raise SeqlabError(
            f"{where}: {name!r} has no units; expected 'name<TAB>u1,u2,...' or "
            "'name u1 u2 ...' (remove the line if the utterance is empty)"
        )
    bad = next((t for t in fields_ if not re.fullmatch(r"\d+", t)), None)
    if bad is not None:
        raise SeqlabError(
            f"{where}: unit {bad!r} of {name!r} is not a non-negative integer; "
            "units are integers separated by commas (after a TAB) or spaces"
        )
    units = np.array([int(t) for t in fields_], np.int64)
    if units.max() >= vocab_size:
        hint = " (read as units only: line 1 starts with a number)" if units_only else ""
        raise SeqlabError(
            f"{where}: unit {units.max()} of {name!r} is out of range 0..{vocab_size - 1}{hint}; "
            "set vocab_size to your tokenizer's number of units"
        )
    return name, units.astype(np.uint16)


def _parse_block(
    data: bytes, line0: int, path: Path, vocab_size: int, units_only: bool
) -> tuple[list[str], list[int], np.ndarray, np.ndarray] | None:
    """Vectorised parse of whole lines; None when anything is off (the slow path words it)."""
    names, lines, regions = [], [], []
    fname = path.name
    for i, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        if units_only:
            if b"\t" in line or b"|" in line:
                return None
            names.append(f"{fname}:{line0 + i}")
            regions.append(line)
        else:
            name, off = _split(line)
            if not name or (name.isdigit() and b"\t" not in line and b"|" not in line):
                return None
            try:
                names.append(name.decode())
            except UnicodeDecodeError:
                return None
            regions.append(line[off:])
        lines.append(line0 + i)
    if not names:
        return names, lines, np.zeros(0, np.int64), np.zeros(0, np.uint16)
    text = b" " + b"\n".join(regions) + b"\n"
    odd = text.translate(None, b"0123456789 ,\n")  # C speed; only TAB/CR may remain
    if odd and odd.translate(None, b"\t\r"):
        return None
    arr = np.frombuffer(text, np.uint8)
    d = arr - 48  # uint8: non-digits wrap to >= 10
    digit = d < 10
    edges = np.flatnonzero(digit[1:] != digit[:-1]) + 1  # the text starts and ends non-digit
    starts, L = edges[0::2], edges[1::2] - edges[0::2]
    if len(L) and L.max() > 5:  # units < 65535 have at most 5 digits
        return None
    val = np.zeros(len(starts), np.int32)
    for n in range(1, 6):  # Horner per digit count: gathers only the digits there are
        m = np.flatnonzero(L == n)
        if len(m):
            s, v = starts[m], d[starts[m]].astype(np.int32)
            for j in range(1, n):
                v = v * 10 + d[s + j]
            val[m] = v
    per_line = np.searchsorted(starts, np.flatnonzero(arr == 10))
    lengths = np.diff(per_line, prepend=0)
    if len(lengths) != len(names) or (lengths == 0).any() or val.max() >= vocab_size:
        return None
    return names, lines, lengths.astype(np.int64), val.astype(np.uint16)


@contextmanager
def open_units(path: Path) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """(the text's bytes, the file on disk) of a units file, plain or gzip-compressed: reads
    of the first give the text, the position of the second how much of the file they used.
    A corrupt or truncated gzip stream is one line naming the file."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        text = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        try:
            yield text, raw
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise SeqlabError(
                f"{path}: corrupt or truncated gzip ({e}); test it with gzip -t, then "
                "compress or copy it again"
            ) from None


def detect_units_only(path: Path) -> bool:
    """Whether a file holds units-only lines (fairseq --hide-fname), from its first line."""
    with open_units(path) as (f, _):
        for i, line in enumerate(f):
            line = line.removeprefix(BOM) if i == 0 else line
            if line.strip():
                return _is_units_only(line)
    return False


def require_units_file(path: str | Path) -> Path:
    """The path, if it is a UTF-8 text file (gzip-compressed or not); else one line saying
    what it is instead."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise SeqlabError(
            f"{path}: units file {what}; check the dataset's train/eval paths (relative paths "
            "start where snakemake runs)"
        )
    with open_units(path) as (f, raw):
        head = f.read(4096)
        gz = f is not raw
    for magic, name, decompress in OTHER_COMPRESSION:
        if re.match(magic, head):
            raise SeqlabError(
                f"{path}: compressed with {name}; decompress it ({decompress} {path.name}) "
                "or compress it with gzip, which seqlab reads as it is"
            )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        convert = (
            f"zcat {path.name} | iconv -f utf-16 -t utf-8 | gzip > {path.stem}.utf8.gz"
            if gz
            else f"iconv -f utf-16 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}"
        )
        raise SeqlabError(
            f"{path}: not UTF-8 text{' inside its gzip compression' if gz else ''} "
            f"(UTF-16 or binary); convert it, e.g. {convert}"
        )
    return path


def iter_text_blocks(path: str | Path, vocab_size: int) -> Iterator[TextBlock]:
    """Blocks of utterances of a quantized units file, in file order, bounded memory."""
    path = require_units_file(path)
    units_only = detect_units_only(path)
    line0, carry, done = 1, b"", 0
    with open_units(path) as (f, on_disk):
        while True:
            raw = f.read(BLOCK_BYTES)
            if done == 0 and not carry:
                raw = raw.removeprefix(BOM)
            data = carry + raw
            cut = len(data) if not raw else data.rfind(b"\n") + 1
            if cut == 0 and raw:
                carry = data
                continue
            data, carry = data[:cut], data[cut:]
            done += len(data)
            if data:
                yield _block(data, line0, path, vocab_size, units_only, on_disk.tell())
                line0 += data.count(b"\n")
            if not raw:
                return


def _block(data: bytes, line0: int, path: Path, V: int, units_only: bool, done: int) -> TextBlock:
    parsed = _parse_block(data, line0, path, V, units_only)
    if parsed is None:  # word the first problem exactly, line by line
        for i, raw in enumerate(data.split(b"\n")):
            where = f"{path}:{line0 + i}"
            try:
                line = raw.decode()
            except UnicodeDecodeError as e:
                raise SeqlabError(
                    f"{where}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                    "names must be UTF-8: convert the file, e.g. iconv -f latin1 -t utf-8"
                ) from None
            if line.strip():
                parse_line(line, where, V, units_only, f"{path.name}:{line0 + i}")
        raise SeqlabError(f"{path}:{line0}: unreadable block; check the file's encoding")
    names, lines, lengths, units = parsed
    return TextBlock(names, lines, lengths, units, done)


def read_units_text(path: str | Path, vocab_size: int = 256) -> list[tuple[str, np.ndarray]]:
    """The whole file as (name, units) items (small files and tests; ingest streams blocks)."""
    items, first_line = [], {}
    for b in iter_text_blocks(path, vocab_size):
        ends = np.cumsum(b.lengths)
        for name, line, e, n in zip(b.names, b.lines, ends, b.lengths, strict=True):
            if name in first_line:
                raise SeqlabError(
                    f"{path}:{line}: duplicate name {name!r} (first at line {first_line[name]}); "
                    "names must be unique, remove or rename one"
                )
            first_line[name] = line
            items.append((name, b.units[e - n : e]))
    if not items:
        raise SeqlabError(f"{path}: no utterances; is this the quantized units file?")
    return items
