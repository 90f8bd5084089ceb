"""GRU + CTC phoneme decoder, computed as neural_seq_decoder's GRUDecoder.

features (B, T, C) -> Gaussian smoothing over time (depthwise, `smooth_kernel` taps, sd
`smooth_width` bins) -> day-specific affine layer (identity-initialised W_d, zero b_d) + softsign
-> [input dropout] -> unfold windows of `kernel_len` bins every `stride_len` bins (B, T', C*K)
-> GRU (orthogonal recurrent, xavier input weights) -> [LayerNorm] -> Linear to 41 classes
(0 = CTC blank). `layer_norm` and `input_dropout` were added in the hand-kept runs (off by
default).

Unlike the baseline, padded frames are packed away from the GRU, so a bidirectional model's
backward pass starts at each trial's own end, and batching never changes a trial's output.

The model's CTC loss and the decoding of a whole split (PER, per-day PER, mean loss) are here
too: training uses them to pick its best checkpoint by actual PER, evaluation to report it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.config import GRUCTCConfig
from seqlab.data.phonemes import ctc_frames
from seqlab.scoring.per import corpus_per, greedy_decode, per_by_day

if TYPE_CHECKING:  # the data layer's reader of recordings: not on the step's path
    from seqlab.data.neural import NeuralSplit


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
        """Output frames per trial after unfolding (`seqlab.data.phonemes.ctc_frames`)."""
        return ctc_frames(frame_lens, self.config.kernel_len, self.config.stride_len)

    def day_layer(self, x: torch.Tensor, day: torch.Tensor) -> torch.Tensor:
        """x @ W_d + b_d per trial, as one batched matmul: no host sync (a loop over the days
        present would read them back), and one dtype under autocast."""
        return torch.baddbmm(self.day_bias[day], x, self.day_weights[day])

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


# -- loss and decoding ------------------------------------------------------------------------


def ctc_loss(
    logits: torch.Tensor, y: torch.Tensor, out_lens: torch.Tensor, phone_lens: torch.Tensor
) -> torch.Tensor:
    """The baseline's CTC loss (blank 0, mean over trials of loss / target length,
    zero_infinity), computed in float32 whatever the precision."""
    logp = logits.float().log_softmax(-1).transpose(0, 1)  # (T', B, classes)
    return F.ctc_loss(logp, y, out_lens, phone_lens, blank=0, reduction="mean", zero_infinity=True)


def to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """A padded numpy batch (`seqlab.data.neural.pad_batch`) as tensors on `device`."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}


def forward(model: torch.nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """(logits, output lengths, CTC loss) of a padded batch."""
    logits = model(b["x"], b["days"], b["frame_lens"])
    out_lens = model.out_lengths(b["frame_lens"])
    return logits, out_lens, ctc_loss(logits, b["y"], out_lens, b["phone_lens"])


@torch.no_grad()
def decode_split(
    model: torch.nn.Module, sp: NeuralSplit, device: torch.device, batch_size: int = 32
) -> dict[str, Any]:
    """Decode every trial of a split (model in eval mode): PER, per-day PER, mean CTC loss."""
    from seqlab.data.neural import pad_batch

    refs, hyps, loss_sum = [], [], 0.0
    for s in range(0, len(sp), batch_size):
        idx = np.arange(s, min(s + batch_size, len(sp)))
        b = to_device(pad_batch(sp, idx), device)
        logits, out_lens, loss = forward(model, b)
        loss_sum += loss.item() * len(idx)
        hyps += greedy_decode(logits, out_lens)
        refs += [sp.trial(int(i))[1].tolist() for i in idx]
    res = corpus_per(refs, hyps)
    return {
        **res,
        "eval_loss": loss_sum / max(len(sp), 1),
        "n_trials": len(sp),
        "per_day": per_by_day(refs, hyps, sp.days.tolist()),
    }
