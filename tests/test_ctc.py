"""Task ctc on the shared loop: the guard after non-finite gradients, the best checkpoint by
actual PER, bitwise resume, and augmentation that is reproducible and train-mode only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.config import Augment, TrainConfig, from_dict
from seqlab.data.prepare import prepare_dataset
from seqlab.eval.per import write_per
from seqlab.models import build_model
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.ctc import CTCTask, augment
from seqlab.train.loop import Preempted, train
from seqlab.train.tasks import TASKS

TINY_SYNTH = {
    "kind": "neural_synthetic",
    "seed": 2,
    "lexicon_size": 200,
    "mean_words": 2.0,
    "n_days": 2,
    "n_train_per_day": 16,
    "n_test_per_day": 6,
    "n_competition_days": 0,
    "n_features": 32,
    "block_size": 4,
    "snr": 1.5,
}


@pytest.fixture(scope="module")
def neural_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("neural")
    prepare_dataset("tiny_neural", TINY_SYNTH, out)
    return out / "manifest.json"


def ctc_trial(manifest: Path, task: str = "ctc", **train: Any) -> dict[str, Any]:
    cfg = {
        "model": {
            "arch": "gru_ctc",
            "hidden": 24,
            "n_layer": 1,
            "bidirectional": True,
            "dropout": 0.0,
            "input_dropout": 0.1,
            "kernel_len": 8,
            "stride_len": 4,
        },
        "optim": {"name": "adam", "lr": 0.02, "eps": 0.1, "weight_decay": 1e-5},
        "schedule": {"name": "constant"},
        "augment": {
            "white_noise": 0.2,
            "constant_offset": 0.1,
            "time_mask_width": 4,
            "time_mask_max": 1,
        },
        "max_steps": 16,
        "batch_size": 8,
        "eval_interval": 4,
        "ckpt_interval": 4,
        "log_interval": 2,
        "milestones": [8],
        "device": "cpu",
    }
    cfg.update(train)
    return {
        "experiment": "t",
        "run": "base",
        "seed": 0,
        "task": task,
        "data": {"dataset": "tiny_neural", "manifest": str(manifest)},
        "train": cfg,
    }


def events(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]


class NaNGradTask(CTCTask):
    """CTCTask whose gradients turn NaN on the batches in INJECT (the loss itself stays finite),
    as a fp16 overflow or a bad batch would do."""

    INJECT = {5, 6}

    def train_batch(self, index: int) -> dict[str, Any]:
        return {**super().train_batch(index), "index": index}

    def loss(self, model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        loss = super().loss(model, batch)
        if batch["index"] in self.INJECT:
            loss.register_hook(lambda g: g * float("nan"))
        return loss


def test_guard_skips_nonfinite_updates_and_cuts_lr(
    neural_manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TASKS, "ctc_nan", f"{__name__}:NaNGradTask")
    guard = {"enabled": True, "max_skips": 2, "lr_cut": 0.5, "lr_floor": 1e-4, "max_cuts": 5}
    m = train(
        ctc_trial(neural_manifest, "ctc_nan", max_steps=10, guard=guard),
        tmp_path,
        echo=lambda s: None,
    )
    log = events(tmp_path)
    skips = [e for e in log if e.get("event") == "skip_update"]
    cuts = [e for e in log if e.get("event") == "lr_cut"]
    assert [e["step"] for e in skips] == [6, 7]  # batches 5, 6 are optimizer steps 6, 7
    assert len(cuts) == 1 and cuts[0]["step"] == 7 and cuts[0]["lr_scale"] == 0.5
    assert m["n_skipped"] == 2 and m["n_lr_cuts"] == 1 and m["stop_reason"] == "max_steps"
    lrs = {e["step"]: e["lr"] for e in log if e["kind"] == "train"}
    assert lrs[6] == pytest.approx(0.02) and lrs[8] == pytest.approx(0.01)
    state = load_checkpoint(tmp_path / "model.pt")["model"]
    assert all(torch.isfinite(v).all() for v in state.values())  # no NaN reached the weights


def test_guard_cuts_lr_on_grad_norm_threshold(neural_manifest: Path, tmp_path: Path) -> None:
    guard = {
        "enabled": True,
        "gnorm_threshold": 1e-6,
        "lr_cut": 0.8,
        "lr_floor": 0.012,
        "max_cuts": 5,
    }
    m = train(ctc_trial(neural_manifest, max_steps=6), tmp_path, echo=lambda s: None)
    assert m["n_lr_cuts"] == 0
    m = train(
        ctc_trial(neural_manifest, max_steps=6, guard=guard), tmp_path / "g", echo=lambda s: None
    )
    # 0.02 -> 0.016 -> 0.0128 -> (0.01024 is below the floor: the third cut is the last)
    assert m["n_lr_cuts"] == 3
    lrs = [e["lr"] for e in events(tmp_path / "g") if e["kind"] == "train"]
    assert lrs[-1] == pytest.approx(0.012)


def test_best_checkpoint_is_the_lowest_actual_per(neural_manifest: Path, tmp_path: Path) -> None:
    m = train(
        ctc_trial(neural_manifest, max_steps=24, eval_interval=3), tmp_path, echo=lambda s: None
    )
    evals = [e for e in events(tmp_path) if e["kind"] == "eval"]
    pers = [e["per"] for e in evals]
    assert m["select_metric"] == "per" and len(evals) >= 8
    assert m["best"] == min(pers) and m["best_step"] == evals[int(np.argmin(pers))]["step"]
    assert m["best"] < 1.0  # it learned something in 24 steps
    ck = load_checkpoint(tmp_path / "model.pt")
    assert ck["step"] == m["best_step"]
    per = write_per(tmp_path / "model.pt", tmp_path / "per.json")
    assert per["per"] == pytest.approx(m["best"], abs=1e-12)  # model.pt re-decodes to it
    assert per["model_step"] == m["best_step"] and len(per["curve"]) == len(evals)
    assert set(per["per_day"]) == {"day00", "day01"}
    assert per["baseline"]["blank_per"] == 1.0 and per["per"] < per["baseline"]["majority_per"]
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    acc.Reload()  # the scored PER sits beside the training curves in TensorBoard
    (tb,) = acc.Scalars("test/per")
    assert tb.step == m["best_step"] and tb.value == pytest.approx(per["per"], rel=1e-6)


def test_resume_is_bitwise(neural_manifest: Path, tmp_path: Path) -> None:
    trial = ctc_trial(neural_manifest, max_steps=12)
    train(trial, tmp_path / "a", echo=lambda s: None)
    calls = {"n": 0}

    def stop_at_5() -> bool:
        calls["n"] += 1
        return calls["n"] == 5

    with pytest.raises(Preempted):
        train(trial, tmp_path / "b", should_stop=stop_at_5, echo=lambda s: None)
    train(trial, tmp_path / "b", echo=lambda s: None)
    a = load_checkpoint(tmp_path / "a" / "model.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "model.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_augmentation_is_seeded_and_train_mode_only(neural_manifest: Path) -> None:
    trial = ctc_trial(neural_manifest)
    cfg = from_dict(TrainConfig, trial["train"])
    task = CTCTask(trial["data"], cfg, 0, torch.device("cpu"))
    b1, b2 = task.train_batch(3), task.train_batch(3)
    assert torch.equal(b1["x"], b2["x"]) and b1["aug_seed"] == b2["aug_seed"]
    assert not torch.equal(b1["x"], task.train_batch(4)["x"])
    torch.manual_seed(0)
    model = build_model(replace(cfg.model, **task.model_sizes), task.vocab_size)
    model.eval()  # eval mode: no augmentation, so the loss is deterministic and clean
    clean = task.loss(model, b1)
    assert torch.equal(clean, task.loss(model, b2))
    model.train()
    model.input_drop.p = 0.0  # only augmentation differs now
    torch.manual_seed(1)
    aug1 = task.loss(model, b1)
    torch.manual_seed(2)
    assert torch.equal(aug1, task.loss(model, b2))  # same batch index: same noise
    assert not torch.isclose(aug1, clean)
    x = torch.zeros(4, 50, 8)
    y = augment(x, torch.full((4,), 50), Augment(white_noise=1.0), 7)
    assert 0.8 < float(y.std()) < 1.2 and torch.equal(
        y, augment(x, torch.full((4,), 50), Augment(white_noise=1.0), 7)
    )
    n_masked = 0
    for seed in range(5):
        masked = augment(
            torch.ones(2, 50, 3),
            torch.full((2,), 50),
            Augment(time_mask_width=10, time_mask_max=2),
            seed,
        )
        zero = masked == 0
        assert torch.equal(zero.any(-1), zero.all(-1))  # whole frames are masked
        assert (zero.all(-1).sum(1) <= 20).all()  # at most 2 masks of width <= 10
        n_masked += int(zero.all(-1).sum())
    assert n_masked > 0


def test_model_day_sizes_come_from_the_data(neural_manifest: Path) -> None:
    trial = ctc_trial(neural_manifest)
    trial["train"]["model"]["n_days"] = 1
    with pytest.raises(Exception, match="n_days: 1, but the data has 2"):
        CTCTask(trial["data"], from_dict(TrainConfig, trial["train"]), 0, torch.device("cpu"))
