"""The packed token store: round trip, integrity at open and in full, batches as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import markov_utterances, tiny_trial

from seqlab.config import TrainConfig, from_dict
from seqlab.data.manifest import Manifest
from seqlab.data.store import StoreSplit, StoreWriter, open_split
from seqlab.data.unit_batches import StoreBatches, token_stream
from seqlab.errors import SeqlabError
from seqlab.train.tasks import UnitLMTask


class ReferenceBatches:
    """The loader before the store (seqlab 0.x `SequenceBatches`), kept verbatim as the
    reference: the whole split decoded into an int64 tensor of rows, a Python loop per row."""

    def __init__(self, seqs: np.ndarray, batch_size: int, seed: int):
        self.seqs = torch.from_numpy(seqs.astype(np.int64))
        self.batch_size, self.seed = batch_size, seed

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, rows = len(self.seqs), []
        for j in range(index * self.batch_size, (index + 1) * self.batch_size):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + j // n)
            rows.append(torch.randperm(n, generator=g)[j % n])
        x = self.seqs[torch.stack(rows)]
        return x[:, :-1], x[:, 1:]


def cut_sequences(stream: np.ndarray, seq_len: int) -> np.ndarray:
    n = (len(stream) - 1) // seq_len
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return stream[idx]


def test_round_trip_and_checksums(unit_manifest: Path) -> None:
    man = Manifest(unit_manifest)
    for split in ("train", "eval"):
        sp = open_split(man.root, man.data, split)
        utts = list(man.iter_split(split))  # from the shards
        assert np.array_equal(sp.tokens, token_stream(utts, man.bos, man.eos))
        assert len(sp) == len(utts) == man.data["splits"][split]["n_samples"]
        assert sp.key(len(utts) - 1) == utts[-1].key and sp.verify() == []
        assert sp.source(0) == "shards/" + man.shard_paths(split)[0].name
        u = len(utts) // 2
        assert np.array_equal(sp.tokens[sp.offsets[u] + 1 : sp.offsets[u + 1] - 1], utts[u].units)


def test_token_ids_key_and_older_manifests(tmp_path: Path, unit_manifest: Path) -> None:
    """`n_tokens` counts tokens; the id count is `n_token_ids`, and a dataset whose manifest
    still calls it a top-level `n_tokens` trains as before, without a rebuild."""
    data = json.loads(unit_manifest.read_text())
    assert "n_tokens" not in data and data["n_token_ids"] == data["vocab_size"] + 2
    older = shutil.copytree(unit_manifest.parent, tmp_path / "older") / "manifest.json"
    older.write_text(json.dumps({("n_tokens" if k == "n_token_ids" else k): v
                                 for k, v in data.items()}))  # fmt: skip
    cfg = from_dict(TrainConfig, tiny_trial(older)["train"])
    task = UnitLMTask({"manifest": str(older)}, cfg, 0, torch.device("cpu"))
    assert task.vocab_size == data["vocab_size"] + 2


def test_add_block_equals_add(tmp_path: Path) -> None:
    utts = list(markov_utterances(50, 4, 32))
    a, b = StoreWriter(tmp_path / "a", "train", 32), StoreWriter(tmp_path / "b", "train", 32)
    for u in utts:
        a.add(u.key, u.units, "x")
    lengths = np.array([len(u.units) for u in utts])
    b.add_block([u.key for u in utts], lengths, np.concatenate([u.units for u in utts]), "x")
    ea, eb = a.close(), b.close()
    assert ea["sha256"] == eb["sha256"] and ea["n_units"] == lengths.sum()


def _copy_dataset(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src.parent, dst)
    return dst / "manifest.json"


@pytest.mark.parametrize("damage", ["truncate", "flip", "offsets"])
def test_corrupt_store_is_one_line(tmp_path: Path, unit_manifest: Path, damage: str) -> None:
    path = _copy_dataset(unit_manifest, tmp_path / "ds")
    data = json.loads(path.read_text())
    bin_path = path.parent / data["store"]["train"]["bin"]
    raw = bytearray(bin_path.read_bytes())
    if damage == "truncate":
        bin_path.write_bytes(raw[:-10])
        with pytest.raises(SeqlabError, match=r"train\.bin: packed store is corrupt or trunc"):
            open_split(path.parent, data, "train")
        return
    if damage == "offsets":  # the index no longer spans the tokens: caught at open
        idx = path.parent / data["store"]["train"]["idx"]
        off = np.fromfile(idx, np.int64)
        off[-1] -= 1
        off.tofile(idx)
        with pytest.raises(SeqlabError, match=r"train\.idx: .*first/last offsets"):
            open_split(path.parent, data, "train")
        return
    raw[1000] ^= 1  # same size, different bytes: only the full checksum sees it
    bin_path.write_bytes(bytes(raw))
    fails = StoreSplit(path.parent, data["store"]["train"], data["vocab_size"]).verify()
    assert len(fails) == 1 and "train.bin: packed store is corrupt" in fails[0]
    assert "\n" not in fails[0] and "rerun its prepare rule" in fails[0]


def test_missing_store_is_one_line(tmp_path: Path, unit_manifest: Path) -> None:
    path = _copy_dataset(unit_manifest, tmp_path / "ds")
    data = json.loads(path.read_text())
    (path.parent / data["store"]["train"]["idx"]).unlink()
    with pytest.raises(SeqlabError, match=r"train\.idx: packed store .* \(the file is missing\)"):
        open_split(path.parent, data, "train")
    del data["store"]
    with pytest.raises(SeqlabError, match="no packed token store.*rerun its prepare rule"):
        open_split(tmp_path, data, "train")
    with pytest.raises(SeqlabError, match="a token_bins dataset has no unit store; this needs"):
        open_split(tmp_path, {**data, "kind": "token_bins"}, "train")


@pytest.mark.parametrize("seq_len, batch_size", [(16, 4), (32, 7), (64, 40)])
def test_same_batches_as_reference(unit_manifest: Path, seq_len: int, batch_size: int) -> None:
    man = Manifest(unit_manifest)
    stream = token_stream(man.iter_split("train"), man.bos, man.eos)  # decoded from the shards
    ref = ReferenceBatches(cut_sequences(stream, seq_len), batch_size, seed=3)
    new = StoreBatches(open_split(man.root, man.data, "train").tokens, seq_len, batch_size, 3)
    assert len(new) == len(ref.seqs)
    steps = [0, 1, 2, len(new) // batch_size, len(new) // batch_size + 1, 5 * len(new)]
    for step in steps:  # inside an epoch, across its end, far ahead (resume)
        (xr, yr), (xn, yn) = ref.batch(step), new.batch(step)
        assert xn.dtype == torch.int64 and torch.equal(xr, xn) and torch.equal(yr, yn)
    rows = [torch.cat([x, y[:, -1:]], 1) for x, y in new.eval_batches()]
    assert torch.equal(torch.cat(rows), ref.seqs)


def test_seq_len_longer_than_corpus_says_so(unit_manifest: Path) -> None:
    from seqlab.config import TrainConfig, from_dict
    from seqlab.train.tasks import build_task

    trial = {"task": "unit_lm", "seed": 0, "data": {"manifest": str(unit_manifest)}}
    cfg = from_dict(TrainConfig, {"seq_len": 10**7, "batch_size": 1})
    with pytest.raises(SeqlabError, match="fewer than one sequence of seq_len 10000000") as e:
        build_task(trial, cfg, torch.device("cpu"))
    assert "batch_size" not in str(e.value)


def _rss_file_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


def test_batches_keep_rss_flat(tmp_path: Path) -> None:
    """Random rows of a 40 MB store: the map's touched pages do not pile up in this process."""
    w = StoreWriter(tmp_path, "train", 500)
    rng = np.random.default_rng(0)
    for b in range(10):
        lengths = np.full(4000, 498)
        keys = [f"u{b}_{i}" for i in range(4000)]
        w.add_block(keys, lengths, rng.integers(0, 500, lengths.sum()).astype(np.uint16), "x")
    split = StoreSplit(tmp_path, w.close(), 500)
    batches = StoreBatches(split.tokens, 128, 32, seed=0)
    batches.batch(0)
    before = _rss_file_mb()
    for i in range(1, 200):
        batches.batch(i)
    assert _rss_file_mb() - before < 8  # without release: ~30 MB (read-ahead around rows)


def test_checks_rule_rehashes_the_store(tmp_path: Path, unit_manifest: Path) -> None:
    """A flipped byte (same size: open cannot see it) fails the checks rule in one line."""
    from seqlab.data.checks import check_and_write

    path = _copy_dataset(unit_manifest, tmp_path / "ds")
    check_and_write(path, tmp_path / "ok.json")
    data = json.loads(path.read_text())
    bin_path = path.parent / data["store"]["eval"]["bin"]
    raw = bytearray(bin_path.read_bytes())
    raw[len(raw) // 2] ^= 1
    bin_path.write_bytes(bytes(raw))
    with pytest.raises(SeqlabError, match=r"^check store_integrity failed: .*eval\.bin: packed "
                       r"store is corrupt or truncated \(sha256") as e:  # fmt: skip
        check_and_write(path, tmp_path / "checks.json")
    assert "\n" not in str(e.value) and not (tmp_path / "checks.json").exists()
