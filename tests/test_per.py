"""Greedy CTC decoding and phoneme error rate, on hand-made cases and against rapidfuzz."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rapidfuzz.distance import Levenshtein

from seqlab.data.neural import NeuralSplit
from seqlab.eval.per import baselines
from seqlab.scoring.per import corpus_per, edit_distance, greedy_decode, per_by_day


def one_hot_logits(frames: list[list[int]], classes: int = 41) -> torch.Tensor:
    """Logits whose argmax per frame is the given id; rows padded with blank."""
    T = max(len(f) for f in frames)
    out = torch.zeros(len(frames), T, classes)
    for b, f in enumerate(frames):
        for t in range(T):
            out[b, t, f[t] if t < len(f) else 0] = 5.0
    return out


def test_greedy_decode_collapses_repeats_and_drops_blanks() -> None:
    frames = [[0, 3, 3, 0, 3, 5, 5, 0], [7, 7, 7, 0, 0, 2, 2, 9]]
    hyps = greedy_decode(one_hot_logits(frames), torch.tensor([8, 6]))
    assert hyps[0] == [3, 3, 5]  # a blank between equal labels keeps both
    assert hyps[1] == [7, 2]  # frames past the length (2, 9) are ignored
    assert greedy_decode(one_hot_logits([[0, 0, 0]]), torch.tensor([3])) == [[]]


def test_edit_distance_hand_cases() -> None:
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1  # deletion
    assert edit_distance([1, 2, 3], [1, 2, 4, 3]) == 1  # insertion
    assert edit_distance([1, 2, 3], [3, 2, 1]) == 2  # two substitutions
    assert edit_distance([1, 2], []) == 2 and edit_distance([], [4, 5, 6]) == 3
    assert edit_distance([10, 20, 30], [10, 21, 30]) == 1  # ids, not characters


def test_edit_distance_matches_rapidfuzz_on_random_sequences() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.integers(1, 41, rng.integers(0, 30)).tolist()
        b = rng.integers(1, 41, rng.integers(0, 30)).tolist()
        assert edit_distance(a, b) == Levenshtein.distance(a, b)
        assert edit_distance(a, b) == _dp(a, b)  # and a plain dynamic programme agrees


def _dp(a: list[int], b: list[int]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_corpus_per_is_total_edits_over_total_length() -> None:
    refs = [[1, 2, 3, 4], [5, 6]]
    hyps = [[1, 2, 3, 4], [7]]  # 0 edits / 4, 2 edits / 2
    res = corpus_per(refs, hyps)
    assert res == {"per": 2 / 6, "n_edits": 2, "n_ref": 6}
    assert res["per"] != pytest.approx((0 / 4 + 2 / 2) / 2)  # not a mean of per-trial rates
    assert corpus_per([[1, 2]], [[]])["per"] == 1.0
    assert corpus_per([[1]], [[2, 3, 4]])["per"] == 3.0  # insertions can push PER above 1
    assert math.isnan(corpus_per([], [])["per"])


def test_per_by_day() -> None:
    refs, hyps = [[1, 2], [3, 4, 5], [6]], [[1, 2], [3], [7]]
    assert per_by_day(refs, hyps, [0, 2, 2]) == {"day00": 0.0, "day02": 3 / 4}


def test_baselines() -> None:
    train = NeuralSplit.from_trials(
        [
            (np.zeros((9, 2)), np.array([40, 3, 40]), 0, ""),
            (np.zeros((9, 2)), np.array([40, 40, 40]), 0, ""),
        ]
    )
    evals = NeuralSplit.from_trials([(np.zeros((9, 2)), np.array([5, 40, 6]), 0, "")])
    base = baselines(train, evals)
    assert base["blank_per"] == 1.0
    assert base["majority_phoneme"] == "SIL"
    assert base["majority_per"] == pytest.approx(2 / 3)  # SIL SIL SIL vs 5 SIL 6
