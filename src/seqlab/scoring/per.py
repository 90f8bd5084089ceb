"""PER (phoneme error rate) and greedy CTC decoding: the scores of the phoneme decoder.

Training keeps the checkpoint with the lowest PER and evaluation reports it, both with these
functions. Greedy CTC decoding: argmax per output frame, collapse repeats, drop the blank (0).
PER is corpus level, as neural_seq_decoder computes it: total edit distance / total reference
length over the split (not a mean of per-trial rates), also per recording day. Edit distances
come from rapidfuzz's Levenshtein, which works on any sequences of hashables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


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
