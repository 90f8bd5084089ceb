"""Precision modes of the loop on the text_lm task, on CPU: each mode runs or is skipped with a
reason, bf16_pure really is bf16, fp16 overflow is recorded as divergence, and the table."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from seqlab.data.prepare import prepare_dataset
from seqlab.files import write_json
from seqlab.report.precision_study import MODES, precision_table
from seqlab.report.summary import load_trials
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.loop import train


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lm") / "text"
    prepare_dataset("text", {"kind": "synthetic_text_bins", "seed": 1, "lexicon_size": 200,
                             "n_train_sentences": 300, "n_val_sentences": 30}, d)  # fmt: skip
    return d / "manifest.json"


def lm_trial(manifest: Path, run: str, **train_cfg: object) -> dict:
    cfg = {
        "model": {"arch": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2, "block_size": 32,
                  "pad_vocab_multiple": 64},
        "optim": {"name": "adamw", "lr": 3e-3, "betas": [0.9, 0.95], "weight_decay": 0.1,
                  "decay_2d_only": True},
        "schedule": {"name": "cosine", "warmup": 2, "min_lr": 3e-4},
        "max_steps": 6, "batch_size": 4, "seq_len": 32, "grad_accum": 2, "grad_clip": 1.0,
        "eval_interval": 3, "eval_batches": 2, "ckpt_interval": 3, "log_interval": 2,
        "milestones": [3], "guard": {"enabled": False},
    }  # fmt: skip
    cfg.update(train_cfg)
    return {"experiment": "lm", "run": run, "seed": 0, "task": "text_lm", "variant": None,
            "overrides": {"precision": cfg.get("precision", "fp32")},
            "data": {"dataset": "text", "manifest": str(manifest)}, "train": cfg}  # fmt: skip


@pytest.fixture(scope="module")
def mode_runs(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One short trial per precision mode, as the `lm` experiment's grid runs them."""
    root = tmp_path_factory.mktemp("modes")
    out = {}
    for mode in MODES:
        trial = lm_trial(manifest, f"precision~{mode}", precision=mode)
        d = root / trial["run"] / "seed0"
        write_json(d / "config.json", trial)
        train(trial, d, echo=quiet)
        out[mode] = d
    return out


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_runs_or_is_skipped_with_a_reason(mode: str, mode_runs: dict) -> None:
    m = load_trials([mode_runs[mode]]).iloc[0]
    assert m["precision"] == mode and m["task"] == "text_lm"
    if m["stop_reason"] == "unsupported":
        assert isinstance(m["skip_reason"], str) and mode in m["skip_reason"]
        return
    assert m["stop_reason"] in ("max_steps", "diverged")
    if m["stop_reason"] == "max_steps":
        assert m["steps"] == 6 and math.isfinite(m["final_eval_loss"])
        assert m["final_eval_loss"] < math.log(257)  # it learned something in 6 steps
    assert m["peak_mem_kind"] == "cpu_peak_rss" and m["peak_mem_mb"] > 0
    assert m["tf32.cuda_matmul"] == "ieee"  # recorded explicitly; tf32 is off by default
    assert m.get("mfu") is None or math.isnan(m["mfu"])  # no MFU on CPU, and says why
    assert m["mfu_reference"].startswith("no MFU on cpu")


def test_bf16_pure_keeps_bf16_weights_and_optimizer_state(mode_runs: dict) -> None:
    m = load_trials([mode_runs["bf16_pure"]]).iloc[0]
    if m["stop_reason"] == "unsupported":
        pytest.skip(m["skip_reason"])
    state = load_checkpoint(mode_runs["bf16_pure"] / "model.pt")["model"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.bfloat16}
    assert m["param_dtype"] == "bfloat16" and m["optim_state_dtypes"] == '["bfloat16"]'
    last = load_checkpoint(mode_runs["bf16_pure"] / "ckpt" / "last.pt")["optim"]["state"]
    assert all(s["exp_avg"].dtype == s["exp_avg_sq"].dtype == torch.bfloat16 for s in last.values())
    fp32 = load_trials([mode_runs["fp32"]]).iloc[0]
    assert fp32["optim_state_dtypes"] == '["float32"]'


def test_fp16_naive_adamw_diverges_from_eps_underflow(mode_runs: dict) -> None:
    """Not planted: AdamW's eps 1e-8 is below fp16's smallest subnormal (6e-8), so a weight with
    a zero gradient (the vocabulary padding rows) gets 0 / (0 + 0) = NaN on the first update."""
    m = load_trials([mode_runs["fp16_naive"]]).iloc[0]
    if m["stop_reason"] == "unsupported":
        pytest.skip(m["skip_reason"])
    assert m["stop_reason"] == "diverged" and m["steps"] <= 2
    assert m["final_eval_loss"] is None or math.isnan(m["final_eval_loss"])


def strict(text: str) -> object:
    """json.loads that refuses NaN / Infinity, as jq, browsers and RFC 8259 do."""

    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_a_diverged_trial_writes_strict_json(mode_runs: dict) -> None:
    """The diverged fp16_naive trial has non-finite losses: metrics.json and every log.jsonl
    line still parse as strict JSON, with null where the number was not finite."""
    d = mode_runs["fp16_naive"]
    m = strict((d / "metrics.json").read_text())
    if m["stop_reason"] == "unsupported":
        pytest.skip(m["skip_reason"])
    assert m["final_eval_loss"] is None
    records = [strict(line) for line in (d / "log.jsonl").read_text().splitlines()]
    assert any(None in r.values() for r in records)  # the non-finite values, as null


@pytest.mark.parametrize("mode", ["fp16_naive", "fp32"])
def test_planted_overflow_is_recorded_as_divergence(
    manifest: Path, tmp_path: Path, mode: str
) -> None:
    """Planted: Adam with eps 1e-3 (representable in fp16, so no underflow) and lr 6e4 moves
    every weight by ~6e4 in one step; in fp16 the next forward's activations overflow 65504 ->
    inf -> NaN loss -> stop reason `diverged`, not a crash. fp32 holds the same weights."""
    optim = {"name": "adam", "lr": 6e4, "eps": 1e-3, "betas": [0.9, 0.95]}
    trial = lm_trial(manifest, mode, precision=mode, max_steps=4, optim=optim,
                     schedule={"name": "constant"})  # fmt: skip
    m = train(trial, tmp_path, echo=quiet)
    if mode == "fp32":
        assert m["stop_reason"] == "max_steps" and math.isfinite(m["final_eval_loss"])
    else:
        assert m["stop_reason"] == "diverged" and m["steps"] == 2
        assert '"event": "diverged"' in (tmp_path / "log.jsonl").read_text()


def test_precision_table_relative_to_fp32(mode_runs: dict) -> None:
    table = precision_table(load_trials(list(mode_runs.values()))).set_index("precision")
    assert list(table.index) == list(MODES)
    fp32 = table.loc["fp32"]
    assert fp32["throughput_ratio"] == 1.0 and fp32["memory_ratio"] == 1.0
    assert fp32["loss_delta"] == 0.0 and not fp32["diverged"]
    for mode, row in table.iterrows():
        if row["skipped"]:
            assert isinstance(row["skip_reason"], str)
        elif not row["diverged"]:
            assert row["throughput_ratio"] > 0 and abs(row["loss_delta"]) < 0.5, mode
    assert table.loc["fp16_naive", "diverged"] or table.loc["fp16_naive", "skipped"]


def test_auto_runs_the_mode_this_device_computes_natively(
    manifest: Path, mode_runs: dict, tmp_path: Path
) -> None:
    """`auto` trains exactly as the mode it resolves to (bitwise, same curve), records both
    names, and the report groups it under the mode that ran, not under "auto"."""
    expected = "amp_bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    trial = lm_trial(manifest, "precision~auto", precision="auto")
    d = tmp_path / "seed0"
    write_json(d / "config.json", trial)
    lines: list[str] = []
    m = train(trial, d, echo=lines.append)
    assert (m["precision"], m["precision_asked"]) == (expected, "auto")
    assert f"precision auto -> {expected} on cpu" in lines
    ref = json.loads((mode_runs[expected] / "metrics.json").read_text())
    assert m["eval_loss_at"] == ref["eval_loss_at"] and m["train_loss_at"] == ref["train_loss_at"]
    assert load_trials([d])["cfg.precision"].tolist() == [expected]
    assert ref["precision_asked"] == expected  # an explicit mode is asked as itself


def test_auto_resumes_only_checkpoints_of_the_mode_it_resolves_to(
    manifest: Path, mode_runs: dict, tmp_path: Path
) -> None:
    """A checkpoint made under another mode (a machine that resolved `auto` otherwise) is
    discarded, never continued in a different precision."""
    expected = "amp_bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    other = "fp32" if expected == "amp_bf16" else "amp_bf16"
    events = {}
    for mode in (expected, other):
        d = tmp_path / mode
        shutil.copytree(mode_runs[mode], d)
        train(lm_trial(manifest, "precision~auto", precision="auto"), d, echo=quiet)
        log = [json.loads(x) for x in (d / "log.jsonl").read_text().splitlines()]
        events[mode] = [e["event"] for e in log if e.get("kind") == "event"]
    assert "resume" in events[expected] and "ckpt_discarded" not in events[expected]
    assert "ckpt_discarded" in events[other] and "resume" not in events[other]


def test_auto_is_a_valid_precision_in_the_typed_config() -> None:
    from conftest import parse

    from seqlab.config import TrainConfig
    from seqlab.errors import SeqlabError

    assert parse(TrainConfig, {"precision": "auto"}, "train").precision == "auto"
    with pytest.raises(SeqlabError, match="precision"):
        parse(TrainConfig, {"precision": "bf16"}, "train")
