"""text_lm trials are a function of (seed, step): a stopped-then-resumed trial ends bitwise
where an uninterrupted one does, because batches are drawn from (seed, micro-batch index)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import curves
from test_precision import lm_trial, quiet

from seqlab.data.prepare import prepare_dataset
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.loop import Preempted, train


def test_stop_then_resume_is_bitwise(tmp_path: Path) -> None:
    params = {"kind": "synthetic_text_bins", "seed": 4, "lexicon_size": 200,
              "n_train_sentences": 200, "n_val_sentences": 20}  # fmt: skip
    prepare_dataset("t", params, tmp_path / "d")
    trial = lm_trial(tmp_path / "d" / "manifest.json", "base")
    train(trial, tmp_path / "a", echo=quiet)
    calls = {"n": 0}

    def stop_once() -> bool:
        calls["n"] += 1
        return calls["n"] == 2  # after step 2

    with pytest.raises(Preempted):
        train(trial, tmp_path / "b", should_stop=stop_once, echo=quiet)
    train(trial, tmp_path / "b", echo=quiet)
    assert curves(tmp_path / "a") == curves(tmp_path / "b")
    sa = load_checkpoint(tmp_path / "a" / "model.pt")["model"]
    sb = load_checkpoint(tmp_path / "b" / "model.pt")["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
