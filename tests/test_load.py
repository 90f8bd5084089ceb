"""load_latest_model finds trained trials and gives back the exact weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import tiny_trial

from seqlab.errors import SeqlabError
from seqlab.files import write_json
from seqlab.models import build_model
from seqlab.train.checkpoint import load_checkpoint, save_checkpoint
from seqlab.train.load import load_latest_model, load_model, pick_device
from seqlab.train.loop import train


def test_load_latest_and_by_seed(unit_manifest: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    dirs = {}
    for seed in (0, 1):
        trial = tiny_trial(unit_manifest, max_steps=4, keep_steps=[2])
        trial["seed"] = seed
        d = results / "t" / "runs" / "base" / f"seed{seed}"
        write_json(d / "config.json", trial)
        train(trial, d, echo=lambda _: None)
        dirs[seed] = d
    os.utime(dirs[0] / "model.pt", ns=(1, 1))  # seed 1 is now the newest

    model, config, path = load_latest_model("t", results=results)
    assert path == dirs[1] / "model.pt" and config["seed"] == 1
    want = load_checkpoint(dirs[1] / "model.pt")["model"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, want[k])
    assert not model.training

    _, config0, path0 = load_latest_model("t", seed=0, results=results)
    assert config0["seed"] == 0 and path0 == dirs[0] / "model.pt"
    _, _, last = load_latest_model("t", seed=0, checkpoint="last", results=results)
    assert last == dirs[0] / "ckpt" / "last.pt"

    with pytest.raises(SeqlabError, match="no model.pt"):
        load_latest_model("t", run="nope", results=results)

    # the hand-run scripts' load_latest_model(checkpoint="checkpoint-5000"): a kept step
    step2, _, p2 = load_latest_model("t", seed=0, checkpoint=2, results=results)
    assert p2 == dirs[0] / "ckpt" / "step2.pt"
    kept = load_checkpoint(p2)["model"]
    assert all(torch.equal(v, kept[k]) for k, v in step2.state_dict().items())
    final0 = load_checkpoint(dirs[0] / "model.pt")["model"]  # step 4's: other weights
    assert any(not torch.equal(v, final0[k]) for k, v in step2.state_dict().items())
    with pytest.raises(SeqlabError, match=r"no ckpt/step3\.pt .* \(kept steps: \[2\];"):
        load_latest_model("t", checkpoint=3, results=results)


def test_load_model_refuses_a_skipped_trial_and_a_bare_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "skipped.pt", {"model": None, "skip_reason": "fp16 on CPU"})
    with pytest.raises(SeqlabError, match="skipped.pt: the trial was skipped \\(fp16 on CPU\\)"):
        load_model(tmp_path / "skipped.pt")
    spec = {"arch": "lstm", "n_embd": 8, "hidden": 8, "n_layer": 1, "vocab_size": 10}
    torch.manual_seed(0)
    weights = build_model(spec, 10).state_dict()
    save_checkpoint(tmp_path / "bare.pt", {"model": weights})  # a ckpt/*.pt: no model_config
    with pytest.raises(SeqlabError, match="bare.pt: holds no model_config"):
        load_model(tmp_path / "bare.pt")
    model, _ = load_model(tmp_path / "bare.pt", spec=spec)
    assert not model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_pick_device() -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == want
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(SeqlabError, match="device 'gpu0': use auto, cpu, cuda or cuda:N"):
        pick_device("gpu0")
