"""Numeric precision modes of the loop: what is cast, what autocasts, who scales the loss.

fp32        weights, activations and optimizer state in float32
amp_bf16    float32 weights, bfloat16 autocast for the forward
bf16_pure   weights (and so optimizer state) in bfloat16, no autocast
amp_fp16    float32 weights, float16 autocast, GradScaler (dynamic loss scaling)
fp16_naive  weights in float16, no scaling: may overflow / underflow and diverge
auto        amp_bf16 where the device computes bfloat16 natively, else fp32 (resolved once, at
            the start of a trial; metrics.json records the mode that ran)
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


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively, so that autocast makes it faster, not slower.

    CUDA: the device says (Ampere and newer). CPU: oneDNN's own test (AVX-512 or AMX), the one
    that decides whether its bf16 kernels, the LSTM's included, run at all; on a CPU without
    them bf16 is emulated and 2-4x slower than fp32 (docs/benchmarks.md).
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve(mode: str, device: torch.device) -> str:
    """The mode a trial runs: `auto` becomes amp_bf16 or fp32 by `native_bf16`; others stay."""
    if mode != "auto":
        return mode
    return "amp_bf16" if native_bf16(device) else "fp32"


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


def set_tf32(enabled: bool) -> dict[str, str]:
    """Set, explicitly, whether fp32 matmuls and convolutions may use TF32 on CUDA.

    nanoGPT's "float32" turns TF32 on for matmuls, and PyTorch's own default already uses it
    for cuDNN convolutions, so an "fp32" baseline is IEEE fp32 only when this says so. Uses the
    fp32_precision API of torch >= 2.9 (mixing it with allow_tf32 is an error there). Returns
    what is in force, for metrics.json. CPU matmuls are unaffected (mkldnn is reported as is).
    """
    b, mode = torch.backends, "tf32" if enabled else "ieee"
    if hasattr(b.cuda.matmul, "fp32_precision"):
        b.cuda.matmul.fp32_precision = mode
        b.cudnn.conv.fp32_precision = mode
        b.cudnn.rnn.fp32_precision = mode
        return {
            "cuda_matmul": b.cuda.matmul.fp32_precision,
            "cudnn_conv": b.cudnn.conv.fp32_precision,
            "cpu_mkldnn_matmul": getattr(b.mkldnn.matmul, "fp32_precision", "unknown"),
        }
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = enabled  # older torch
    return {"cuda_matmul": mode, "cudnn_conv": mode, "cpu_mkldnn_matmul": "unknown"}


def optim_state_dtypes(opt: torch.optim.Optimizer) -> list[str]:
    """dtypes of the optimizer's state tensors (Adam's moments; the step counter left out).

    torch's Adam/AdamW create the moments with zeros_like(param), so under bf16_pure they are
    bfloat16 too: "pure" means weights, gradients and moments all in bf16, no fp32 master copy.
    """
    dtypes = {
        str(t.dtype).removeprefix("torch.")
        for state in opt.state.values()
        for k, t in state.items()
        if torch.is_tensor(t) and k != "step"
    }
    return sorted(dtypes)


#: dense (no sparsity) bf16 / fp16 tensor-core peak FLOP/s by device-name substring, from the
#: vendors' datasheets; the first match wins, so specific names come first.
PEAK_FLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10", 125e12),
    ("V100", 125e12),  # fp16 only; no bf16
]


def device_peak_flops(device: torch.device) -> tuple[float | None, str]:
    """(peak FLOP/s, what it is) of a CUDA device; (None, why) elsewhere or when unknown."""
    if device.type != "cuda":
        return None, f"no MFU on {device.type}: no tensor-core peak to compare against"
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_FLOPS:
        if key in name:
            return flops, f"{name}: dense bf16/fp16 tensor-core peak {flops / 1e12:.0f} TFLOP/s"
    return None, f"no MFU: peak FLOP/s of {name!r} unknown (add it to precision.PEAK_FLOPS)"
