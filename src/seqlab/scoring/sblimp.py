"""The sBLIMP syntactic scores, as zerospeech2021/syntactic.py computes them.

A pair is the correct and the incorrect sentence of one (type, subtype, id) and voice; it
scores 1 when the correct one's score is higher, 0.5 on a tie, 0 otherwise; pair scores are
averaged over voices per (type, subtype, id), and `syntactic_all` is the mean over those ids
(the toolkit's by-pair table's mean, which its leaderboard reports). The by-type table is the
count, mean and std (ddof=1) of the id scores per type. (The toolkit pairs the k-th correct row
of gold.csv with the k-th incorrect one; the official gold lists each pair's rows together, so
that is the same pairing, and a set's checks refuse a gold.csv whose order would pair
otherwise.) A set's controls are scored by these rules when it is built, models when they are
evaluated.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import pandas as pd

from seqlab.errors import SeqlabError
from seqlab.scoring.swuggy import check_names, stats_by_key

#: what identifies an item (its pairs are one per voice)
ITEM_KEY = ["type", "subtype", "id"]


def syntactic_pair_scores(gold: pd.DataFrame, scores: Mapping[str, float]) -> pd.DataFrame:
    """One row per (type, subtype, id): sentence, non sentence, n_voices, mean pair score."""
    check_names(gold, scores)
    data = gold.assign(score=gold["filename"].map(scores).astype(float))
    pairs = data[data["correct"] == 1].merge(
        data[data["correct"] == 0], on=[*ITEM_KEY, "voice"], suffixes=("_s", "_ns")
    )
    s, ns = pairs["score_s"].to_numpy(), pairs["score_ns"].to_numpy()
    pairs["score"] = 0.5 * (s == ns) + (s > ns)
    grouped = pairs.groupby(ITEM_KEY, sort=True)
    return pd.DataFrame(
        {
            "sentence": grouped["transcription_s"].first(),
            "non sentence": grouped["transcription_ns"].first(),
            "n_voices": grouped["score"].size(),
            "score": grouped["score"].mean(),
        }
    ).reset_index()


def syntactic_scores(
    gold: pd.DataFrame, scores: Mapping[str, float], voices: Collection[str] | None = None
) -> dict[str, Any]:
    """The official syntactic scores over the pairs of `voices` (None: every voice)."""
    if voices is not None:
        gold = gold[gold["voice"].isin(list(voices))]
        scores = {f: scores[f] for f in gold["filename"] if f in scores}
    if gold.empty:
        raise SeqlabError("sBLIMP: no gold items for the chosen voices")
    pairs = syntactic_pair_scores(gold, scores)
    return {
        "syntactic_all": float(pairs["score"].mean()) if len(pairs) else None,
        "by_type": stats_by_key(pairs["score"], pairs["type"]),
        "n_ids": int(len(pairs)),
        "n_pairs": int(pairs["n_voices"].sum()),
        "n_unpaired": int(len(gold) - 2 * pairs["n_voices"].sum()),
    }


def syntactic_scores_seen_heldout(
    gold: pd.DataFrame, scores: Mapping[str, float], heldout: Collection[str] = ()
) -> dict[str, Any]:
    """syntactic_scores() on every voice, plus `seen` and `heldout` blocks when voices are
    held out."""
    res = syntactic_scores(gold, scores)
    held = set(heldout) & set(gold["voice"])
    if held:
        seen = set(gold["voice"]) - held
        for name, vs in (("seen", seen), ("heldout", held)):
            if vs:
                sub = syntactic_scores(gold, scores, vs)
                res[name] = {k: sub[k] for k in ("syntactic_all", "n_pairs")}
    return res
