"""Phoneme error rate of a CTC decoder, as neural_seq_decoder computes it.

Greedy decoding: argmax per output frame, collapse repeats, drop the blank (0). PER is corpus
level: total edit distance / total reference length over the split (not a mean of per-trial
rates), also per recording day. Edit distances come from rapidfuzz's Levenshtein, which works
on any sequences of hashables, here lists of phoneme ids.

per.json (one per trial, from its model.pt = the best checkpoint by actual PER):

    per, n_edits, n_ref, n_trials, split, eval_loss (mean CTC loss), model_step
    per_day: {"day00": per, ...}
    baseline: {blank_per (always 1.0), majority_per, majority_phoneme}
        majority: every trial decoded as the most frequent training phoneme repeated the
        median training length times (label statistics without the features)
    curve: [{step, per, eval_loss}]   (from log.jsonl: the PER at every evaluation)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rapidfuzz.distance import Levenshtein

from seqlab.data.neural import N_CLASSES, NeuralSplit, load_split, pad_batch
from seqlab.data.world import PHONEMES
from seqlab.io import write_json


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


def ctc_loss(
    logits: torch.Tensor, y: torch.Tensor, out_lens: torch.Tensor, phone_lens: torch.Tensor
) -> torch.Tensor:
    """The baseline's CTC loss (blank 0, mean over trials of loss / target length,
    zero_infinity), computed in float32 whatever the precision."""
    logp = logits.float().log_softmax(-1).transpose(0, 1)  # (T', B, classes)
    return F.ctc_loss(logp, y, out_lens, phone_lens, blank=0, reduction="mean", zero_infinity=True)


def to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}


def forward(model: torch.nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """(logits, output lengths, CTC loss) of a padded batch."""
    logits = model(b["x"], b["days"], b["frame_lens"])
    out_lens = model.out_lengths(b["frame_lens"])
    return logits, out_lens, ctc_loss(logits, b["y"], out_lens, b["phone_lens"])


@torch.no_grad()
def decode_split(
    model: torch.nn.Module, sp: NeuralSplit, device: torch.device, batch_size: int = 32
) -> dict[str, Any]:
    """Decode every trial of a split (model in eval mode): PER, per-day PER, mean CTC loss."""
    refs, hyps, loss_sum = [], [], 0.0
    for s in range(0, len(sp), batch_size):
        idx = np.arange(s, min(s + batch_size, len(sp)))
        b = to_device(pad_batch(sp, idx), device)
        logits, out_lens, loss = forward(model, b)
        loss_sum += loss.item() * len(idx)
        hyps += greedy_decode(logits, out_lens)
        refs += [sp.trial(int(i))[1].tolist() for i in idx]
    res = corpus_per(refs, hyps)
    return {
        **res,
        "eval_loss": loss_sum / max(len(sp), 1),
        "n_trials": len(sp),
        "per_day": per_by_day(refs, hyps, sp.days.tolist()),
    }


def baselines(train: NeuralSplit, evals: NeuralSplit) -> dict[str, Any]:
    """PER of decoders that ignore the features: all blank, and the majority phoneme."""
    counts = np.bincount(train.phonemes, minlength=N_CLASSES)
    top = int(counts.argmax())
    guess = [top] * int(np.median(train.phone_lens))
    refs = [evals.trial(i)[1].tolist() for i in range(len(evals))]
    return {
        "blank_per": corpus_per(refs, [[] for _ in refs])["per"],
        "majority_per": corpus_per(refs, [guess] * len(refs))["per"],
        "majority_phoneme": (["BLANK", *PHONEMES])[top],
    }


def per_curve(log_path: Path) -> list[dict[str, float]]:
    """The PER at every evaluation of the training log (an unreadable last line is skipped)."""
    out = []
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            if e.get("kind") == "eval" and "per" in e:
                out.append({"step": e["step"], "per": e["per"], "eval_loss": e.get("eval_loss")})
    return out


def write_per(model_path: str | Path, out: str | Path, split: str = "test") -> dict[str, Any]:
    """Decode a trial's model.pt on `split` of its dataset and write per.json."""
    from seqlab.models import build_model
    from seqlab.train.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    model_path = Path(model_path)
    ck = load_checkpoint(model_path)
    manifest = ck["trial"]["data"]["manifest"]
    sp, _ = load_split(manifest, split)
    model = build_model(ck["model_config"], ck["vocab_size"])
    model.load_state_dict(ck["model"])
    res = decode_split(model.eval(), sp, torch.device("cpu"))
    train, _ = load_split(manifest, "train")
    per = {
        **res,
        "split": split,
        "model_step": ck.get("step"),
        "baseline": baselines(train, sp),
        "curve": per_curve(model_path.parent / "log.jsonl"),
    }
    write_json(out, per)
    return per
