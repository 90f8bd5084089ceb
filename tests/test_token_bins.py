"""nanoGPT token bins: build, ingest, check; random batches reproducible from (seed, step)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlab.config import TrainConfig, from_dict
from seqlab.data.checks import run_checks
from seqlab.data.prepare import prepare_dataset
from seqlab.data.token_bins import EOT, decode_bytes, encode_bytes, read_bin, write_bin
from seqlab.data.world import World, WorldParams, stream_rng
from seqlab.errors import SeqlabError
from seqlab.train.text_lm import TextLMTask

SMALL = {"kind": "synthetic_text_bins", "seed": 5, "lexicon_size": 200,
         "n_train_sentences": 300, "n_val_sentences": 30}  # fmt: skip


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bins") / "text"
    prepare_dataset("text", SMALL, d)
    return d


def test_bytes_round_trip() -> None:
    text = "naïve café — ok"
    assert decode_bytes(encode_bytes(text)) == text
    assert decode_bytes(np.array([104, 105, EOT, 33])) == "hi\n!"


def test_synthetic_bins_hold_the_worlds_sentences(bins: Path) -> None:
    man = json.loads((bins / "manifest.json").read_text())
    meta = json.loads((bins / "meta.json").read_text())
    assert man["kind"] == "token_bins" and man["vocab_size"] == meta["vocab_size"] == 257
    train = read_bin(bins / "train.bin")
    assert train.dtype == np.uint16 and len(train) == man["splits"]["train"]["n_tokens"]
    assert (train == EOT).sum() == 300 and train[-1] == EOT
    world = World(WorldParams(seed=5, lexicon_size=200))
    first = world.sentences(300, stream_rng(5, "text-train"))[0]
    assert decode_bytes(train).splitlines()[0] == world.text(first)


def test_checks_pass_and_give_the_baseline(bins: Path) -> None:
    res = run_checks(bins / "manifest.json", {"seq_len": 32})
    assert res["passed"], res["failures"]
    assert 1.0 < res["unigram_entropy_nats"] < np.log(257)


def test_ingest_and_out_of_range_token_fails(tmp_path: Path) -> None:
    src = tmp_path / "owt"
    src.mkdir()
    write_bin(src / "train.bin", np.arange(5000) % 300)  # 299 >= vocab 257: planted
    write_bin(src / "val.bin", np.arange(500) % 200)
    with pytest.raises(SeqlabError, match="vocab_size unknown"):
        prepare_dataset("owt", {"kind": "token_bins", "path": str(src)}, tmp_path / "a")
    man = prepare_dataset("owt", {"kind": "token_bins", "path": str(src), "vocab_size": 257},
                          tmp_path / "b")  # fmt: skip
    assert man["splits"]["val"]["n_tokens"] == 500 and (tmp_path / "b" / "train.bin").is_symlink()
    res = run_checks(tmp_path / "b" / "manifest.json", {"seq_len": 32})
    assert not res["passed"]
    assert res["failures"][0].startswith("check token_range failed:")
    assert "position 257 holds token 257 >= vocab_size 257" in res["failures"][0]
    assert res["checks"]["token_range_val"]["passed"]


def test_split_sizes_fail_on_a_tiny_val(tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    write_bin(src / "train.bin", np.arange(5000) % 100)
    write_bin(src / "val.bin", np.arange(20) % 100)
    prepare_dataset("d", {"kind": "token_bins", "path": str(src), "vocab_size": 100,
                          "link": False}, tmp_path / "o")  # fmt: skip
    res = run_checks(tmp_path / "o" / "manifest.json", {"seq_len": 32})
    assert any("split_sizes" in f and "val.bin has 20 tokens" in f for f in res["failures"])


def _task(bins: Path, seed: int) -> TextLMTask:
    cfg = from_dict(TrainConfig, {"model": {"arch": "gpt2"}, "batch_size": 4, "seq_len": 16,
                                 "eval_batches": 2})  # fmt: skip
    return TextLMTask({"manifest": str(bins / "manifest.json")}, cfg, seed, torch.device("cpu"))


def test_random_batches_are_a_function_of_seed_and_step(bins: Path) -> None:
    a, b, c = _task(bins, 0), _task(bins, 0), _task(bins, 1)
    x, y = a.train_batch(7)
    x2, y2 = b.train_batch(7)  # a fresh task (a resumed trial) draws the same batch
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, a.train_batch(8)[0]) and not torch.equal(x, c.train_batch(7)[0])
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one token
    data = read_bin(bins / "train.bin")
    for row, off in zip(x, a.offsets("train", 0, 7), strict=True):
        assert row.tolist() == data[off : off + 16].tolist()
    assert x.dtype == torch.int64 and x.shape == (4, 16)
    # evaluation batches are the same for every trial seed: modes are scored on equal tokens
    assert all(np.array_equal(p, q) for p, q in
               zip(a._eval_offsets("val"), c._eval_offsets("val"), strict=True))  # fmt: skip


def test_nanogpt_meta_pkl_read_when_trusted(tmp_path: Path) -> None:
    """shakespeare_char's layout: meta.pkl holds vocab_size 65 (not GPT-2's 50257)."""
    import pickle

    src = tmp_path / "shakespeare_char"
    src.mkdir()
    write_bin(src / "train.bin", np.arange(5000) % 65)
    write_bin(src / "val.bin", np.arange(600) % 65)
    chars = [chr(32 + i) for i in range(65)]
    meta = {"vocab_size": 65, "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in
            enumerate(chars)}}  # fmt: skip
    (src / "meta.pkl").write_bytes(pickle.dumps(meta))
    with pytest.raises(SeqlabError, match=r"has nanoGPT's meta\.pkl: set `trusted: true`") as e:
        prepare_dataset("sc", {"kind": "token_bins", "path": str(src)}, tmp_path / "a")
    assert "50257" not in str(e.value)
    man = prepare_dataset("sc", {"kind": "token_bins", "path": str(src), "trusted": True},
                          tmp_path / "b")  # fmt: skip
    assert man["vocab_size"] == 65
    assert run_checks(tmp_path / "b" / "manifest.json", {"seq_len": 32})["passed"]
