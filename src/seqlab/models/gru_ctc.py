"""GRU + CTC phoneme decoder, computed as neural_seq_decoder's GRUDecoder.

features (B, T, C) -> Gaussian smoothing over time (depthwise, `smooth_kernel` taps, sd
`smooth_width` bins) -> day-specific affine layer (identity-initialised W_d, zero b_d) + softsign
-> [input dropout] -> unfold windows of `kernel_len` bins every `stride_len` bins (B, T', C*K)
-> GRU (orthogonal recurrent, xavier input weights) -> [LayerNorm] -> Linear to 41 classes
(0 = CTC blank). `layer_norm` and `input_dropout` are seed 003's additions (off by default).

Unlike the baseline, padded frames are packed away from the GRU, so a bidirectional model's
backward pass starts at each trial's own end, and batching never changes a trial's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class GRUCTCConfig:
    vocab_size: int = 41  # set from the data: 40 phonemes (39 ARPAbet + SIL) + blank
    n_features: int = 256  # set from the data: 128 threshold crossings + 128 spike power
    n_days: int = 1  # set from the data: one input layer per recording day
    hidden: int = 1024  # GRU units (baseline nUnits)
    n_layer: int = 5  # GRU layers (baseline nLayers)
    bidirectional: bool = True
    dropout: float = 0.4  # between GRU layers (baseline dropout)
    input_dropout: float = 0.0  # on the day layer's output (seed 003)
    layer_norm: bool = False  # LayerNorm on the GRU output (seed 003)
    kernel_len: int = 32  # unfold window in 20 ms bins
    stride_len: int = 4  # unfold stride: one output frame per 80 ms
    smooth: bool = True  # Gaussian smoothing of the input over time
    smooth_width: int = 2  # its sd in bins (baseline gaussianSmoothWidth 2.0)
    smooth_kernel: int = 20  # its taps (baseline: 20)


def gaussian_kernel(width: float, taps: int) -> torch.Tensor:
    """Normalised Gaussian taps, centred at (taps - 1) / 2 as the baseline's."""
    x = torch.arange(taps, dtype=torch.float32) - (taps - 1) / 2
    k = torch.exp(-0.5 * (x / width) ** 2) / (width * math.sqrt(2 * math.pi))
    return k / k.sum()


class GRUCTC(nn.Module):
    def __init__(self, config: GRUCTCConfig) -> None:
        super().__init__()
        self.config = c = config
        C = c.n_features
        self.register_buffer(
            "smoother", gaussian_kernel(c.smooth_width, c.smooth_kernel).repeat(C, 1, 1)
        )
        self.day_weights = nn.Parameter(torch.eye(C).repeat(c.n_days, 1, 1))  # (D, C, C)
        self.day_bias = nn.Parameter(torch.zeros(c.n_days, 1, C))
        self.input_drop = nn.Dropout(c.input_dropout)
        self.gru = nn.GRU(
            C * c.kernel_len,
            c.hidden,
            c.n_layer,
            batch_first=True,
            dropout=c.dropout if c.n_layer > 1 else 0.0,
            bidirectional=c.bidirectional,
        )
        for name, p in self.gru.named_parameters():
            if "weight_hh" in name:
                nn.init.orthogonal_(p)
            elif "weight_ih" in name:
                nn.init.xavier_uniform_(p)
        out = c.hidden * (2 if c.bidirectional else 1)
        self.norm = nn.LayerNorm(out) if c.layer_norm else nn.Identity()
        self.fc = nn.Linear(out, c.vocab_size)

    def out_lengths(self, frame_lens: torch.Tensor) -> torch.Tensor:
        """Output frames per trial after unfolding: floor((T - K) / S) + 1, at least 0."""
        K, S = self.config.kernel_len, self.config.stride_len
        return torch.where(frame_lens >= K, (frame_lens - K) // S + 1, 0)

    def day_layer(self, x: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
        """x @ W_d + b_d per trial; one matmul per day present (no per-trial weight copies)."""
        out = torch.empty_like(x)
        for d in day.unique().tolist():
            m = day == d
            out[m] = x[m] @ self.day_weights[d] + self.day_bias[d]
        return out

    def forward(
        self, x: torch.Tensor, day: torch.Tensor, frame_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, T, C) features, day (B,) day ids, frame_lens (B,) -> logits (B, T', classes)."""
        c = self.config
        if c.smooth:  # depthwise conv over time, 'same' padding (left (k-1)//2, as torch's)
            k = c.smooth_kernel - 1
            x = F.conv1d(
                F.pad(x.transpose(1, 2), (k // 2, k - k // 2)),
                self.smoother.to(x.dtype),
                groups=x.size(-1),
            ).transpose(1, 2)
        x = self.day_layer(x, day)
        x = self.input_drop(F.softsign(x))
        x = x.unfold(1, c.kernel_len, c.stride_len)  # (B, T', C, K): channel-major windows
        x = x.flatten(2)
        if frame_lens is not None and c.bidirectional:  # backward pass from each trial's end
            lens = self.out_lengths(frame_lens).clamp(min=1).cpu()
            packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(
                self.gru(packed)[0], batch_first=True, total_length=x.size(1)
            )
        else:  # forward-only: frames past a trial's end never reach its valid outputs
            h, _ = self.gru(x)
        return self.fc(self.norm(h))
