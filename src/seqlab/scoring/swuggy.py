"""The sWUGGY lexical scores, by the official ZeroSpeech 2021 rules.

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

from seqlab.errors import SeqlabError

BAND_EDGES = (0.0, 1.0, 5.0, 20.0, 100.0, math.inf)
BAND_LABELS = ("oov", "1-5", "6-20", "21-100", ">100")


def stats_by_key(scores: pd.Series, keys: pd.Series) -> dict[str, dict[str, Any]]:
    """n / mean / std (ddof=1, None below 2) of `scores` per key, keys in their sorted order."""
    out = {}
    for key, s in scores.groupby(keys, observed=True, sort=True):
        n = int(s.count())
        out[str(key)] = {"n": n, "score": float(s.mean()), "std": float(s.std()) if n > 1 else None}
    return out


def check_names(gold: pd.DataFrame, scores: Mapping[str, float]) -> None:
    """Scores for exactly the gold filenames, else one line naming what lacks or is extra."""
    names = set(gold["filename"])
    if names != set(scores):
        extra, lack = sorted(set(scores) - names), sorted(names - set(scores))
        what = f"{len(lack)} gold filenames have no score (e.g. {lack[0]!r})" if lack else ""
        what += "; " if lack and extra else ""
        what += f"{len(extra)} scores are not in gold (e.g. {extra[0]!r})" if extra else ""
        raise SeqlabError(f"mismatch between gold and submission: {what}")


def pair_scores(gold: pd.DataFrame, scores: Mapping[str, float]) -> pd.DataFrame:
    """One row per id: word, nonword, frequency, length, n_voices and the mean pair score."""
    check_names(gold, scores)
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


def lexical_scores(
    gold: pd.DataFrame, scores: Mapping[str, float], voices: Collection[str] | None = None
) -> dict[str, Any]:
    """The official lexical scores over the pairs of `voices` (None: every voice)."""
    if voices is not None:
        keep = gold["voice"].isin(list(voices))
        gold = gold[keep]
        scores = {f: scores[f] for f in gold["filename"] if f in scores}
    if gold.empty:
        raise SeqlabError("sWUGGY: no gold items for the chosen voices")
    pairs = pair_scores(gold, scores)
    bands = pd.cut(
        pairs["frequency"].astype(float), list(BAND_EDGES), labels=list(BAND_LABELS), right=False
    )
    by_freq = stats_by_key(pairs["score"], bands)
    inv = [b for k, b in by_freq.items() if k != "oov"]
    n_inv = sum(b["n"] for b in inv)
    return {
        "lexical_all": float(pairs["score"].mean()) if len(pairs) else None,
        "lexical_invocab": sum(b["score"] * b["n"] for b in inv) / n_inv if n_inv else None,
        "by_frequency": by_freq,
        "by_length": stats_by_key(pairs["score"], pairs["length"]),
        "n_ids": int(len(pairs)),
        "n_pairs": int(pairs["n_voices"].sum()),
        "n_unpaired": int(len(gold) - 2 * pairs["n_voices"].sum()),
    }


def lexical_scores_seen_heldout(
    gold: pd.DataFrame, scores: Mapping[str, float], heldout: Collection[str] = ()
) -> dict[str, Any]:
    """The scores over every voice, plus `seen` and `heldout` blocks when voices are held out."""
    res = lexical_scores(gold, scores)
    held = set(heldout) & set(gold["voice"])
    if held:
        seen = set(gold["voice"]) - held
        for name, vs in (("seen", seen), ("heldout", held)):
            if vs:
                sub = lexical_scores(gold, scores, vs)
                res[name] = {k: sub[k] for k in ("lexical_all", "lexical_invocab", "n_pairs")}
    return res


def unigram_scores(items: Sequence[np.ndarray], counts: np.ndarray) -> np.ndarray:
    """The unit-unigram control: sum of log p(unit) (add-one smoothed `counts`) per item."""
    logp = np.log((counts + 1.0) / (counts.sum() + len(counts)))
    return np.array([logp[np.asarray(u, np.int64)].sum() for u in items], np.float64)
