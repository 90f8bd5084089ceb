"""GPT-2 language model, nanoGPT-style: the whole model in one readable file.

Pre-LayerNorm blocks, causal attention through F.scaled_dot_product_attention (flash /
memory-efficient kernels where the device has them), GELU MLP, learned position embeddings,
the token embedding tied to the output layer, and GPT-2's init (normal 0.02, residual
projections scaled by 1/sqrt(2 * n_layer)).

Vocabulary padding (`pad_vocab_multiple`, 64 turns GPT-2's 50257 into 50304 as nanoGPT does)
only makes the embedding matrix a friendlier size for the matmul kernels; forward() returns
logits SLICED to the real `vocab_size`, so a softmax / cross-entropy over them never gives
probability to the padding rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from seqlab.config import GPTConfig


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()  # exact erf GELU, as nanoGPT (GPT-2 used the tanh approximation)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        V = config.padded_vocab_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(V, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, V, bias=False)
        # Weight tying (Press & Wolf 2017): one matrix embeds tokens and scores them.
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2: scale the init of the projections into the residual stream, whose variance
        # otherwise grows with the 2 * n_layer additions.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: LongTensor[B, T] with T <= block_size -> logits[B, T, vocab_size] (unpadded)."""
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} > block_size {self.config.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        if logits.size(-1) != self.config.vocab_size:
            logits = logits[..., : self.config.vocab_size]
        return logits


def gpt_num_params(config: GPTConfig, non_embedding: bool = False) -> int:
    """Parameter count computed from the shape alone (no model built), tied weights once.

    non_embedding=True subtracts the position embedding, as nanoGPT's get_num_params does
    (the token embedding stays counted: it is also the output layer).
    """
    C, L, V = config.n_embd, config.n_layer, config.padded_vocab_size
    b = int(config.bias)
    ln = C + b * C
    attn = C * 3 * C + b * 3 * C + C * C + b * C
    mlp = C * 4 * C + b * 4 * C + 4 * C * C + b * C
    n = V * C + config.block_size * C + L * (2 * ln + attn + mlp) + ln
    return n - config.block_size * C if non_embedding else n


def estimate_flops_per_token(config: GPTConfig) -> int:
    """Training FLOPs per token, nanoGPT's MFU formula (PaLM appendix B): 6N + 12 L H Q T.

    N is the non-embedding parameter count (forward + backward = 6 FLOPs per weight per token),
    the second term the attention score/value matmuls over a full context of T = block_size.
    """
    N = gpt_num_params(config, non_embedding=True)
    L, H, T = config.n_layer, config.n_head, config.block_size
    Q = config.n_embd // config.n_head
    return 6 * N + 12 * L * H * Q * T
