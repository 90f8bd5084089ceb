"""Phoneme error rate of a trained CTC decoder on a split of its dataset: per.json.

The decoding and the corpus PER are the ones training used to pick the checkpoint
(`GRUCTC`'s `decode_split`, `seqlab.scoring.per`), so the two never disagree.

per.json (one per trial, from its model.pt = the best checkpoint by actual PER):

    per, n_edits, n_ref, n_trials, split, eval_loss (mean CTC loss), model_step
    per_day: {"day00": per, ...}
    baseline: {blank_per (always 1.0), majority_per, majority_phoneme}
        majority: every trial decoded as the most frequent training phoneme repeated the
        median training length times (label statistics without the features)
    curve: [{step, per, eval_loss}]   (from log.jsonl: the PER at every evaluation)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlab.data.neural import N_CLASSES, NeuralSplit, load_split
from seqlab.data.phonemes import PHONEMES
from seqlab.files import read_jsonl, write_json
from seqlab.models.gru_ctc import decode_split
from seqlab.scoring.per import corpus_per
from seqlab.train.load import load_model
from seqlab.train.logbook import add_scalars


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
    return [
        {"step": e["step"], "per": e["per"], "eval_loss": e.get("eval_loss")}
        for e in read_jsonl(log_path)
        if e.get("kind") == "eval" and "per" in e
    ]


def write_per(model_path: str | Path, out: str | Path, split: str = "test") -> dict[str, Any]:
    """Decode a trial's model.pt on `split` of its dataset and write per.json."""
    torch.set_num_threads(1)
    model_path = Path(model_path)
    model, ck = load_model(model_path)
    manifest = ck["trial"]["data"]["manifest"]
    sp, _ = load_split(manifest, split)
    res = decode_split(model, sp, torch.device("cpu"))
    train, _ = load_split(manifest, "train")
    per = {
        **res,
        "split": split,
        "model_step": ck.get("step"),
        "baseline": baselines(train, sp),
        "curve": per_curve(model_path.parent / "log.jsonl"),
    }
    write_json(out, per)
    add_scalars(model_path.parent, int(ck.get("step") or 0), {f"{split}/per": float(res["per"])})
    return per
