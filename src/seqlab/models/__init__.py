"""Model zoo: one file per architecture, built from a config dict by `build_model`.

The language models (`lstm`, `gpt2`) map token ids LongTensor[B, T] -> logits[B, T, V]; their
loss is the training task's (`seqlab.train.tasks.lm_loss`). The CTC decoder (`gru_ctc`) maps
features (B, T, C), day ids (B,) and frame counts (B,) -> logits (B, T', classes) over fewer,
unfolded frames; its CTC loss and the decoding of a split sit beside it in its file, because
training (best checkpoint by PER) and evaluation share them. Every model carries `.config`, its
block of seqlab.config, that `model_spec` turns back into a dict that `build_model` accepts, so a
checkpoint can rebuild its model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch.nn as nn

from seqlab.config import GPTConfig, GRUCTCConfig, LSTMConfig, ModelBlock, from_dict
from seqlab.errors import SeqlabError
from seqlab.models.gpt2 import GPT, estimate_flops_per_token, gpt_num_params
from seqlab.models.gru_ctc import GRUCTC
from seqlab.models.lstm import LSTMLM

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


def build_model(cfg: ModelBlock | dict[str, Any], vocab_size: int) -> nn.Module:
    """Build the model that cfg (a `model:` block of seqlab.config, or its dict) names.

    vocab_size comes from the data, not the config; cfg may repeat it (as `model_spec` does)
    only with the same value. The values were checked when the config loaded (seqlab.config_load).
    Initialisation draws from torch's global RNG, so seed it first.
    """
    spec = dict(cfg) if isinstance(cfg, dict) else dataclasses.asdict(cfg)
    spec = {k: v for k, v in spec.items() if v is not None}  # None: the data's size
    arch = spec.get("arch")
    if arch not in ARCHS:
        raise SeqlabError(f"model.arch: {arch!r} is not one of {sorted(ARCHS)}")
    config_cls, model_cls = ARCHS[arch]
    config = from_dict(config_cls, {"vocab_size": vocab_size, **spec}, "model")
    if config.vocab_size != vocab_size:
        raise SeqlabError(
            f"model.vocab_size: config says {config.vocab_size}, the data has {vocab_size}"
        )
    return model_cls(config)


def model_spec(model: nn.Module) -> dict[str, Any]:
    """The config dict (arch + fields, vocab_size included) that rebuilds `model`."""
    for _, model_cls in ARCHS.values():
        if type(model) is model_cls:
            return dataclasses.asdict(model.config)
    raise SeqlabError(f"{type(model).__name__}: not a seqlab model")


def count_params(model: nn.Module) -> int:
    """Number of parameters, a tied tensor counted once (nn.Module.parameters dedups)."""
    return sum(p.numel() for p in model.parameters())
