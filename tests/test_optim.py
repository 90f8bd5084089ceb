"""Optimizers and LR schedules: param groups, Adam vs AdamW, hand-computed schedule values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from seqlab.models import build_model, count_params
from seqlab.train.optim import build_optimizer, effective_lr, lr_at, set_lr

V = 258
GPT_SMALL = {"arch": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 32}


def _model(cfg: dict | None = None) -> nn.Module:
    torch.manual_seed(0)
    return build_model(cfg or {"arch": "lstm", "n_embd": 32, "hidden": 32}, V)


def _train(optim_cfg: dict, steps: int = 5) -> dict[str, torch.Tensor]:
    """A few real steps on fixed data from a fixed init; returns the final parameters."""
    model = _model()
    opt = build_optimizer(model, optim_cfg)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, V, (4, 16), generator=gen)
        loss = F.cross_entropy(model(idx[:, :-1]).reshape(-1, V), idx[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- optimizers -------------------------------------------------------------------------------


def test_decay_2d_only_groups_follow_nanogpt() -> None:
    model = _model(GPT_SMALL)
    opt = build_optimizer(
        model, {"name": "adamw", "lr": 6e-4, "weight_decay": 0.1, "decay_2d_only": True}
    )
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])

    def ids(group: dict) -> set[int]:
        return {id(p) for p in group["params"]}

    # Embeddings are 2-D, so decayed (as nanoGPT); the tied wte/lm_head matrix appears once.
    assert id(model.transformer.wte.weight) in ids(decay)
    assert id(model.transformer.wpe.weight) in ids(decay)
    assert id(model.transformer.ln_f.weight) in ids(no_decay)
    assert id(model.transformer.h[0].attn.c_attn.bias) in ids(no_decay)
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == count_params(model)
    # 2 layers x (4 Linear weights) + wte + wpe; biases and LayerNorms: 2 x (4 + 4) + 2
    assert len(decay["params"]) == 2 * 4 + 2
    assert len(no_decay["params"]) == 2 * 8 + 2


def test_without_decay_2d_only_one_group_decays_everything() -> None:
    model = _model(GPT_SMALL)
    opt = build_optimizer(model, {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1})
    assert len(opt.param_groups) == 1
    assert opt.param_groups[0]["weight_decay"] == 0.1
    assert len(opt.param_groups[0]["params"]) == len(list(model.parameters()))


def test_optimizer_settings_reach_torch() -> None:
    model = _model()
    opt = build_optimizer(model, {"name": "adam", "lr": 1e-2, "betas": [0.9, 0.99], "eps": 1e-6})
    assert type(opt) is torch.optim.Adam
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["eps"], g["weight_decay"]) == (1e-2, (0.9, 0.99), 1e-6, 0.0)
    assert not g["fused"]  # auto: fused only on CUDA
    opt = build_optimizer(model, {"name": "adamw", "lr": 1e-3})
    assert type(opt) is torch.optim.AdamW
    assert opt.param_groups[0]["weight_decay"] == 0.0  # not torch's AdamW default of 0.01
    opt = build_optimizer(model, {"name": "adamw", "lr": 1e-3, "fused": True})
    assert opt.param_groups[0]["fused"] is True
    opt = build_optimizer(model, {"name": "sgd", "lr": 0.1, "momentum": 0.9, "betas": [0, 0]})
    assert type(opt) is torch.optim.SGD and opt.param_groups[0]["momentum"] == 0.9


def test_adamw_and_adam_are_bitwise_equal_without_weight_decay() -> None:
    # The hand-run LSTM study blamed AdamW(wd=0) for a plateau; mathematically it is Adam, and in
    # torch (AdamW subclasses Adam; decay is a multiply by 1 - lr * 0 = 1) bit for bit on CPU.
    base = {"lr": 1e-2, "betas": [0.9, 0.99], "weight_decay": 0.0}
    adam = _train({"name": "adam", **base})
    adamw = _train({"name": "adamw", **base})
    start = _model().state_dict()
    assert not all(torch.equal(adam[k], start[k]) for k in adam)  # training moved them
    assert all(torch.equal(adam[k], adamw[k]) for k in adam)
    # With weight decay they are different algorithms, so the test above could fail.
    base["weight_decay"] = 0.1
    adam, adamw = _train({"name": "adam", **base}), _train({"name": "adamw", **base})
    assert not all(torch.equal(adam[k], adamw[k]) for k in adam)


def test_adam_decay_is_coupled_adamw_decoupled() -> None:
    # One step on p = 1 with zero loss gradient. Coupled (Adam): the gradient becomes wd * p,
    # normalised by Adam to a step of ~lr. Decoupled (AdamW): p *= 1 - lr * wd, no Adam step.
    lr, wd = 0.1, 0.5
    result = {}
    for name in ("adam", "adamw"):
        model = nn.Linear(1, 1, bias=False)
        nn.init.ones_(model.weight)
        opt = build_optimizer(model, {"name": name, "lr": lr, "weight_decay": wd})
        model.weight.grad = torch.zeros_like(model.weight)
        opt.step()
        result[name] = model.weight.item()
    assert result["adam"] == pytest.approx(1 - lr, abs=1e-6)
    assert result["adamw"] == pytest.approx(1 - lr * wd, abs=1e-7)


def test_missing_optim_keys_take_the_documented_defaults() -> None:
    """Validation is the typed config's job; here a partial dict means the defaults."""
    opt = build_optimizer(_model(), {})
    assert isinstance(opt, torch.optim.Adam) and not isinstance(opt, torch.optim.AdamW)
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (
        1e-3, (0.9, 0.999), 1e-8, 0.0)  # fmt: skip


def test_set_lr_sets_every_group() -> None:
    model = _model(GPT_SMALL)
    opt = build_optimizer(model, {"name": "adamw", "lr": 1e-3, "decay_2d_only": True})
    set_lr(opt, 3e-4)
    assert [g["lr"] for g in opt.param_groups] == [3e-4, 3e-4]
    opt.param_groups[0]["lr"] = torch.tensor(1.0)
    set_lr(opt, 0.5)
    assert opt.param_groups[0]["lr"].item() == 0.5 and opt.param_groups[1]["lr"] == 0.5


# --- schedules --------------------------------------------------------------------------------

BASE = 1e-3


@pytest.mark.parametrize("name", ["constant", "cosine", "inverse_sqrt", "linear"])
def test_warmup_is_linear_from_zero_to_base(name: str) -> None:
    cfg = {"name": name, "warmup": 100, "min_lr": 1e-4}
    assert lr_at(0, cfg, BASE, 1000) == 0.0
    assert lr_at(50, cfg, BASE, 1000) == pytest.approx(BASE / 2)
    assert lr_at(100, cfg, BASE, 1000) == pytest.approx(BASE)  # end of warmup


def test_warmup_from_warmup_init() -> None:
    cfg = {"name": "inverse_sqrt", "warmup": 100, "warmup_init": 1e-4}
    assert lr_at(0, cfg, BASE, 1000) == pytest.approx(1e-4)
    assert lr_at(50, cfg, BASE, 1000) == pytest.approx(1e-4 + 0.9e-3 / 2)


def test_constant() -> None:
    assert lr_at(0, {"name": "constant"}, 1e-2, 10) == 1e-2
    assert lr_at(10**6, {}, 1e-2, 10) == 1e-2  # default schedule: constant, no warmup


def test_cosine_halfway_and_floor() -> None:
    cfg = {"name": "cosine", "warmup": 100, "min_lr": 1e-4}
    assert lr_at(600, cfg, BASE, 1100) == pytest.approx(1e-4 + (BASE - 1e-4) / 2)
    assert lr_at(350, cfg, BASE, 1100) == pytest.approx(
        1e-4 + 0.9e-3 * (1 + math.cos(math.pi / 4)) / 2
    )
    assert lr_at(1100, cfg, BASE, 1100) == pytest.approx(1e-4)
    assert lr_at(5000, cfg, BASE, 1100) == 1e-4
    lrs = [lr_at(s, cfg, BASE, 1100) for s in range(100, 1200)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_cosine_nanogpt_gpt2_values() -> None:
    # nanoGPT's GPT-2 124M (the hand-run precision study): 6e-4 -> 6e-5 cosine, 1000 warmup,
    # 10000 iterations.
    cfg = {"name": "cosine", "warmup": 1000, "min_lr": 6e-5}
    assert lr_at(1000, cfg, 6e-4, 10000) == pytest.approx(6e-4)
    assert lr_at(5500, cfg, 6e-4, 10000) == pytest.approx(3.3e-4)
    assert lr_at(10000, cfg, 6e-4, 10000) == pytest.approx(6e-5)


def test_linear_decay() -> None:
    cfg = {"name": "linear", "warmup": 100, "min_lr": 1e-4}
    assert lr_at(600, cfg, BASE, 1100) == pytest.approx(5.5e-4)
    assert lr_at(850, cfg, BASE, 1100) == pytest.approx(1e-4 + 0.9e-3 / 4)
    assert lr_at(2000, cfg, BASE, 1100) == 1e-4


def test_inverse_sqrt_as_fairseq() -> None:
    cfg = {"name": "inverse_sqrt", "warmup": 1000}
    assert lr_at(1000, cfg, BASE, 10**5) == pytest.approx(BASE)
    assert lr_at(4000, cfg, BASE, 10**5) == pytest.approx(BASE / 2)
    assert lr_at(100_000, cfg, BASE, 10**5) == pytest.approx(BASE * math.sqrt(1000 / 100_000))
    # warmup 0: base_lr / sqrt(max(step, 1))
    assert lr_at(0, {"name": "inverse_sqrt"}, BASE, 10) == BASE
    assert lr_at(1, {"name": "inverse_sqrt"}, BASE, 10) == BASE
    assert lr_at(4, {"name": "inverse_sqrt"}, BASE, 10) == pytest.approx(BASE / 2)
    # min_lr is a floor
    assert lr_at(10**6, {**cfg, "min_lr": 2e-4}, BASE, 10**5) == 2e-4


def test_missing_schedule_keys_take_the_defaults() -> None:
    assert lr_at(0, {"name": "cosine"}, BASE, 100) == BASE  # no warmup
    assert lr_at(100, {"name": "cosine"}, BASE, 100) == 0.0  # min_lr 0


def test_effective_lr_is_schedule_times_guard_scale_with_a_floor() -> None:
    cfg = {"name": "cosine", "warmup": 10, "min_lr": 1e-5}
    assert effective_lr(50, cfg, BASE, 100, 1.0, 5e-4) == lr_at(50, cfg, BASE, 100)
    assert effective_lr(10, cfg, BASE, 100, 0.8, 1e-4) == pytest.approx(0.8 * BASE)
    assert effective_lr(10, cfg, BASE, 100, 0.1, 5e-4) == 5e-4  # a cut stops at the floor


def test_the_floor_never_lifts_the_schedule() -> None:
    """Warmup from 0 and a decay below the floor stay as scheduled after a cut."""
    cfg = {"name": "cosine", "warmup": 10, "min_lr": 1e-5}
    assert effective_lr(0, cfg, BASE, 100, 0.5, 5e-4) == 0.0
    assert effective_lr(2, cfg, BASE, 100, 0.5, 5e-4) == pytest.approx(2e-4)  # 0.2 BASE
    assert effective_lr(100, cfg, BASE, 100, 0.5, 5e-4) == 1e-5
