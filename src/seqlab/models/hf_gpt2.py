"""A seqlab GPT-2 as a Hugging Face `GPT2LMHeadModel`: config.json + model.safetensors.

seqlab's GPT (models/gpt2.py) computes what GPT2LMHeadModel computes; the export maps:

- weights: the same names; GPT-2's Conv1D stores (in, out) where nn.Linear stores (out, in),
  so the c_attn, c_proj and c_fc weights are transposed;
- `bias: false`: GPT-2 always has biases, written as zeros (adding zero, a LayerNorm with a
  zero bias: the same function);
- the exact erf GELU: `activation_function: gelu` (GPT-2's own `gelu_new` is the tanh one);
- LayerNorm eps -> `layer_norm_epsilon`, block_size -> `n_positions`, dropout -> the three
  `*_pdrop` (no effect in eval mode);
- vocabulary padding (`pad_vocab_multiple`): the padding rows are dropped and `vocab_size` is
  the real one. Those rows embed ids that never occur and seqlab's forward slices their logits
  off, so the exported model gives the same logits, of the same shape, with no probability on
  padding;
- the tied embedding / output matrix: saved once as `transformer.wte.weight`
  (`tie_word_embeddings`), as save_pretrained does.

Only torch and safetensors are needed: transformers reads the files, seqlab never imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from seqlab.models.gpt2 import GPT

TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_config(model: GPT, bos: int | None, eos: int | None) -> dict[str, Any]:
    """GPT2Config's fields for `model`, read from the built modules where they hold the value."""
    c, mlp = model.config, model.transformer.h[0].mlp
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.block_size,
        "n_embd": c.n_embd,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_inner": mlp.c_fc.out_features,
        "activation_function": {"none": "gelu", "tanh": "gelu_pytorch_tanh"}[mlp.gelu.approximate],
        "layer_norm_epsilon": model.transformer.ln_f.eps,
        "resid_pdrop": c.dropout,
        "embd_pdrop": c.dropout,
        "attn_pdrop": c.dropout,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": str(model.transformer.wte.weight.dtype).removeprefix("torch."),
    }


def hf_tensors(model: GPT) -> dict[str, torch.Tensor]:
    """The state dict under GPT2LMHeadModel's names and layouts (see the module docstring)."""
    c = model.config
    out = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":  # tied: the same tensor as transformer.wte.weight
            continue
        if name == "transformer.wte.weight":
            t = t[: c.vocab_size]
        elif name.endswith(TRANSPOSED):
            t = t.t()
        out[name] = t.detach().cpu().contiguous()
    for name, module in model.named_modules():  # bias=False: GPT-2's biases are zeros
        if isinstance(module, nn.Linear | nn.LayerNorm) and module.bias is None:
            if name != "lm_head":
                w = module.weight
                out[f"{name}.bias"] = torch.zeros(w.shape[0], dtype=w.dtype)
    return out


def write_hf_gpt2(model: GPT, out_dir: str | Path, bos: int | None, eos: int | None) -> None:
    """config.json and model.safetensors into `out_dir` (which the caller makes and owns).
    The tensors are serialised in memory and written as any file (safetensors' save_file
    would make the file readable by its owner only)."""
    from safetensors.torch import save

    out_dir = Path(out_dir)
    config = hf_config(model, bos, eos)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "model.safetensors").write_bytes(save(hf_tensors(model), {"format": "pt"}))
