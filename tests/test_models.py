"""Models: shapes, init, causality, tying, parameter counts, config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import parse

from seqlab.config import TrainConfig
from seqlab.data.phonemes import ctc_frames
from seqlab.errors import SeqlabError
from seqlab.models import (
    build_model,
    count_params,
    estimate_flops_per_token,
    gpt_num_params,
    model_spec,
)

V = 258  # 256 SpidR units + BOS + EOS
GPT_SMALL = {"arch": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 32}
GPT_124M = {
    "arch": "gpt2",
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "block_size": 1024,
    "pad_vocab_multiple": 64,
}


def _build(cfg: dict, vocab_size: int = V, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg, vocab_size)


# --- shapes and forward ---------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [{"arch": "lstm", "n_embd": 32, "hidden": 48}, GPT_SMALL])
def test_forward_shape_and_initial_loss_near_uniform(cfg: dict) -> None:
    model = _build(cfg)
    idx = torch.randint(0, V, (3, 20))
    logits = model(idx)
    assert logits.shape == (3, 20, V)
    assert logits.dtype == torch.float32
    # Small init: the untrained model predicts nearly uniformly, loss ~ ln V. (Targets are
    # other tokens: with tied weights GPT-2 at init favours repeating its input token.)
    targets = torch.randint(0, V, (3, 20))
    loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    assert abs(loss.item() - math.log(V)) < 0.1


def test_gpt2_padded_vocab_returns_real_vocab_logits() -> None:
    model = _build({**GPT_SMALL, "pad_vocab_multiple": 64})
    assert model.config.padded_vocab_size == 320
    assert model.transformer.wte.weight.shape == (320, 64)
    assert model(torch.randint(0, V, (2, 8))).shape == (2, 8, V)


def test_gpt2_rejects_sequence_longer_than_block() -> None:
    model = _build(GPT_SMALL)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))


# --- GPT-2 ------------------------------------------------------------------------------------


def test_gpt2_is_causal() -> None:
    model = _build(GPT_SMALL).eval()
    idx = torch.randint(0, V, (2, 16))
    changed = idx.clone()
    changed[:, 10] = (idx[:, 10] + 1) % V
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 10:], b[:, 10:])  # the change is seen from position 10 on


def test_gpt2_weight_tying() -> None:
    model = _build(GPT_SMALL)
    assert model.transformer.wte.weight is model.lm_head.weight
    assert count_params(model) == gpt_num_params(model.config)  # the tied matrix counted once


def test_gpt2_init_scales_residual_projections() -> None:
    cfg = {**GPT_SMALL, "n_embd": 256, "n_layer": 4}
    model = _build(cfg)
    block = model.transformer.h[0]
    assert block.attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert block.mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.02)
    scaled = 0.02 / math.sqrt(2 * 4)
    assert block.attn.c_proj.weight.std().item() == pytest.approx(scaled, rel=0.03)
    assert block.mlp.c_proj.weight.std().item() == pytest.approx(scaled, rel=0.03)
    assert torch.all(block.attn.c_attn.bias == 0)


def test_gpt2_124m_param_count() -> None:
    # Built on the meta device: real shapes, no memory, no init cost.
    with torch.device("meta"):
        model = build_model(GPT_124M, 50257)
    assert model.config.padded_vocab_size == 50304
    assert count_params(model) == 124_475_904
    assert gpt_num_params(model.config) == 124_475_904
    # nanoGPT prints "number of parameters: 123.69M" (position embedding excluded).
    assert gpt_num_params(model.config, non_embedding=True) == 123_689_472


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_num_params_matches_built_model(bias: bool) -> None:
    model = _build({**GPT_SMALL, "bias": bias, "pad_vocab_multiple": 64})
    assert count_params(model) == gpt_num_params(model.config)


def test_flops_per_token_nanogpt_formula() -> None:
    with torch.device("meta"):
        config = build_model(GPT_124M, 50257).config
    # 6N + 12 L H Q T with N = 123,689,472, L = H = 12, Q = 64, T = 1024
    assert estimate_flops_per_token(config) == 6 * 123_689_472 + 12 * 12 * 12 * 64 * 1024
    assert estimate_flops_per_token(config) == 855_383_040


# --- LSTM -------------------------------------------------------------------------------------


def test_lstm_param_count_256_256_2() -> None:
    model = _build({"arch": "lstm"})
    E = H = 256
    expected = V * E + 4 * H * (E + H) + 8 * H + 4 * H * (H + H) + 8 * H + H * V + V
    assert expected == 1_185_026
    assert count_params(model) == expected  # the hand-run study's "~1.2M"


def test_lstm_forget_gate_bias_is_one_in_total() -> None:
    model = _build({"arch": "lstm", "n_layer": 3, "hidden": 32, "n_embd": 16})
    H = 32
    for layer in range(3):
        b_ih = getattr(model.lstm, f"bias_ih_l{layer}")
        b_hh = getattr(model.lstm, f"bias_hh_l{layer}")
        total = b_ih + b_hh
        assert torch.all(total[H : 2 * H] == 1.0)
        assert torch.all(total[:H] == 0) and torch.all(total[2 * H :] == 0)
        assert torch.all(b_hh == 0)


def test_lstm_recurrent_blocks_orthogonal_and_input_xavier_per_gate() -> None:
    E, H = 16, 32
    model = _build({"arch": "lstm", "n_layer": 2, "hidden": H, "n_embd": E})
    for layer, fan_in in [(0, E), (1, H)]:
        w_hh = getattr(model.lstm, f"weight_hh_l{layer}")
        w_ih = getattr(model.lstm, f"weight_ih_l{layer}")
        for g in range(4):
            block = w_hh[g * H : (g + 1) * H]
            torch.testing.assert_close(block @ block.T, torch.eye(H), rtol=0, atol=1e-5)
        bound = math.sqrt(6 / (fan_in + H))  # xavier bound of one gate block
        assert w_ih.abs().max() <= bound
        assert w_ih.abs().max() > math.sqrt(6 / (fan_in + 4 * H))  # not fanned over all 4 gates


# --- determinism and config -------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [{"arch": "lstm", "n_embd": 32, "hidden": 32}, GPT_SMALL])
def test_init_is_deterministic_under_seed(cfg: dict) -> None:
    a, b, c = _build(cfg, seed=0), _build(cfg, seed=0), _build(cfg, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    idx = torch.randint(0, V, (2, 8))
    assert torch.equal(a(idx), b(idx))


@pytest.mark.parametrize("cfg", [{"arch": "lstm", "dropout": 0.1}, GPT_SMALL])
def test_model_spec_rebuilds_the_same_model(cfg: dict) -> None:
    model = _build(cfg)
    spec = model_spec(model)
    assert spec["arch"] == cfg["arch"] and spec["vocab_size"] == V
    again = _build(spec)
    assert again.config == model.config
    sa, sb = model.state_dict(), again.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"arch": "rnn"}, r"model\.arch: 'rnn' is not one of \['gpt2', 'gru_ctc', 'lstm'\]"),
        ({}, "model.arch: None"),
        ({"arch": "lstm", "n_head": 4}, r"model\.n_head: unknown key; .*\bhidden\b"),
        ({"arch": "gpt2", "hidden": 4}, r"model\.hidden: unknown key; .*\bn_head\b"),
        ({"arch": "gpt2", "n_embd": 100, "n_head": 3}, "not divisible by n_head"),
        ({"arch": "lstm", "vocab_size": 100}, "config says 100, the data has 258"),
    ],
)
def test_build_model_rejects_bad_config(cfg: dict, match: str) -> None:
    with pytest.raises(SeqlabError, match=match):
        build_model(cfg, V)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"arch": "lstm", "n_layer": 0}, r"model.n_layer: must be >= 1 \(got 0\)"),
        ({"arch": "lstm", "dropout": 1.0}, r"model\.dropout: must be < 1.0 \(got 1\.0\)"),
        ({"arch": "gpt2", "bias": "no"}, r"model.bias: must be true or false \(got 'no'\)"),
    ],
)
def test_model_values_are_refused_when_the_config_loads(cfg: dict, match: str) -> None:
    with pytest.raises(SeqlabError, match=match):
        parse(TrainConfig, {"model": cfg}, "train")


# --- the CTC decoder's output frames ---------------------------------------------------------


def test_ctc_frames_one_formula_for_data_and_model() -> None:
    """floor((T - K) / S) + 1, 0 below K: the data check (numpy) and the model (torch) agree,
    and the model really emits that many frames."""
    lens = [0, 7, 8, 9, 11, 12, 13, 40]
    want = [0, 0, 1, 1, 1, 2, 2, 9]  # K = 8, S = 4
    assert ctc_frames(np.array(lens), 8, 4).tolist() == want
    assert ctc_frames(torch.tensor(lens), 8, 4).tolist() == want
    cfg = {"arch": "gru_ctc", "n_features": 3, "hidden": 4, "n_layer": 1, "kernel_len": 8}
    model = _build({**cfg, "stride_len": 4, "smooth_kernel": 3}, vocab_size=5)
    assert model.out_lengths(torch.tensor(lens)).tolist() == want
    x, day = torch.zeros(1, 40, 3), torch.zeros(1, dtype=torch.long)
    assert model(x, day, torch.tensor([40])).shape == (1, 9, 5)


def test_lstm_runs_under_cpu_bf16_autocast_on_any_cpu() -> None:
    """oneDNN's bf16 LSTM needs AVX-512; without it the recurrence falls back to fp32."""
    from seqlab.models.lstm import LSTMLM, LSTMConfig

    torch.manual_seed(0)
    m = LSTMLM(LSTMConfig(vocab_size=12, n_embd=8, hidden=8, n_layer=2))
    idx = torch.randint(0, 12, (2, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(idx)
    assert y.dtype == torch.bfloat16  # the output layer still ran under autocast
    assert torch.allclose(y.float(), m(idx), atol=0.05)
