"""Numeric precision modes of the loop: what is cast, what autocasts, who scales the loss.

fp32        weights, activations and optimizer state in float32
amp_bf16    float32 weights, bfloat16 autocast for the forward
bf16_pure   weights (and so optimizer state) in bfloat16, no autocast
amp_fp16    float32 weights, float16 autocast, GradScaler (dynamic loss scaling)
fp16_naive  weights in float16, no scaling: may overflow / underflow and diverge
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass
class Precision:
    mode: str
    device_type: str

    @property
    def param_dtype(self) -> torch.dtype:
        return {"bf16_pure": torch.bfloat16, "fp16_naive": torch.float16}.get(
            self.mode, torch.float32
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.mode == "amp_bf16":
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        if self.mode == "amp_fp16":
            return torch.autocast(self.device_type, dtype=torch.float16)
        return contextlib.nullcontext()

    def scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is a no-op except under amp_fp16."""
        return torch.amp.GradScaler(self.device_type, enabled=self.mode == "amp_fp16")


def unsupported_reason(mode: str, device: torch.device) -> str | None:
    """Why `mode` cannot run on `device` (None if it can), probed with a tiny real step."""
    if mode == "fp32":
        return None
    if device.type == "cuda":
        if mode in ("amp_bf16", "bf16_pure") and not torch.cuda.is_bf16_supported():
            return f"{torch.cuda.get_device_name(device)} has no bfloat16 support"
        return None
    prec = Precision(mode, device.type)
    try:
        lin = torch.nn.Linear(8, 8).to(device=device, dtype=prec.param_dtype)
        x = torch.randn(4, 8, device=device, dtype=prec.param_dtype)
        with prec.autocast():
            y = lin(x).float().sum()
        y.backward()
    except Exception as e:  # the op set of this device lacks the dtype
        return f"{mode} unsupported on {device.type}: {type(e).__name__}: {str(e).splitlines()[0]}"
    return None
