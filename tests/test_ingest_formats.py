"""Units as users bring them: gzip-compressed text read as it is, other compressions and
shard samples off the contract named in one line with the fix that works for them."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from seqlab.data import text_units
from seqlab.data.ingest import read_units_text, write_units_text
from seqlab.data.manifest import Manifest
from seqlab.data.prepare import prepare_dataset
from seqlab.data.text_units import iter_text_blocks
from seqlab.errors import SeqlabError


def items(n: int, seed: int, prefix: str) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(f"{prefix}{i:04d}", rng.integers(0, 256, rng.integers(1, 60))) for i in range(n)]


def gzipped(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def units_of(manifest: Path) -> dict[str, dict[str, list[int]]]:
    m = Manifest(manifest)
    return {s: {u.meta["name"]: u.units.tolist() for u in m.iter_split(s)} for s in m.splits()}


def test_gzip_units_text_reads_as_the_plain_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.txt.gz (named lines) and eval.txt.gz (units only, fairseq --hide-fname) give the
    dataset the plain files give, in blocks that end inside the compressed stream."""
    monkeypatch.setattr(text_units, "BLOCK_BYTES", 256)  # many blocks, lines cut across reads
    write_units_text(tmp_path / "train.txt", items(80, 0, "utt"), "tab")
    (tmp_path / "eval.txt").write_text("1 2 3\n4 5\n6 7 8 9\n")
    plain = {"kind": "units_text", "train": str(tmp_path / "train.txt")}
    prepare_dataset("plain", {**plain, "eval": str(tmp_path / "eval.txt")}, tmp_path / "plain")
    gz = {"kind": "units_text", "train": str(gzipped(tmp_path / "train.txt"))}
    man = prepare_dataset("gz", {**gz, "eval": str(gzipped(tmp_path / "eval.txt"))}, tmp_path / "g")

    want, got = (
        units_of(tmp_path / "plain" / "manifest.json"),
        units_of(tmp_path / "g" / "manifest.json"),
    )
    assert got["train"] == want["train"] and len(got["train"]) == 80
    assert (
        list(got["eval"].values())
        == list(want["eval"].values())
        == [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    )
    assert list(got["eval"]) == ["eval.txt.gz:1", "eval.txt.gz:2", "eval.txt.gz:3"]
    assert man["line_formats"] == {
        gz["train"]: "named",
        str(tmp_path / "eval.txt.gz"): "units_only",
    }
    blocks = list(iter_text_blocks(gz["train"], 256))  # progress: bytes of the file on disk
    assert len(blocks) > 10 and blocks[-1].n_bytes == Path(gz["train"]).stat().st_size
    assert read_units_text(gz["train"])[5][0] == "utt0005"


@pytest.mark.parametrize(
    "content, message",
    [
        (
            gzip.compress("a\t1,2\n".encode("utf-16")),
            r"units\.txt\.gz: not UTF-8 text inside its gzip compression \(UTF-16 or binary\); "
            r"convert it, e\.g\. zcat units\.txt\.gz \| iconv -f utf-16 -t utf-8 \| gzip > ",
        ),
        (  # a copy cut short
            gzip.compress(b"".join(b"u%d\t%d,2\n" % (i, i % 256) for i in range(9000)))[:9000],
            r"units\.txt\.gz: corrupt or truncated gzip \(.*\); test it with gzip -t",
        ),
        (
            lzma.compress(b"a\t1,2\n"),
            r"units\.txt\.gz: compressed with xz; decompress it \(xz -dk units\.txt\.gz\) or "
            r"compress it with gzip, which seqlab reads as it is",
        ),
    ],
    ids=["utf16-inside-gzip", "truncated-gzip", "xz"],
)
def test_compressed_files_that_cannot_be_read_say_why(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "units.txt.gz").write_bytes(content)
    cfg = {"kind": "units_text", "train": str(tmp_path / "units.txt.gz"), "eval_fraction": 0.2}
    with pytest.raises(SeqlabError, match=message) as e:
        prepare_dataset("x", cfg, tmp_path / "ds")
    assert "\n" not in str(e.value) and not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "units, message",
    [
        (
            np.array([3.0, 7.25, 1.0], np.float32),  # features or scores, not unit ids
            r"sample 'bad': units\.npy is float32 with shape \(3,\) and value 7\.25 at position "
            r"1; units are integer ids: write the quantizer's unit ids \(not features",
        ),
        (
            np.array([3.0, 7.0, 1.0], np.float32),  # whole numbers stored as floats
            r"sample 'bad': units\.npy is float32 with shape \(3,\); the contract is 1-D uint16 "
            r"units: rewrite the shard with units\.astype\(np\.uint16\)$",
        ),
        (
            np.array([[3, 7, 1, 9]], np.uint16),  # one utterance as a (1, T) batch
            r"sample 'bad': units\.npy is uint16 with shape \(1, 4\); the contract is 1-D "
            r"uint16 units: rewrite the shard with units\.reshape\(-1\)$",
        ),
        (
            np.array([[3, 7, 1, 9]], np.int64),
            r"rewrite the shard with units\.reshape\(-1\)\.astype\(np\.uint16\)$",
        ),
        (
            np.array([3, 7, -1, 9], np.int16),  # padding: astype would make it 65535
            r"sample 'bad': units\.npy \(int16\) has unit -1 at position 2; units are >= 0 \(-1 "
            r"is often padding or a missing unit\): drop such values before writing the shard",
        ),
        (
            np.array([[3, 7], [1, 9]], np.uint16),  # two utterances in one sample
            r"shape \(2, 2\); the contract is one utterance per sample, its units in a 1-D array",
        ),
    ],
    ids=["float32-features", "float32-whole", "1xT", "1xT-int64", "int16-minus-one", "2x2"],
)
def test_shard_samples_off_the_contract_get_the_fix_that_works(
    tmp_path: Path, units: np.ndarray, message: str
) -> None:
    """Shards written by webdataset's own TarWriter, as another tool writes them."""
    shards = {
        "train": [("ok", np.arange(4, dtype=np.uint16)), ("bad", units)],
        "eval": [("ev", np.arange(3, dtype=np.uint16))],
    }
    for split, samples in shards.items():
        with wds.TarWriter(str(tmp_path / f"{split}.tar")) as sink:
            for key, u in samples:
                sink.write({"__key__": key, "units.npy": u})
    cfg = {"kind": "units_shards", "train": str(tmp_path / "train.tar")}
    cfg["eval"] = str(tmp_path / "eval.tar")
    with pytest.raises(SeqlabError, match=message) as e:
        prepare_dataset("x", cfg, tmp_path / "ds")
    assert "\n" not in str(e.value) and not (tmp_path / "ds").exists()
