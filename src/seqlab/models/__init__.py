"""Model zoo: one file per architecture, built from a config dict by `build_model`.

The language models (`lstm`, `gpt2`) map token ids LongTensor[B, T] -> logits[B, T, V]; their
loss is the training task's (`seqlab.train.tasks.lm_loss`). The CTC decoder (`gru_ctc`) maps
features (B, T, C), day ids (B,) and frame counts (B,) -> logits (B, T', classes) over fewer,
unfolded frames; its CTC loss and the decoding of a split sit beside it in its file, because
training (best checkpoint by PER) and evaluation share them. Every model carries `.config`, a
dataclass that `model_spec` turns back into a dict that `build_model` accepts, so a checkpoint
can rebuild its model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch.nn as nn

from seqlab.io import SeqlabError
from seqlab.models.gpt2 import GPT, GPTConfig, estimate_flops_per_token, gpt_num_params
from seqlab.models.gru_ctc import GRUCTC, GRUCTCConfig
from seqlab.models.lstm import LSTMLM, LSTMConfig

ARCHS: dict[str, tuple[type, type[nn.Module]]] = {
    "lstm": (LSTMConfig, LSTMLM),
    "gpt2": (GPTConfig, GPT),
    "gru_ctc": (GRUCTCConfig, GRUCTC),
}

__all__ = [
    "ARCHS",
    "GPT",
    "GPTConfig",
    "GRUCTC",
    "GRUCTCConfig",
    "LSTMConfig",
    "LSTMLM",
    "build_model",
    "count_params",
    "estimate_flops_per_token",
    "gpt_num_params",
    "model_spec",
]


def build_model(cfg: dict[str, Any], vocab_size: int) -> nn.Module:
    """Build the model named by cfg["arch"]; the other keys are its config's fields.

    vocab_size comes from the data, not the config; cfg may repeat it (as `model_spec` does)
    only with the same value. Initialisation draws from torch's global RNG, so seed it first.
    """
    cfg = dict(cfg)
    arch = cfg.pop("arch", None)
    if arch not in ARCHS:
        raise SeqlabError(f"model.arch: {arch!r} is not one of {sorted(ARCHS)}")
    config_cls, model_cls = ARCHS[arch]
    fields = [f.name for f in dataclasses.fields(config_cls)]
    for key in cfg:
        if key not in fields:
            valid = ["arch"] + [f for f in fields if f != "vocab_size"]
            raise SeqlabError(f"model.{key}: unknown key for arch {arch!r}; valid keys: {valid}")
    if cfg.setdefault("vocab_size", vocab_size) != vocab_size:
        raise SeqlabError(
            f"model.vocab_size: config says {cfg['vocab_size']}, the data has {vocab_size}"
        )
    config = config_cls(**cfg)
    _validate(arch, config)
    return model_cls(config)


def _validate(arch: str, config: Any) -> None:
    """Reject values torch would fail on later with a less helpful message (the typed config,
    seqlab.config, checks every key; vocab_size comes from the data and is checked >= 1).
    Imported here, not at the top: the models themselves need torch alone (the GPU benchmark
    runs on a machine without pydantic)."""
    from seqlab.config import ARCH_MODELS
    from seqlab.config_load import check_params

    values = dataclasses.asdict(config)
    if values.pop("vocab_size") < 1:
        raise SeqlabError(f"model.vocab_size: {config.vocab_size} must be >= 1")
    check_params(ARCH_MODELS[arch], {"arch": arch, **values}, "model")


def model_spec(model: nn.Module) -> dict[str, Any]:
    """The config dict (arch + fields, vocab_size included) that rebuilds `model`."""
    for arch, (_, model_cls) in ARCHS.items():
        if type(model) is model_cls:
            return {"arch": arch, **dataclasses.asdict(model.config)}
    raise SeqlabError(f"{type(model).__name__}: not a seqlab model")


def count_params(model: nn.Module) -> int:
    """Number of parameters, a tied tensor counted once (nn.Module.parameters dedups)."""
    return sum(p.numel() for p in model.parameters())
