"""Ingest of real units: ZeroSpeech/GSLM text formats and existing WebDataset shards."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqlab.data.ingest import (
    export_shards,
    ingest_units_shards,
    ingest_units_text,
    read_units_text,
    write_units_text,
)
from seqlab.data.manifest import Manifest
from seqlab.data.prepare import prepare_dataset
from seqlab.data.shards import Utterance, iter_shard, write_shards
from seqlab.errors import SeqlabError


def items(n: int, seed: int = 0, prefix: str = "utt") -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(f"{prefix}{i:04d}", rng.integers(0, 256, rng.integers(1, 60))) for i in range(n)]


def by_name(m: Manifest, split: str) -> dict[str, np.ndarray]:
    return {u.meta["name"]: u.units for u in m.iter_split(split)}


@pytest.mark.parametrize("fmt", ["tab", "space"])
def test_text_round_trip(tmp_path: Path, fmt: str) -> None:
    train, evals = items(50), items(10, seed=1, prefix="dev")
    write_units_text(tmp_path / "train.txt", train, fmt)
    write_units_text(tmp_path / "eval.txt", evals, fmt)
    line = (tmp_path / "train.txt").read_text().splitlines()[0]
    assert re.fullmatch(r"utt0000\t\d+(,\d+)*" if fmt == "tab" else r"utt0000( \d+)+", line)
    params = {"train": str(tmp_path / "train.txt"), "eval": str(tmp_path / "eval.txt"),
              "speaker_regex": r"^([a-z]+)"}  # fmt: skip
    m = ingest_units_text("real", params, tmp_path / "ds")
    man = Manifest(tmp_path / "ds" / "manifest.json")
    assert m["kind"] == "units_text" and m["vocab_size"] == 256
    assert m["store"]["train"]["n_samples"] == 50 and m["line_formats"][params["train"]] == "named"
    exported = export_shards(tmp_path / "ds" / "manifest.json", tmp_path / "out", shard_size=16)
    assert len(exported["train"]) == 4  # the interchange format, on demand
    back = [u for e in exported["eval"] for u in iter_shard(tmp_path / "out" / e["path"])]
    assert [u.meta["name"] for u in back] == [n for n, _ in evals]
    assert all(np.array_equal(u.units, x) for u, (_, x) in zip(back, evals, strict=True))
    for split, expected in (("train", train), ("eval", evals)):
        got = by_name(man, split)
        assert list(got) == [n for n, _ in expected]
        for name, units in expected:
            assert got[name].dtype == np.uint16 and np.array_equal(got[name], units)
    u = next(man.iter_split("eval"))
    assert u.meta["speaker"] == "dev" and u.meta["duration"] == pytest.approx(len(u.units) / 50)


def test_formats_detected_per_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text("a\t1,2,3\n\n  b 4 5 6  \nc|7 8\nd.wav\t9\n")
    got = read_units_text(path)
    assert [n for n, _ in got] == ["a", "b", "c", "d.wav"]
    assert [u.tolist() for _, u in got] == [[1, 2, 3], [4, 5, 6], [7, 8], [9]]
    # a name with a dot or slash still gets a valid WebDataset key; the name stays in meta
    write_units_text(tmp_path / "e.txt", [("x/y.flac", [1, 2])])
    ingest_units_text("m", {"train": str(path), "eval": str(tmp_path / "e.txt")}, tmp_path / "ds")
    (u,) = Manifest(tmp_path / "ds" / "manifest.json").iter_split("eval")
    assert u.key == "x_y_flac" and u.meta["name"] == "x/y.flac"


@pytest.mark.parametrize(
    "text, vocab, message",
    [
        ("a\t1,2\nb\t1,x,3\n", 256, r"bad\.txt:2: unit 'x' of 'b' is not a non-negative integer"),
        ("a 1 2\nb 1 -3\n", 256, r"bad\.txt:2: unit '-3'"),
        ("a 1 2\n\nb 1 300\n", 256, r"bad\.txt:3: unit 300 of 'b' is out of range 0\.\.255"),
        ("a 1 2\nb 5\n", 5, r"bad\.txt:2: unit 5 of 'b' is out of range 0\.\.4; set vocab_size"),
        ("a 1 2\nb 3\na 4\n", 256, r"bad\.txt:3: duplicate name 'a' \(first at line 1\)"),
        ("a 1 2\nb\n", 256, r"bad\.txt:2: 'b' has no units"),
        ("\n\n", 256, r"bad\.txt: no utterances"),
    ],
)
def test_text_errors(tmp_path: Path, text: str, vocab: int, message: str) -> None:
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(SeqlabError, match=message) as e:
        ingest_units_text("x", {"train": str(tmp_path / "bad.txt"), "vocab_size": vocab},
                          tmp_path / "ds")  # fmt: skip
    assert "\n" not in str(e.value)


def test_paths_and_encodings_are_one_line(tmp_path: Path) -> None:
    """A path typo, a directory, an empty eval file, Latin-1 names and UTF-16 files: one
    line each, nothing written; a UTF-8 byte-order mark is not part of the first name."""
    write_units_text(tmp_path / "t.txt", items(5))
    (tmp_path / "empty.txt").write_text("")

    def fails(params: dict, message: str) -> None:
        with pytest.raises(SeqlabError, match=message) as e:
            prepare_dataset("x", {"kind": "units_text", **params}, tmp_path / "ds")
        assert "\n" not in str(e.value) and not (tmp_path / "ds").exists()

    train = str(tmp_path / "t.txt")
    fails({"train": train, "eval": "nope.txt"}, r"nope\.txt: units file not found; check")
    fails({"train": str(tmp_path)}, r": units file is a directory; check the dataset's")
    fails({"train": train, "eval": str(tmp_path / "empty.txt")}, r"empty\.txt: no utterances")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\t1,2\ncaf\xe8\t3\n")
    fails({"train": str(tmp_path / "latin1.txt")}, r"latin1\.txt:1: not UTF-8 \(byte 0xe9 at co")
    (tmp_path / "u16.txt").write_text("a\t1,2\n", encoding="utf-16")
    fails({"train": str(tmp_path / "u16.txt")}, r"u16\.txt: not UTF-8 text \(UTF-16 or binary\)")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "t.txt").read_bytes())
    (tmp_path / "bom_units.txt").write_bytes(b"\xef\xbb\xbf\n1 2 3\n4 5\n")
    assert read_units_text(tmp_path / "bom.txt")[0][0] == read_units_text(train)[0][0]
    assert [n for n, _ in read_units_text(tmp_path / "bom_units.txt")] == [
        "bom_units.txt:2", "bom_units.txt:3"]  # fmt: skip


def test_eval_fraction_split_is_stable(tmp_path: Path) -> None:
    data = items(200)
    write_units_text(tmp_path / "a.txt", data)
    write_units_text(tmp_path / "b.txt", data[::-1], "space")  # same items, other order/format
    params = {"eval_fraction": 0.1, "split_seed": 3}
    ingest_units_text("a", {**params, "train": str(tmp_path / "a.txt")}, tmp_path / "a")
    ingest_units_text("b", {**params, "train": str(tmp_path / "b.txt")}, tmp_path / "b")
    ma, mb = (Manifest(tmp_path / d / "manifest.json") for d in "ab")
    eval_a, train_a = set(by_name(ma, "eval")), set(by_name(ma, "train"))
    assert len(eval_a) == 20 and len(train_a) == 180 and not eval_a & train_a
    assert set(by_name(mb, "eval")) == eval_a
    ingest_units_text("c", {"train": str(tmp_path / "a.txt"), "eval_fraction": 0.1}, tmp_path / "c")
    assert set(by_name(Manifest(tmp_path / "c" / "manifest.json"), "eval")) != eval_a


def test_train_eval_overlap_and_params_errors(tmp_path: Path) -> None:
    write_units_text(tmp_path / "t.txt", items(5))
    write_units_text(tmp_path / "e.txt", items(2))
    with pytest.raises(SeqlabError, match=r"2 names also in .*t\.txt"):
        ingest_units_text("x", {"train": str(tmp_path / "t.txt"), "eval": str(tmp_path / "e.txt")},
                          tmp_path / "ds")  # fmt: skip
    with pytest.raises(SeqlabError, match=r"path: unknown key; valid keys: kind, train, eval"):
        ingest_units_text("x", {"path": "t.txt"}, tmp_path / "ds")
    with pytest.raises(SeqlabError, match="units file not found"):
        ingest_units_text("x", {"train": str(tmp_path / "missing.txt")}, tmp_path / "ds")


def write_src_shards(root: Path, prefix: str, utts: list[Utterance]) -> None:
    write_shards(utts, root, prefix, shard_size=7, subdir=".")


def utts(n: int, seed: int, prefix: str) -> list[Utterance]:
    return [Utterance(f"{prefix}{i}", u.astype(np.uint16), {"speaker": "s", "duration": 1.0,
                                                         "source": "real"})
            for i, (_, u) in enumerate(items(n, seed))]  # fmt: skip


@pytest.mark.parametrize("mode", ["copy", "symlink"])
def test_shards_ingest(tmp_path: Path, mode: str) -> None:
    src = tmp_path / "src"
    train, evals = utts(20, 0, "tr"), utts(5, 1, "ev")
    write_src_shards(src, "train", train)
    write_src_shards(src, "eval", evals)
    cfg = {"kind": "units_shards", "train": str(src / "train-*.tar"),
           "eval": [str(src / "eval-000000.tar")], "mode": mode}  # fmt: skip
    m = prepare_dataset("sh", cfg, tmp_path / "ds")
    man = Manifest(tmp_path / "ds" / "manifest.json")
    assert m["kind"] == "units_shards" and len(m["splits"]["train"]["shards"]) == 3
    assert m["splits"]["train"]["n_samples"] == 20 and m["splits"]["eval"]["n_samples"] == 5
    got = list(man.iter_split("train"))
    assert [u.key for u in got] == [u.key for u in train]
    assert all(np.array_equal(a.units, b.units) for a, b in zip(got, train, strict=True))
    assert m["splits"]["train"]["n_units"] == sum(len(u.units) for u in train)
    assert man.shard_paths("train")[0].is_symlink() == (mode == "symlink")


def test_shards_ingest_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_src_shards(src, "eval", utts(3, 1, "ev"))
    bad = utts(3, 0, "tr")
    bad[1].units[0] = 300
    write_src_shards(src, "train", bad)
    params = {"train": str(src / "train-*.tar"), "eval": str(src / "eval-*.tar")}
    with pytest.raises(
        SeqlabError, match=r"train-000000\.tar: sample 'tr1': unit 300 out of range"
    ):
        ingest_units_shards("x", params, tmp_path / "a")
    with pytest.raises(SeqlabError, match="no shard matches"):
        ingest_units_shards("x", {**params, "train": str(src / "nope-*.tar")}, tmp_path / "b")
    write_src_shards(src / "dup", "train", utts(3, 0, "ev"))  # keys clash with eval's
    with pytest.raises(SeqlabError, match=r"sample 'ev0': key also in"):
        ingest_units_shards("x", {**params, "train": str(src / "dup" / "*.tar")}, tmp_path / "c")
    (src / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(SeqlabError, match=r"junk\.tar"):
        prepare_dataset("x", {"kind": "units_shards", **params, "train": str(src / "junk.tar")},
                        tmp_path / "d")  # fmt: skip
    assert not (tmp_path / "d").exists()


def _raw_shard(path: Path, samples: list[tuple[str, np.ndarray]]) -> None:
    """A shard written by hand, as another tool might (keys and dtypes as given)."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for key, units in samples:
            buf = io.BytesIO()
            np.save(buf, units)
            info = tarfile.TarInfo(f"{key}.units.npy")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize(
    "key, units, message",
    [
        ("utt1", np.arange(5, dtype=np.int64), r"sample 'utt1': units\.npy is int64 .* the "
         r"contract is 1-D uint16 units: rewrite the shard with units\.astype\(np\.uint16\)"),
        ("spk1.utt1", np.arange(5, dtype=np.uint16), r"sample key 'spk1\.utt1' has a dot"),
    ],
)  # fmt: skip
def test_shard_contract_refused_at_ingest(tmp_path: Path, key, units, message) -> None:
    _raw_shard(tmp_path / "t.tar", [(key, units)])
    write_src_shards(tmp_path, "eval", utts(2, 1, "ev"))
    params = {"train": str(tmp_path / "t.tar"), "eval": str(tmp_path / "eval-*.tar")}
    with pytest.raises(SeqlabError, match=message) as e:
        prepare_dataset("x", {"kind": "units_shards", **params}, tmp_path / "ds")
    assert "\n" not in str(e.value) and not (tmp_path / "ds").exists()


class _Payload:
    """Unpickling this runs `touch <path>`: a pickle is code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (subprocess.call, (["touch", self.path],))


def test_shard_members_are_never_unpickled(tmp_path: Path) -> None:
    """Only units.npy (without pickles) and json are decoded; a .pyd member, which
    webdataset's default decoders would unpickle, stays bytes and is ignored."""
    import io
    import pickle
    import tarfile

    write_src_shards(tmp_path / "src", "train", utts(3, 0, "tr"))
    write_src_shards(tmp_path / "src", "eval", utts(2, 1, "ev"))
    shard = tmp_path / "src" / "train-000000.tar"
    with tarfile.open(shard) as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    evil = pickle.dumps(_Payload(tmp_path / "PWNED"))
    info = tarfile.TarInfo(f"{members[0][0].name.split('.')[0]}.extra.pyd")  # sample 1's
    info.size = len(evil)
    with tarfile.open(shard, "w") as t:
        for m, data in [*members[:2], (info, evil), *members[2:]]:
            t.addfile(m, io.BytesIO(data))
    params = {"kind": "units_shards", "train": str(tmp_path / "src" / "train-*.tar"),
              "eval": str(tmp_path / "src" / "eval-*.tar")}  # fmt: skip
    m = prepare_dataset("x", params, tmp_path / "ds")
    assert m["splits"]["train"]["n_samples"] == 3 and not (tmp_path / "PWNED").exists()


def test_a_shard_cut_between_members_is_refused(tmp_path: Path) -> None:
    """tarfile reads a tar cut at a member boundary as a shorter tar: samples would go
    missing without a word, and the counts of the manifest would agree with the loss."""
    write_src_shards(tmp_path / "src", "train", utts(20, 0, "tr"))
    write_src_shards(tmp_path / "src", "eval", utts(2, 1, "ev"))
    shard = tmp_path / "src" / "train-000000.tar"
    import tarfile

    with tarfile.open(shard) as t:
        cut = t.getmembers()[6].offset  # a member boundary, past a few whole samples
    shard.write_bytes(shard.read_bytes()[:cut])
    params = {"kind": "units_shards", "train": str(shard),
              "eval": str(tmp_path / "src" / "eval-*.tar")}  # fmt: skip
    with pytest.raises(SeqlabError, match=r"train-000000\.tar: truncated tar \(no end-of-arch"):
        prepare_dataset("x", params, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    shard.write_bytes(shard.read_bytes()[: cut - 100])  # inside a member
    with pytest.raises(SeqlabError, match=r"truncated tar \(it ends inside the data of tar entry"):
        prepare_dataset("x", params, tmp_path / "ds")


def test_directory_as_shard_glob(tmp_path: Path) -> None:
    write_src_shards(tmp_path / "d", "train", utts(3, 0, "tr"))
    params = {"train": str(tmp_path / "d"), "eval": str(tmp_path / "d" / "*.tar")}
    with pytest.raises(SeqlabError, match=r"'.*/d' is a directory, not a shard; .*'.*/d/\*\.tar'"):
        ingest_units_shards("x", params, tmp_path / "ds")


def test_units_only_lines(tmp_path: Path) -> None:
    """fairseq --hide-fname: units only; named file:line, recorded; a mix is refused."""
    (tmp_path / "u.txt").write_text("1 2 3\n4 5\n\n6 7 8 9\n")
    m = ingest_units_text("u", {"train": str(tmp_path / "u.txt"), "eval_fraction": 0.3},
                          tmp_path / "ds")  # fmt: skip
    assert m["line_formats"] == {str(tmp_path / "u.txt"): "units_only"}
    got = {**by_name(Manifest(tmp_path / "ds" / "manifest.json"), "train"),
           **by_name(Manifest(tmp_path / "ds" / "manifest.json"), "eval")}  # fmt: skip
    assert {k: v.tolist() for k, v in got.items()} == {
        "u.txt:1": [1, 2, 3], "u.txt:2": [4, 5], "u.txt:4": [6, 7, 8, 9]}  # fmt: skip
    (tmp_path / "mix.txt").write_text("1 2 3\nutt2 4 5\n")
    with pytest.raises(SeqlabError, match=r"mix\.txt:2: line has a name, but line 1 .* none"):
        read_units_text(tmp_path / "mix.txt")
    (tmp_path / "num.txt").write_text("a 1 2 3\n17 4 5\n")
    with pytest.raises(SeqlabError, match=r"num\.txt:2: first field '17' is a number"):
        read_units_text(tmp_path / "num.txt")
    (tmp_path / "tabnum.txt").write_text("a\t1,2\n17\t4,5\n")  # unambiguous: a TAB ends names
    assert [n for n, _ in read_units_text(tmp_path / "tabnum.txt")] == ["a", "17"]


def seqlab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlab.commands", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_export_shards_command_round_trips(unit_manifest: Path, tmp_path: Path) -> None:
    """`seqlab export-shards` writes every split as shards that a `units_shards` dataset reads
    back to the same utterances; a non-empty target is refused in one line, untouched."""
    out = tmp_path / "shards"
    r = seqlab_cli("export-shards", str(unit_manifest), str(out), "--shard-size", "16")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^train: \d+ shards, 200 utterances", r.stdout, re.M), r.stdout
    assert not list(tmp_path.glob(".shards.partial-*"))
    original = Manifest(unit_manifest)
    back_cfg = {"kind": "units_shards", "train": str(out / "train-*.tar"),
                "eval": str(out / "eval-*.tar"), "vocab_size": original.vocab_size}  # fmt: skip
    prepare_dataset("back", back_cfg, tmp_path / "back")
    back = Manifest(tmp_path / "back" / "manifest.json")
    for split in ("train", "eval"):
        want = {u.key: u.units for u in original.iter_split(split)}
        got = {u.key: u.units for u in back.iter_split(split)}
        assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in want)
    before = sorted(p.name for p in out.iterdir())
    r = seqlab_cli("export-shards", str(unit_manifest), str(out))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "not an empty directory" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == before
