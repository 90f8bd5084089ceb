"""LSTM language model: Embedding -> multi-layer LSTM -> dropout -> Linear.

The initialisation is the one the hand-run LSTM study found to converge at lr 1e-2:
orthogonal recurrent weights, forget-gate bias 1.0, no weight decay needed.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn as nn

from seqlab.config import LSTMConfig


class LSTMLM(nn.Module):
    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(
            config.n_embd,
            config.hidden,
            config.n_layer,
            # nn.LSTM applies dropout only between layers; with one layer it would only warn.
            dropout=config.dropout if config.n_layer > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(config.hidden, config.vocab_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Init per gate block (PyTorch packs the gates as i, f, g, o along dim 0).

        - weight_hh: each H x H gate block orthogonal, so the recurrence neither explodes nor
          vanishes at the start;
        - weight_ih: each H x in gate block xavier_uniform (fan computed per gate, not over 4H);
        - biases zero, except the forget slice of b_ih = 1.0 (b_hh stays 0, so the forget-gate
          bias is 1.0 in total): cells remember by default (Gers et al. 2000, Jozefowicz 2015);
        - embedding normal(0, 0.1) and output weight uniform(-0.1, 0.1), bias 0 (PyTorch's
          word_language_model): small logits, so the initial loss is close to ln(V).
        """
        H = self.config.hidden
        nn.init.normal_(self.wte.weight, mean=0.0, std=0.1)
        for layer in range(self.config.n_layer):
            w_ih = getattr(self.lstm, f"weight_ih_l{layer}")
            w_hh = getattr(self.lstm, f"weight_hh_l{layer}")
            b_ih = getattr(self.lstm, f"bias_ih_l{layer}")
            b_hh = getattr(self.lstm, f"bias_hh_l{layer}")
            for gate in range(4):
                nn.init.xavier_uniform_(w_ih[gate * H : (gate + 1) * H])
                nn.init.orthogonal_(w_hh[gate * H : (gate + 1) * H])
            b_ih.zero_()
            b_hh.zero_()
            b_ih[H : 2 * H] = 1.0  # forget gate
        nn.init.uniform_(self.lm_head.weight, -0.1, 0.1)
        nn.init.zeros_(self.lm_head.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: LongTensor[B, T] -> logits[B, T, V]; each sequence starts from a zero state."""
        x = self.wte(idx)
        if _cpu_autocast_bf16(x) and not cpu_bf16_lstm_supported():
            # oneDNN has a bf16 LSTM only on CPUs with AVX-512: elsewhere the recurrence runs
            # in fp32 and the rest of the model stays under BF16 autocast
            with torch.autocast("cpu", enabled=False):
                h, _ = self.lstm(x.float())
        else:
            h, _ = self.lstm(x)
        return self.lm_head(self.drop(h))


def _cpu_autocast_bf16(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
    )


@cache
def cpu_bf16_lstm_supported() -> bool:
    """Whether this CPU runs nn.LSTM under BF16 autocast (asked once per process)."""
    lstm = nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True
