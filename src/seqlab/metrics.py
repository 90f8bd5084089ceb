"""Scores computed by more than one stage, so they live below all of them.

PER (phoneme error rate): training keeps the checkpoint with the lowest PER and evaluation
reports it. Greedy CTC decoding: argmax per output frame, collapse repeats, drop the blank (0).
PER is corpus level, as neural_seq_decoder computes it: total edit distance / total reference
length over the split (not a mean of per-trial rates), also per recording day. Edit distances
come from rapidfuzz's Levenshtein, which works on any sequences of hashables.

sWUGGY (ZeroSpeech 2021 lexical): a set ships controls scored by these rules when it is built
(data), and evaluation scores models by them. The rules follow the ZR2021 / zrc lexical
evaluation exactly, so numbers compare with published ones: words and nonwords are paired on
(id, voice) (an inner join, as the official scorer does); a pair scores 1 when the word's score
is higher, 0.5 on a tie, 0 otherwise; pair scores are averaged over voices per id and
`lexical_all` is the mean over ids. Frequency bands cut the word's frequency (its count in the
training text) at [0, 1, 5, 20, 100, inf), right-open, labelled oov, 1-5, 6-20, 21-100, >100;
`lexical_invocab` is the count-weighted mean of the band scores without oov.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqlab.errors import SeqlabError

BAND_EDGES = (0.0, 1.0, 5.0, 20.0, 100.0, math.inf)
BAND_LABELS = ("oov", "1-5", "6-20", "21-100", ">100")


# -- PER -------------------------------------------------------------------------------------


def greedy_decode(logits: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """(B, T, classes) logits and (B,) valid frames -> label sequences without blanks."""
    best = logits.argmax(-1).cpu()
    out = []
    for row, n in zip(best, lengths.tolist(), strict=True):
        seq = torch.unique_consecutive(row[: int(n)])
        out.append([int(t) for t in seq if t != 0])
    return out


def edit_distance(ref: Sequence[int], hyp: Sequence[int]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    # imported here: the models import this module, and a training step (or the GPU
    # benchmark, on a machine with torch and numpy alone) never decodes
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(list(ref), list(hyp))


def corpus_per(refs: Sequence[Sequence[int]], hyps: Sequence[Sequence[int]]) -> dict[str, Any]:
    """{per, n_edits, n_ref}: total edits / total reference length (NaN on an empty corpus)."""
    edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    n_ref = sum(len(r) for r in refs)
    return {"per": edits / n_ref if n_ref else math.nan, "n_edits": edits, "n_ref": n_ref}


def per_by_day(
    refs: Sequence[Sequence[int]], hyps: Sequence[Sequence[int]], days: Sequence[int]
) -> dict[str, float]:
    """Corpus PER of each day's trials, keyed `day00`, `day01`..."""
    out = {}
    for d in sorted(set(int(x) for x in days)):
        pick = [i for i, x in enumerate(days) if int(x) == d]
        out[f"day{d:02d}"] = corpus_per([refs[i] for i in pick], [hyps[i] for i in pick])["per"]
    return out


# -- sWUGGY, the official rules --------------------------------------------------------------


def _agg(scores: pd.Series, keys: pd.Series) -> dict[str, dict[str, Any]]:
    """n / mean / std (ddof=1, None below 2) of `scores` per key, keys in their sorted order."""
    out = {}
    for key, s in scores.groupby(keys, observed=True, sort=True):
        n = int(s.count())
        out[str(key)] = {"n": n, "score": float(s.mean()), "std": float(s.std()) if n > 1 else None}
    return out


def by_pair(gold: pd.DataFrame, scores: Mapping[str, float]) -> pd.DataFrame:
    """One row per id: word, nonword, frequency, length, n_voices and the mean pair score."""
    names = set(gold["filename"])
    if names != set(scores):
        extra, lack = sorted(set(scores) - names), sorted(names - set(scores))
        what = f"{len(lack)} gold filenames have no score (e.g. {lack[0]!r})" if lack else ""
        what += "; " if lack and extra else ""
        what += f"{len(extra)} scores are not in gold (e.g. {extra[0]!r})" if extra else ""
        raise SeqlabError(f"mismatch between gold and submission: {what}")
    data = gold.assign(score=gold["filename"].map(scores).astype(float))
    w = data[data["correct"] == 1].add_prefix("w_")
    nw = data[data["correct"] == 0].add_prefix("nw_")
    pairs = w.merge(nw, left_on=["w_id", "w_voice"], right_on=["nw_id", "nw_voice"])
    sw, snw = pairs["w_score"].to_numpy(), pairs["nw_score"].to_numpy()
    pairs["score"] = 0.5 * (sw == snw) + (sw > snw)
    grouped = pairs.groupby("w_id", sort=True)
    return (
        pd.DataFrame(
            {
                "word": grouped["w_word"].first(),
                "non word": grouped["nw_word"].first(),
                "frequency": grouped["w_frequency"].first(),
                "length": grouped["w_length"].first(),
                "n_voices": grouped["score"].size(),
                "score": grouped["score"].mean(),
            }
        )
        .rename_axis("id")
        .reset_index()
    )


def evaluate(
    gold: pd.DataFrame, scores: Mapping[str, float], voices: Collection[str] | None = None
) -> dict[str, Any]:
    """The official lexical scores over the pairs of `voices` (None: every voice)."""
    if voices is not None:
        keep = gold["voice"].isin(list(voices))
        gold = gold[keep]
        scores = {f: scores[f] for f in gold["filename"] if f in scores}
    if gold.empty:
        raise SeqlabError("sWUGGY: no gold items for the chosen voices")
    pairs = by_pair(gold, scores)
    bands = pd.cut(
        pairs["frequency"].astype(float), list(BAND_EDGES), labels=list(BAND_LABELS), right=False
    )
    by_freq = _agg(pairs["score"], bands)
    inv = [b for k, b in by_freq.items() if k != "oov"]
    n_inv = sum(b["n"] for b in inv)
    return {
        "lexical_all": float(pairs["score"].mean()) if len(pairs) else None,
        "lexical_invocab": sum(b["score"] * b["n"] for b in inv) / n_inv if n_inv else None,
        "by_frequency": by_freq,
        "by_length": _agg(pairs["score"], pairs["length"]),
        "n_ids": int(len(pairs)),
        "n_pairs": int(pairs["n_voices"].sum()),
        "n_unpaired": int(len(gold) - 2 * pairs["n_voices"].sum()),
    }


def evaluate_split(
    gold: pd.DataFrame, scores: Mapping[str, float], heldout: Collection[str] = ()
) -> dict[str, Any]:
    """evaluate() on every voice, plus `seen` and `heldout` blocks when voices are held out."""
    res = evaluate(gold, scores)
    held = set(heldout) & set(gold["voice"])
    if held:
        seen = set(gold["voice"]) - held
        for name, vs in (("seen", seen), ("heldout", held)):
            if vs:
                sub = evaluate(gold, scores, vs)
                res[name] = {k: sub[k] for k in ("lexical_all", "lexical_invocab", "n_pairs")}
    return res


def unigram_scores(items: Sequence[np.ndarray], counts: np.ndarray) -> np.ndarray:
    """The unit-unigram control: sum of log p(unit) (add-one smoothed `counts`) per item."""
    logp = np.log((counts + 1.0) / (counts.sum() + len(counts)))
    return np.array([logp[np.asarray(u, np.int64)].sum() for u in items], np.float64)
