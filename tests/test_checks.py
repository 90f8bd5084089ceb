"""Tokenization checks: a clean Markov-chain corpus passes; each planted defect is named."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seqlab.data.checks import check_and_write, run_unit_checks
from seqlab.data.manifest import write_unit_manifest
from seqlab.data.shards import Utterance, write_shards
from seqlab.data.unit_batches import token_stream
from seqlab.errors import SeqlabError

V = 256
SHARD = 50  # utterances per shard


def markov_utts(n: int, seed: int, prefix: str) -> list[Utterance]:
    """Utterances from a sticky Markov chain over V units: realistic entropy, no duplicates."""
    rng = np.random.default_rng(seed)
    trans = np.random.default_rng(0).dirichlet(np.full(V, 0.1), size=V)  # shared by splits
    cdf = np.cumsum(trans, axis=1)
    utts = []
    for i in range(n):
        x = np.empty(int(rng.integers(120, 280)), np.uint16)
        x[0] = rng.integers(V)
        r = rng.random(len(x))
        for t in range(1, len(x)):
            x[t] = x[t - 1] if r[t] < 0.4 else min(V - 1, np.searchsorted(cdf[x[t - 1]], r[t]))
        utts.append(Utterance(f"{prefix}_{i:05d}", x, {"speaker": f"s{i % 7}"}))
    return utts


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[Utterance]]:
    return {"train": markov_utts(300, 1, "tr"), "eval": markov_utts(100, 2, "ev")}


def make(root: Path, splits: dict[str, list[Utterance]]) -> Path:
    """Write shards + manifest.json under root, as prepare does."""
    entries = {name: write_shards(utts, root, name, SHARD) for name, utts in splits.items()}
    write_unit_manifest(root / "manifest.json", "toy", "synthetic_units", V, entries, {})
    return root / "manifest.json"


def replace(utts: list[Utterance], i: int, units) -> list[Utterance]:
    out = list(utts)
    out[i] = Utterance(utts[i].key, np.asarray(units), utts[i].meta)
    return out


def shard_of(split: str, i: int) -> str:
    return f"shards/{split}-{i // SHARD:06d}.tar"


def fails_with(manifest: Path, *parts: str) -> str:
    """check_and_write must raise one line holding every part and write nothing."""
    out = manifest.parent / "checks.json"
    with pytest.raises(SeqlabError) as e:
        check_and_write(manifest, out)
    msg = str(e.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    assert not out.exists()
    return msg


def test_clean_corpus_passes_and_records_entropy(tmp_path, corpus):
    man = make(tmp_path, corpus)
    out = tmp_path / "checks.json"
    check_and_write(man, out, {"seq_len": 64})
    rep = json.loads(out.read_text())
    assert rep["passed"] and all(c["passed"] for c in rep["checks"].values())
    assert rep["vocab_size"] == V and rep["dataset"] == "toy" and rep["params"]["seq_len"] == 64

    def h(counter: Counter) -> float:
        n = sum(counter.values())
        return -sum(c / n * math.log(c / n) for c in counter.values())

    raw = Counter(int(u) for utt in corpus["train"] for u in utt.units)
    assert rep["unigram_entropy_nats"] == pytest.approx(h(raw), abs=1e-9)
    targets = token_stream(corpus["train"], V, V + 1)[1:]
    assert rep["unigram_entropy_tokens_nats"] == pytest.approx(
        h(Counter(targets.tolist())), abs=1e-10
    )
    pairs = Counter(
        (int(a), int(b))
        for u in corpus["train"]
        for a, b in zip(u.units[:-1], u.units[1:], strict=True)
    )
    prev = Counter(a for a, _ in pairs.elements())
    assert rep["bigram_conditional_entropy_nats"] == pytest.approx(h(pairs) - h(prev), abs=1e-10)
    assert rep["bigram_conditional_entropy_nats"] < rep["unigram_entropy_nats"] - 1

    stats = rep["checks"]["length_stats"]["detail"]["splits"]["train"]
    lengths = [len(u.units) for u in corpus["train"]]
    assert stats["n_samples"] == 300 and stats["n_units"] == sum(lengths)
    assert stats["max"] == max(lengths) and stats["median"] == float(np.median(lengths))
    assert stats["n_sequences_64"] == (sum(lengths) + 2 * 300 - 1) // 64
    win = rep["checks"]["anomalous_windows"]["detail"]
    assert win["max_jsd"] < win["threshold"] / 2  # natural data passes with a clear margin
    assert rep["checks"]["no_special_tokens"]["detail"]["train"]["loader_edges_ok"] is True


def test_out_of_range_unit(tmp_path, corpus):
    units = corpus["train"][142].units.copy()
    units[17] = 300
    man = make(tmp_path, {**corpus, "train": replace(corpus["train"], 142, units)})
    fails_with(man, "check token_range failed", shard_of("train", 142), "'tr_00142'",
               "unit 300 at position 17")  # fmt: skip


@pytest.mark.parametrize("token, name", [(V, "BOS"), (V + 1, "EOS")])
def test_bos_eos_inside_raw_units(tmp_path, corpus, token, name):
    units = corpus["eval"][55].units.copy()
    units[3] = token
    man = make(tmp_path, {**corpus, "eval": replace(corpus["eval"], 55, units)})
    msg = fails_with(man, "check no_special_tokens failed", shard_of("eval", 55), "'ev_00055'")
    assert f"{name} ({token}) at position 3" in msg and "token_range" not in msg


def test_empty_utterance(tmp_path, corpus):
    man = make(tmp_path, {**corpus, "train": replace(corpus["train"], 249, np.zeros(0, np.uint16))})
    fails_with(man, "check non_empty failed", shard_of("train", 249), "'tr_00249'", "empty")


def test_min_units_is_configurable(tmp_path, corpus):
    rep = run_unit_checks(make(tmp_path, corpus), {"min_units": 130})
    assert not rep["passed"] and not rep["checks"]["non_empty"]["passed"]
    with pytest.raises(SeqlabError, match="checks.min_unit: unknown key; did you mean 'min_units'"):
        run_unit_checks(tmp_path / "manifest.json", {"min_unit": 1})


def test_truncated_shard(tmp_path, corpus):
    man = make(tmp_path, corpus)
    tar = tmp_path / shard_of("train", 150)
    data = tar.read_bytes()
    tar.write_bytes(data[: len(data) // 2 + 100])
    fails_with(man, "check shard_integrity failed", str(tar), "truncated tar")


def test_manifest_count_mismatch(tmp_path, corpus):
    man = make(tmp_path, corpus)
    m = json.loads(man.read_text())
    m["splits"]["train"]["shards"][2]["n_samples"] += 1
    man.write_text(json.dumps(m))
    fails_with(man, "check shard_integrity failed", shard_of("train", 100), "'tr_00149'",
               "manifest says 51")  # fmt: skip


def test_duplicate_key_within_split(tmp_path, corpus):
    train = list(corpus["train"])
    train[230] = Utterance(train[10].key, train[230].units)
    fails_with(make(tmp_path, {**corpus, "train": train}), "check shard_integrity failed",
               shard_of("train", 230), "'tr_00010'", "duplicate key")  # fmt: skip


def test_eval_duplicates_of_train(tmp_path, corpus):
    ev = list(corpus["eval"])
    for i in range(3):  # 3% of eval > 1%
        ev[40 + i] = Utterance(ev[40 + i].key, corpus["train"][7 * i].units)
    msg = fails_with(make(tmp_path / "a", {**corpus, "eval": ev}), "check train_eval_overlap",
                     shard_of("eval", 40), "'ev_00040'", "'tr_00000'")  # fmt: skip
    assert "3 of 100" in msg
    # one duplicate (1%) is recorded, not failed
    ev = replace(corpus["eval"], 9, corpus["train"][3].units)
    rep = run_unit_checks(make(tmp_path / "b", {**corpus, "eval": ev}))
    assert rep["passed"]
    assert rep["checks"]["train_eval_overlap"]["detail"]["splits"]["eval"]["n_duplicates"] == 1


def test_corrupt_window_is_located(tmp_path, corpus):
    train = corpus["train"]
    flat = np.concatenate([u.units for u in train])
    start, span = len(flat) // 2, 5000
    flat[start : start + span] = 17  # a stretch of one constant unit
    parts = np.split(flat, np.cumsum([len(u.units) for u in train])[:-1])
    bad = [Utterance(u.key, a) for u, a in zip(train, parts, strict=True)]
    man = make(tmp_path, {**corpus, "train": bad})
    rep = run_unit_checks(man)
    win = rep["checks"]["anomalous_windows"]["detail"]
    assert not rep["checks"]["anomalous_windows"]["passed"]
    assert [k for k, c in rep["checks"].items() if not c["passed"]] == ["anomalous_windows"]
    first, W = win["flagged"][0], win["window"]
    # the first flagged window touches the region, at the latest it is the first one inside it
    assert start - W < first["unit_position"] <= -(-start // W) * W
    assert win["n_flagged"] >= span // W and win["top"][0]["jsd"] > 0.5
    ends = np.cumsum([len(u.units) for u in bad])
    u = int(np.searchsorted(ends, first["unit_position"], side="right"))
    assert first["key"] == bad[u].key
    stream = token_stream(bad, V, V + 1)  # the reported token position is the loader's
    assert first["token_position"] == first["unit_position"] + 2 * u + 1
    assert stream[first["token_position"]] == flat[first["unit_position"]]
    fails_with(man, "check anomalous_windows failed", shard_of("train", u), f"'{bad[u].key}'",
               f"token position {first['token_position']:,} ")  # fmt: skip


def test_several_failures_stay_one_line(tmp_path, corpus):
    train = replace(corpus["train"], 0, np.array([5, 999], np.uint16))
    train = replace(train, 1, np.zeros(0, np.uint16))
    fails_with(make(tmp_path, {**corpus, "train": train}), "check token_range failed",
               "'tr_00000'", "(+1 more failures: non_empty)")  # fmt: skip


def test_stale_checks_json_removed_on_failure(tmp_path, corpus):
    man = make(tmp_path, {**corpus, "train": replace(corpus["train"], 3, np.zeros(0, np.uint16))})
    (tmp_path / "checks.json").write_text('{"passed": true}')
    fails_with(man, "check non_empty failed")
