"""Neural data: the baseline's pickle layout (trusted only), the safe .npz layout, the synthetic
generator and the checks."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from seqlab.data.checks import run_checks
from seqlab.data.neural import (
    NeuralSplit,
    build_neural_npz,
    build_neural_pickle,
    ctc_min_frames,
    load_split,
    read_pickle,
)
from seqlab.data.prepare import prepare_dataset
from seqlab.errors import SeqlabError

TINY_SYNTH = {
    "seed": 1,
    "lexicon_size": 200,
    "mean_words": 2.0,
    "n_days": 2,
    "n_train_per_day": 12,
    "n_test_per_day": 4,
    "n_competition_days": 1,
    "n_competition_per_day": 3,
    "n_features": 32,
    "block_size": 4,
}


def baseline_pickle(path: Path, n_days: int = 2, per_day: int = 3, C: int = 16) -> dict:
    """A small file in neural_seq_decoder's layout: per split a list of day dicts."""
    rng = np.random.default_rng(0)

    def day(n: int) -> dict:
        lens = rng.integers(3, 9, n)
        phon = np.zeros((n, 500), np.int32)
        for i, L in enumerate(lens):
            phon[i, :L] = rng.integers(1, 41, L)
        return {
            "sentenceDat": [
                rng.standard_normal((int(40 + 6 * L), C)).astype(np.float32) for L in lens
            ],
            "phonemes": phon,
            "phoneLens": lens.astype(np.int32),
            "transcriptions": [f"sentence {i}" for i in range(n)],
        }

    data = {s: [day(per_day) for _ in range(n_days)] for s in ("train", "test")}
    data["competition"] = [day(2)]
    path.write_bytes(pickle.dumps(data))
    return data


def test_pickle_round_trip(tmp_path: Path) -> None:
    data = baseline_pickle(tmp_path / "ptDecoder_ctc")
    out = tmp_path / "ds"
    out.mkdir()
    man = build_neural_pickle(
        "real",
        {"path": str(tmp_path / "ptDecoder_ctc"), "trusted": True, "competition_days": [1]},
        out,
    )
    assert man["n_days"] == 2 and man["n_features"] == 16 and man["n_classes"] == 41
    assert set(man["splits"]) == {"train", "test", "competition"}
    for split in ("train", "test"):
        sp, _ = load_split(out / "manifest.json", split)
        k = 0
        for d, day in enumerate(data[split]):
            for i, x in enumerate(day["sentenceDat"]):
                feats, labels = sp.trial(k)
                np.testing.assert_array_equal(feats, x)
                L = day["phoneLens"][i]
                np.testing.assert_array_equal(labels, day["phonemes"][i][:L])
                assert sp.days[k] == d and sp.transcriptions[k] == day["transcriptions"][i]
                k += 1
        assert k == len(sp)
    comp, _ = load_split(out / "manifest.json", "competition")
    assert comp.days.tolist() == [1, 1]
    # the npz layout re-ingests to the same arrays (kind neural_npz)
    again = tmp_path / "again"
    again.mkdir()
    build_neural_npz("copy", {"path": str(out)}, again)
    a, b = (
        load_split(out / "manifest.json", "train")[0],
        load_split(again / "manifest.json", "train")[0],
    )
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.phonemes, b.phonemes)


@pytest.mark.parametrize("trusted", [None, False])
def test_untrusted_pickle_is_refused(tmp_path: Path, trusted: object) -> None:
    path = tmp_path / "evil.pkl"
    marker = tmp_path / "ran"
    # unpickling this would create `marker`: the reader must never get that far
    path.write_bytes(pickle.dumps(_Touch(str(marker))))
    params = {"kind": "neural_pickle", "path": str(path)}
    if trusted is not None:
        params["trusted"] = trusted
    with pytest.raises(SeqlabError) as e:
        prepare_dataset("willett", params, tmp_path / "out")
    msg = str(e.value)
    assert "refusing to unpickle" in msg and "trusted: true" in msg and "neural_npz" in msg
    assert "dataset 'willett'" in msg
    assert not marker.exists()
    assert read_pickle(path, trusted=True) is None and marker.exists()  # trusted: it runs


def test_a_damaged_trusted_pickle_is_one_line(tmp_path: Path) -> None:
    baseline_pickle(tmp_path / "ptDecoder_ctc")
    raw = (tmp_path / "ptDecoder_ctc").read_bytes()
    (tmp_path / "ptDecoder_ctc").write_bytes(raw[: len(raw) // 2])  # an interrupted copy
    params = {"kind": "neural_pickle", "path": str(tmp_path / "ptDecoder_ctc"), "trusted": True}
    with pytest.raises(SeqlabError, match=r"dataset 'w'.*ptDecoder_ctc: unreadable pickle") as e:
        prepare_dataset("w", params, tmp_path / "out")
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # a pickle that runs code on load
        return (Path(self.path).touch, ())


def test_synthetic_neural_dataset_and_checks(tmp_path: Path) -> None:
    man = prepare_dataset("syn", {"kind": "neural_synthetic", **TINY_SYNTH}, tmp_path / "syn")
    assert man["splits"]["train"]["n_trials"] == 24 and man["n_days"] == 2
    train, _ = load_split(tmp_path / "syn" / "manifest.json", "train")
    test, _ = load_split(tmp_path / "syn" / "manifest.json", "test")
    assert train.features.shape[1] == 32 and train.features.dtype == np.float32
    assert set(train.days.tolist()) == {0, 1}
    assert train.phonemes.min() >= 1 and train.phonemes.max() <= 40
    last = [train.trial(i)[1][-1] for i in range(len(train))]
    assert set(last) == {40}  # every sentence ends with SIL (id 40)
    assert not set(train.transcriptions) & set(test.transcriptions)  # held-out sentences
    assert abs(float(train.features.mean())) < 0.05  # z-scored per block
    again = prepare_dataset("syn", {"kind": "neural_synthetic", **TINY_SYNTH}, tmp_path / "b")
    assert again["splits"] == man["splits"]  # deterministic from the seed
    res = run_checks(tmp_path / "syn" / "manifest.json", {"kernel_len": 8, "stride_len": 4})
    assert res["passed"], res["failures"]
    assert 0 < res["unigram_entropy_nats"] < np.log(40)


def test_checks_name_the_broken_rule(tmp_path: Path) -> None:
    prepare_dataset("syn", {"kind": "neural_synthetic", **TINY_SYNTH}, tmp_path)
    man = tmp_path / "manifest.json"
    sp, _ = load_split(man, "test")
    sp.phonemes[0] = 41  # a label out of range in trial 0
    sp.save(tmp_path / "test.npz")
    res = run_checks(man, {"kernel_len": 8, "stride_len": 4})
    assert not res["passed"]
    assert any(
        f.startswith("check label_range failed:") and "test.npz" in f for f in res["failures"]
    )
    # a stride too long for the labels fails ctc_feasible
    res = run_checks(man, {"kernel_len": 8, "stride_len": 40})
    assert any(f.startswith("check ctc_feasible failed:") for f in res["failures"])


def test_ctc_min_frames_counts_repeats() -> None:
    sp = NeuralSplit.from_trials(
        [
            (np.zeros((50, 4)), np.array([3, 3, 5]), 0, "a"),
            (np.zeros((50, 4)), np.array([5, 7, 7, 7]), 0, "b"),
        ]
    )
    assert ctc_min_frames(sp).tolist() == [4, 6]  # the 5|5 across trials is not a repeat


def test_features_store_is_memory_mapped(tmp_path) -> None:
    """Features live in {split}.features.npy, mapped read-only; the small arrays in the .npz."""
    import numpy as np

    from seqlab.data.neural import NeuralSplit, features_path

    rng = np.random.default_rng(0)
    trials = [(rng.normal(size=(40 + i, 8)).astype(np.float32), np.arange(1, 4 + i), i % 2, "x")
              for i in range(5)]  # fmt: skip
    sp = NeuralSplit.from_trials(trials)
    sp.save(tmp_path / "train.npz")
    with np.load(tmp_path / "train.npz") as z:
        assert "features" not in z and "frame_lens" in z
    back = NeuralSplit.load(tmp_path / "train.npz")
    assert isinstance(back.features, np.memmap) and not back.features.flags.writeable
    assert features_path(tmp_path / "train.npz").name == "train.features.npy"
    x, y = back.trial(3)
    assert np.array_equal(x, trials[3][0]) and np.array_equal(y, trials[3][1])
