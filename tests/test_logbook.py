"""TensorBoard scalars beside log.jsonl, read back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_trial
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.train.logbook import add_scalars, read_log
from seqlab.train.loop import Preempted, train


def quiet(_line: str) -> None:
    pass


def events(trial_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(trial_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_match_the_log_across_a_resume(unit_manifest: Path, tmp_path: Path) -> None:
    trial = tiny_trial(unit_manifest)
    calls = {"n": 0}

    def stop_at_7() -> bool:
        calls["n"] += 1
        return calls["n"] >= 7

    with pytest.raises(Preempted):
        train(trial, tmp_path, should_stop=stop_at_7, echo=quiet)
    train(trial, tmp_path, echo=quiet)
    acc = events(tmp_path)
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s",
            "eval/eval_loss"} <= tags  # fmt: skip
    log = read_log(tmp_path)
    train_log = {e["step"]: e["loss"] for e in log if e["kind"] == "train"}
    tb = {s.step: s.value for s in acc.Scalars("train/loss")}
    assert sorted(tb) == sorted(train_log)  # the replayed steps once, none lost
    assert all(tb[k] == pytest.approx(v, rel=1e-6) for k, v in train_log.items())
    evals = [e["step"] for e in log if e["kind"] == "eval"]
    assert sorted({s.step for s in acc.Scalars("eval/eval_loss")}) == evals
    text = [t for t in acc.Tags()["tensors"] if t.startswith("events")]
    assert text, "guard and resume events are not in TensorBoard"


def test_evaluation_adds_scalars_later(unit_manifest: Path, tmp_path: Path) -> None:
    train(tiny_trial(unit_manifest, max_steps=4), tmp_path, echo=quiet)
    add_scalars(tmp_path, 4, {"eval/swuggy": 0.61, "eval/per": 0.3})
    acc = events(tmp_path)
    assert [s.value for s in acc.Scalars("eval/swuggy")] == [pytest.approx(0.61)]
    assert [s.step for s in acc.Scalars("eval/per")] == [4]


def test_a_discarded_trajectory_leaves_no_curves(unit_manifest: Path, tmp_path: Path) -> None:
    train(tiny_trial(unit_manifest, max_steps=4), tmp_path, echo=quiet)
    train(tiny_trial(unit_manifest, max_steps=4, optim={"name": "adam", "lr": 3e-3}), tmp_path,
          echo=quiet)  # fmt: skip
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    lr = [s.value for s in events(tmp_path).Scalars("train/lr")]
    assert lr and all(v == pytest.approx(3e-3 * 0.5) or v <= 3e-3 for v in lr)
