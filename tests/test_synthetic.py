"""The synthetic world and the synthetic_units dataset: determinism, statistics, contracts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import parse

from seqlab.config_datasets import SyntheticUnits
from seqlab.data.manifest import Manifest
from seqlab.data.phonemes import CLASS_OF, CLASSES, PHONEME_ID, PHONEMES, SIL
from seqlab.data.prepare import prepare_dataset
from seqlab.data.synthetic_units import build_synthetic_units
from seqlab.data.unit_batches import token_stream
from seqlab.data.world import World, WorldParams, stream_rng
from seqlab.errors import SeqlabError

SMALL = {"n_train_utterances": 200, "n_eval_utterances": 30, "shard_size": 64}


def entropy(units: np.ndarray, vocab: int = 256) -> float:
    p = np.bincount(units, minlength=vocab) / len(units)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldParams())


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Manifest:
    out = tmp_path_factory.mktemp("small")
    build_synthetic_units("small", SMALL, out)
    return Manifest(out / "manifest.json")


def shard_bytes(m: Manifest) -> list[bytes]:
    return [p.read_bytes() for s in m.splits() for p in m.shard_paths(s)]


def test_inventory_and_lexicon(world: World) -> None:
    assert len(PHONEMES) == 40 and PHONEMES[SIL] == "SIL"
    assert {CLASSES[c] for c in CLASS_OF} == set(CLASSES)
    assert CLASSES[CLASS_OF[PHONEME_ID["AA"]]] == "vowel"
    assert CLASSES[CLASS_OF[PHONEME_ID["T"]]] == "stop"
    lex = world.lexicon
    assert len(lex) == 2000 and lex.words[0] == "the"
    assert [PHONEMES[i] for i in lex.prons[lex.index["the"]]] == ["DH", "AH"]
    assert all(SIL not in pr for pr in lex.prons)
    assert np.all(np.diff(lex.freq) <= 0)  # wordfreq order: most frequent first
    # every unit belongs to exactly one phoneme's block
    assert sorted(np.concatenate(world.blocks).tolist()) == list(range(256))


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, small: Manifest) -> None:
    again = build_synthetic_units("small", SMALL, tmp_path / "a")
    assert again == small.data
    assert shard_bytes(Manifest(tmp_path / "a" / "manifest.json")) == shard_bytes(small)
    build_synthetic_units("small", {**SMALL, "seed": 1}, tmp_path / "b")
    other = Manifest(tmp_path / "b" / "manifest.json")
    assert shard_bytes(other)[0] != shard_bytes(small)[0]


def test_shard_round_trip(small: Manifest) -> None:
    assert small.data["kind"] == "synthetic_units" and small.vocab_size == 256
    assert (small.bos, small.eos) == (256, 257)
    for split, n in (("train", 200), ("eval", 30)):
        utts = list(small.iter_split(split))
        info = small.data["splits"][split]
        assert len(utts) == n == info["n_samples"]
        assert sum(len(u.units) for u in utts) == info["n_units"]
        assert len(info["shards"]) == -(-n // 64)
        for u in utts:
            assert u.units.dtype == np.uint16 and u.units.ndim == 1 and len(u.units) > 0
            assert int(u.units.max()) < 256
            assert set(u.meta) >= {"speaker", "heldout_voice", "duration", "source", "text"}
            assert u.meta["source"] == "synthetic"
            assert u.meta["duration"] == pytest.approx(len(u.units) / 50)  # no dedup: 1 unit/frame
        stream = token_stream(utts, small.bos, small.eos)
        assert len(stream) == info["n_units"] + 2 * n
    assert SyntheticUnits(**small.data["params"]) == SyntheticUnits(**SMALL)


def test_eval_is_heldout_sentences_and_voices(small: Manifest) -> None:
    train = list(small.iter_split("train"))
    evals = list(small.iter_split("eval"))
    assert not {u.meta["text"] for u in train} & {u.meta["text"] for u in evals}
    assert not any(u.meta["heldout_voice"] for u in train)
    assert any(u.meta["heldout_voice"] for u in evals)  # 25% of 30: P(none) ~ 2e-4
    held = {v["id"] for v in small.data["voices"] if v["heldout"]}
    assert all((u.meta["speaker"] in held) == u.meta["heldout_voice"] for u in train + evals)


def test_unigram_entropy_near_spidr(tmp_path: Path) -> None:
    """The default world's train units have ~5.16 nats unigram entropy (SpidR: 5.17), and
    repeated frames make them far more predictable from the previous unit than that."""
    m = build_synthetic_units("h", {"n_train_utterances": 1500, "n_eval_utterances": 10}, tmp_path)
    units = np.concatenate(
        [u.units for u in Manifest(tmp_path / "manifest.json").iter_split("train")]
    )
    assert m["splits"]["train"]["n_units"] == len(units) > 200_000
    assert 5.08 < entropy(units) < 5.24
    assert 0.5 < np.mean(units[1:] == units[:-1]) < 0.75


def test_dedup_removes_repeats(tmp_path: Path) -> None:
    build_synthetic_units("d", {**SMALL, "dedup": True}, tmp_path)
    for u in Manifest(tmp_path / "manifest.json").iter_split("train"):
        assert np.all(u.units[1:] != u.units[:-1])
        assert len(u.units) < u.meta["duration"] * 50  # duration stays the audio's


def segments(units: np.ndarray, durations: np.ndarray) -> list[np.ndarray]:
    return np.split(units, np.cumsum(durations)[:-1])


def test_shared_draws_differ_only_around_substitution(world: World) -> None:
    lex = world.lexicon
    word = np.concatenate([[SIL], lex.prons[lex.index["little"]], [SIL]])  # SIL L IH T AH L SIL
    k = 3
    assert PHONEMES[word[k]] == "T"
    rng = np.random.default_rng(7)
    diffs_same_class = 0
    for trial in range(20):
        draws = world.draws(rng, len(word))
        a = world.render(word, voice=trial % 24, draws=draws)
        again = world.render(word, voice=trial % 24, draws=draws)
        assert np.array_equal(a.units, again.units)
        for sub, same_class in (("D", True), ("S", False)):
            other = word.copy()
            other[k] = PHONEME_ID[sub]
            b = world.render(other, voice=trial % 24, draws=draws)
            sa, sb = segments(a.units, a.durations), segments(b.units, b.durations)
            # the substituted phoneme's neighbours may change (coarticulation, context class)
            for i in [*range(k - 1), *range(k + 2, len(word))]:
                assert np.array_equal(sa[i], sb[i]), (trial, sub, i)
            if same_class:
                assert np.array_equal(a.durations, b.durations)
                diffs_same_class += not np.array_equal(a.units, b.units)
    assert diffs_same_class >= 18  # the substitution is audible (units of another block)


def test_every_phoneme_keeps_a_frame_of_its_own() -> None:
    w = World(WorldParams(noise=0.0, coart_prob=1.0, lexicon_size=200))
    block_of = np.empty(256, np.int64)
    for ph, block in enumerate(w.blocks):
        block_of[block] = ph
    rng = stream_rng(0, "test")
    for s in w.sentences(30, rng):
        ph = w.phonemes(s, rng)
        r = w.render(ph, voice=0, rng=rng)
        for p, seg in zip(ph, segments(r.units, r.durations), strict=True):
            assert p in block_of[seg]


def test_params_errors(tmp_path: Path) -> None:
    with pytest.raises(SeqlabError, match=r"n_utts: unknown key;.*n_train_utterances"):
        build_synthetic_units("x", {"n_utts": 5}, tmp_path)
    # values are checked when the config loads (the builders take a validated block)
    with pytest.raises(SeqlabError, match=r"noise: must be <= 1.0 \(got 1.5\)"):
        parse(SyntheticUnits, {"noise": 1.5}, "datasets.x")
    with pytest.raises(SeqlabError, match=r"vocab_size: must be >= 40 \(got 32\)"):
        parse(SyntheticUnits, {"vocab_size": 32}, "datasets.x")
    with pytest.raises(SeqlabError, match="dedup"):
        parse(SyntheticUnits, {"dedup": "yes"}, "datasets.x")
    with pytest.raises(SeqlabError, match="unknown classes"):
        build_synthetic_units("x", {"class_dur_ms": {"vowels": 90}}, tmp_path)
    assert not list(tmp_path.iterdir())


def test_prepare_dataset_all_or_nothing(tmp_path: Path) -> None:
    out = tmp_path / "data" / "syn"
    with pytest.raises(SeqlabError, match="known kinds: synthetic_units, units_text"):
        prepare_dataset("syn", {"kind": "nope"}, out)
    with pytest.raises(SeqlabError, match="bogus: unknown key"):
        prepare_dataset("syn", {"kind": "synthetic_units", "bogus": 1}, out)
    assert not out.exists() and not list((tmp_path / "data").iterdir())
    m = prepare_dataset("syn", {"kind": "synthetic_units", **SMALL}, out)
    (out / "prepare.log").write_text("kept")
    m2 = prepare_dataset("syn", {"kind": "synthetic_units", **SMALL, "shard_size": 500}, out)
    assert m2["splits"]["train"]["n_units"] == m["splits"]["train"]["n_units"]
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "eval-000000.tar",
        "train-000000.tar",
    ]
    assert (out / "prepare.log").read_text() == "kept"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["syn"]
    assert Manifest(out / "manifest.json").data == m2
