"""CTC data augmentation drawn on the device (torch and numpy only, so benchmarks import it
without the data layer): white noise, a constant offset per channel and trial, time masks,
from a generator seeded by (trial seed, batch index)."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from seqlab.config import Augment


def batch_seed(seed: int, index: int, stream: str) -> int:
    """A 63-bit seed per (trial seed, batch index, purpose)."""
    return int(np.random.default_rng([seed, index, zlib.crc32(stream.encode())]).integers(2**63))


def augment(x: torch.Tensor, frame_lens: torch.Tensor, a: Augment, seed: int) -> torch.Tensor:
    """White noise, a constant offset per channel and trial, and time masks (new tensor).

    Drawn where x lives, from a generator seeded by `seed` (a function of seed and step), and
    without a host round trip: the masks are built by comparison, not by a loop over trials.
    """
    dev = x.device
    g = torch.Generator(device=dev).manual_seed(seed)
    B, T, C = x.shape
    if a.white_noise > 0:
        x = x + torch.randn(B, T, C, generator=g, device=dev) * a.white_noise
    if a.constant_offset > 0:
        x = x + torch.randn(B, 1, C, generator=g, device=dev) * a.constant_offset
    if a.time_mask_max > 0 and a.time_mask_width > 0:
        M = a.time_mask_max
        n = torch.randint(0, M + 1, (B, 1), generator=g, device=dev)  # masks per trial
        w = torch.randint(0, a.time_mask_width + 1, (B, M), generator=g, device=dev)
        room = (frame_lens.to(dev, non_blocking=True).view(B, 1) - w).clamp(min=0) + 1
        t0 = (torch.rand(B, M, generator=g, device=dev) * room).long()  # in [0, len - w]
        t = torch.arange(T, device=dev).view(1, 1, T)
        on = (torch.arange(M, device=dev).view(1, M) < n).unsqueeze(-1)
        hit = on & (t >= t0.unsqueeze(-1)) & (t < (t0 + w).unsqueeze(-1))  # (B, M, T)
        x = x * (~hit.any(1)).unsqueeze(-1).to(x.dtype)
    return x
