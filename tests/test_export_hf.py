"""`seqlab export-hf`: a trained GPT-2 trial loads in transformers' GPT2LMHeadModel and gives
the same logits; anything else is refused in one line, with no output left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers  # a dev dependency, only for this test
from conftest import tiny_trial
from safetensors.torch import load_file

from seqlab.data.manifest import bos_eos
from seqlab.files import read_json, write_json
from seqlab.models import build_model
from seqlab.models.hf_gpt2 import write_hf_gpt2
from seqlab.train.load import load_model
from seqlab.train.loop import train


def export_hf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqlab.commands", "export-hf", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def trained_trial(manifest: Path, trial_dir: Path, model: dict, precision: str = "fp32") -> Path:
    cfg = tiny_trial(
        manifest, model=model, max_steps=6, seq_len=16, eval_interval=3, precision=precision
    )
    write_json(trial_dir / "config.json", cfg)
    train(cfg, trial_dir, echo=lambda _: None)
    return trial_dir


@pytest.mark.parametrize(
    ("shape", "precision"),
    [
        ({"bias": True, "pad_vocab_multiple": 1, "dropout": 0.1}, "fp32"),
        ({"bias": False, "pad_vocab_multiple": 64, "dropout": 0.0}, "fp32"),  # 66 ids: 128 rows
        # pure bf16 saves bf16 weights; they load into an fp32 model and export as fp32,
        # exactly (every bf16 value is an fp32 value)
        ({"bias": True, "pad_vocab_multiple": 1, "dropout": 0.0}, "bf16_pure"),
    ],
    ids=["bias", "no-bias-padded", "bf16-pure-trial"],
)
def test_gpt2_trial_exports_to_the_same_logits(
    unit_manifest: Path, tmp_path: Path, shape: dict, precision: str
) -> None:
    model_cfg = {"arch": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 24}
    trial = trained_trial(unit_manifest, tmp_path / "trial", {**model_cfg, **shape}, precision)
    assert read_json(trial / "metrics.json")["precision"] == precision
    out = tmp_path / "hf"
    r = export_hf(str(trial), str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert not list(tmp_path.glob(".hf.partial-*"))

    ours, _ = load_model(trial / "model.pt")
    man = read_json(unit_manifest)
    config = json.loads((out / "config.json").read_text())
    assert (config["bos_token_id"], config["eos_token_id"]) == (man["bos"], man["eos"])
    assert config["vocab_size"] == man["vocab_size"] + 2 == ours.config.vocab_size
    assert config["n_positions"] == 24 and config["torch_dtype"] == "float32"
    if shape["pad_vocab_multiple"] > 1:  # the padding rows were dropped
        assert ours.transformer.wte.weight.shape[0] == 128
        assert load_file(out / "model.safetensors")["transformer.wte.weight"].shape[0] == 66

    for attn in ("eager", "sdpa"):
        hf = transformers.GPT2LMHeadModel.from_pretrained(
            out,
            attn_implementation=attn,
            local_files_only=True,  # nothing may download
        ).eval()
        assert hf.config.bos_token_id == man["bos"]
        assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # tied
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(0, ours.config.vocab_size, (4, 24), generator=g)
        with torch.no_grad():
            want, got = ours(idx), hf(idx).logits
        assert got.dtype == torch.float32 and got.shape == want.shape == (4, 24, 66)
        assert (got - want).abs().max().item() < 1e-5, attn

    lost = export_hf(str(trial), str(tmp_path / "hf2"), "--manifest", str(tmp_path / "nope.json"))
    assert lost.returncode == 1 and len(lost.stderr.strip().splitlines()) == 1
    assert "nope.json: the trial's dataset manifest not found (for its BOS/EOS ids)" in lost.stderr
    assert not (tmp_path / "hf2").exists()
    before = (out / "model.safetensors").read_bytes()
    again = export_hf(str(trial), str(out))  # a used directory: refused, left as it was
    assert again.returncode == 1 and "not an empty directory" in again.stderr
    assert (out / "model.safetensors").read_bytes() == before


def test_lstm_trial_is_refused_in_one_line(unit_manifest: Path, tmp_path: Path) -> None:
    lstm = {"arch": "lstm", "n_embd": 16, "hidden": 16, "n_layer": 1, "dropout": 0.0}
    trial = trained_trial(unit_manifest, tmp_path / "trial", lstm)
    out = tmp_path / "hf"
    r = export_hf(str(trial), str(out))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: {trial}: its model is lstm, not gpt2; export-hf writes GPT-2 trials only "
        "(as Hugging Face's GPT2LMHeadModel)"
    ]
    assert not out.exists() and not list(tmp_path.glob(".hf.partial-*"))


def test_a_directory_without_model_pt_is_refused(tmp_path: Path) -> None:
    r = export_hf(str(tmp_path), str(tmp_path / "hf"))
    assert r.returncode == 1 and "no model.pt; give a finished trial's directory" in r.stderr
    assert not (tmp_path / "hf").exists()


def test_every_weight_and_setting_maps_where_init_scale_weights_hide_it(tmp_path: Path) -> None:
    """At GPT-2's init scale (std 0.02) the tanh GELU or a lost LayerNorm bias moves the
    logits by less than 1e-5: weights of std 0.5 everywhere make each mapping show."""
    spec = {"arch": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 16}
    torch.manual_seed(0)
    ours = build_model({**spec, "pad_vocab_multiple": 8}, 10).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0.0, 0.5)
    write_hf_gpt2(ours, tmp_path, bos=8, eos=9)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, local_files_only=True).eval()
    idx = torch.randint(0, 10, (3, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ours(idx), hf(idx).logits
    assert want.abs().max() > 2  # logits of a few units: the tanh GELU moves them by ~5e-4
    assert (got - want).abs().max().item() < 1e-5 * want.abs().max().item()


def test_bos_eos_of_each_kind_of_dataset(unit_manifest: Path) -> None:
    man = read_json(unit_manifest)  # units: BOS = vocab_size, EOS = vocab_size + 1
    assert bos_eos(man) == (man["vocab_size"], man["vocab_size"] + 1) == (64, 65)
    assert bos_eos({"kind": "token_bins", "eot_token": 256}) == (256, 256)  # GPT-2's convention
    assert bos_eos({"kind": "token_bins"}) == (None, None)  # nanoGPT bins: none recorded
