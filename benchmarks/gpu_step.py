#!/usr/bin/env python
"""Steady-state training step speed per model and precision, and K trials packed on one GPU.

    PYTHONPATH=src python benchmarks/gpu_step.py            # the issue's shapes on CUDA
    PYTHONPATH=src python benchmarks/gpu_step.py --quick    # small shapes (what CPU runs)

Runs from the source tree with torch and numpy alone: synthetic batches (content does not
matter for speed), the models of seqlab.models, the optimizer, precision and update of
seqlab.train (`clip_gradients`, `optimizer_step`: a non-finite update skipped on the device),
CTC augmentation of seqlab.train.ctc drawn on the device. No data loading, no Snakemake.

Per model x precision it prints tokens/s (frames/s for CTC), ms/step (median over timed
blocks), MFU (GPT-2 only: nanoGPT's 6N + 12LHQT flops against the device's dense bf16 peak)
and host syncs per step, counted with torch.cuda.set_sync_debug_mode("warn") over a few
steps (CUDA only). Packing: K = 1, 4, 8, 16 LSTM trials as K processes on one GPU, aggregate
tokens/s = all tokens / (last end - first start) of their timed windows, which start
together at a set time after every process has started and warmed up.
Models: LSTM 256/256/2 at 32 x 128 (vocab 258: 256 units + BOS + EOS), GPT-2 124M at
12 x 1024, GRU-CTC baseline (1024 x 5 bidirectional, 256 features, 24 days) at 64 x 1000
frames. On CPU the shapes are small and the output says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from seqlab.config import Augment
from seqlab.models import GPTConfig, build_model, estimate_flops_per_token
from seqlab.train.augment import augment
from seqlab.train.optim import build_optimizer, clip_gradients, optimizer_step
from seqlab.train.precision_modes import (
    Precision,
    device_peak_flops,
    unsupported_reason,
)

#: name -> (model config, vocab, batch, seq) at full size and small (CPU) size
MODELS = {
    "lstm": ({"arch": "lstm", "n_embd": 256, "hidden": 256, "n_layer": 2}, 258, 32, 128,
             {"arch": "lstm", "n_embd": 64, "hidden": 64, "n_layer": 1}, 258, 8, 32),
    "gpt2": ({"arch": "gpt2", "n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024,
              "pad_vocab_multiple": 64}, 50257, 12, 1024,
             {"arch": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64},
             257, 4, 64),
    "gru_ctc": ({"arch": "gru_ctc", "n_features": 256, "n_days": 24, "hidden": 1024,
                 "n_layer": 5}, 41, 64, 1000,
                {"arch": "gru_ctc", "n_features": 32, "n_days": 4, "hidden": 64, "n_layer": 1,
                 "kernel_len": 8}, 41, 8, 200),
}  # fmt: skip
OPTIM = {"name": "adamw", "lr": 1e-4, "betas": [0.9, 0.95], "weight_decay": 0.1}
AUG = Augment(white_noise=0.8, constant_offset=0.2, time_mask_width=20, time_mask_max=2)


def make_batch(arch: str, vocab: int, B: int, T: int, cfg: dict, device: torch.device):
    """A synthetic batch as the tasks stage it (CTC lengths on the host, pinned on CUDA)."""
    g = torch.Generator().manual_seed(0)
    if arch != "gru_ctc":
        x = torch.randint(0, vocab, (B, T + 1), generator=g)
        return x[:, :-1].to(device), x[:, 1:].to(device)
    lens = torch.randint(T // 2, T + 1, (B,), generator=g)
    lens[0] = T
    pin = (lambda t: t.pin_memory()) if device.type == "cuda" else (lambda t: t)
    return {"x": torch.randn(B, T, cfg["n_features"], generator=g).to(device),
            "days": torch.randint(0, cfg["n_days"], (B,), generator=g).to(device),
            "y": torch.randint(1, vocab, (B, T // 20), generator=g).to(device),
            "frame_lens": pin(lens), "phone_lens": pin(torch.full((B,), T // 20))}  # fmt: skip


def loss_of(model: torch.nn.Module, arch: str, batch, step: int) -> torch.Tensor:
    if arch != "gru_ctc":
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
    x = augment(batch["x"], batch["frame_lens"], AUG, seed=step)
    logits = model(x, batch["days"], batch["frame_lens"])
    out_lens = model.out_lengths(batch["frame_lens"])
    logp = logits.float().log_softmax(-1).transpose(0, 1)
    return F.ctc_loss(logp, batch["y"], out_lens, batch["phone_lens"], zero_infinity=True)


def bench(
    arch: str, precision: str, device: torch.device, quick: bool, steps: int,
    start_at: float = 0.0,
) -> dict:  # fmt: skip
    """start_at: unix time to start the timed blocks (packed trials start them together)."""
    spec = MODELS[arch]
    cfg, vocab, B, T = spec[4:] if quick else spec[:4]
    reason = unsupported_reason(precision, device)
    if reason:
        return {"model": arch, "precision": precision, "skipped": reason}
    torch.manual_seed(0)
    prec = Precision(precision, device.type)
    model = build_model(cfg, vocab).to(device, prec.param_dtype).train()
    opt, scaler = build_optimizer(model, OPTIM), prec.scaler()
    batch = make_batch(arch, vocab, B, T, cfg, device)
    cuda = device.type == "cuda"

    def step(i: int) -> torch.Tensor:
        with prec.autocast():
            loss = loss_of(model, arch, batch, i)
            scaler.scale(loss).backward()
        gnorm = clip_gradients(opt, scaler, model.parameters(), 1.0)
        optimizer_step(opt, scaler, loss.detach(), gnorm, True)
        return loss

    for i in range(3):  # warm-up: cuDNN plans, allocator, optimizer state
        step(i)
    syncs = None
    if cuda:
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            for i in range(5):
                step(i)
            torch.cuda.set_sync_debug_mode(0)
        syncs = sum("synchroniz" in str(w.message) for w in caught) / 5
    time.sleep(max(0.0, start_at - time.time()))
    times, window_start = [], time.time()
    for _ in range(3):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(steps):
            loss = step(i)
        float(loss.detach())  # one read per block, as the loop does per log interval
        times.append((time.perf_counter() - t0) / steps)
    ms = statistics.median(times) * 1000
    tok_s = B * T / (ms / 1000)
    row = {"model": arch, "precision": precision, "shape": f"{B}x{T}", "tokens_per_s": tok_s,
           "ms_per_step": ms, "syncs_per_step": syncs, "mfu": None, "tokens": 3 * steps * B * T,
           "window": (window_start, time.time())}  # fmt: skip
    if arch == "gpt2":
        fields = {k: v for k, v in cfg.items() if k not in ("arch", "block_size")}
        fpt = estimate_flops_per_token(GPTConfig(**fields, vocab_size=vocab, block_size=T))
        peak, _ = device_peak_flops(device)
        row["mfu"] = fpt * tok_s / peak if peak else None
    return row


def worker(args: argparse.Namespace) -> None:
    """One packed trial: the LSTM's timed window, as JSON on stdout."""
    device = torch.device(args.device)
    print(json.dumps(bench("lstm", "fp32", device, args.quick, args.steps, args.start_at)))


def packed(k: int, device: str, quick: bool, steps: int) -> float:
    start_at = time.time() + (10 + k if device.startswith("cuda") else 20 + 10 * k)  # start-up
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--device",
        device,
        "--steps",
        str(steps),
        "--start-at",
        str(start_at),
    ] + (["--quick"] if quick else [])
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    rows = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    span = max(r["window"][1] for r in rows) - min(r["window"][0] for r in rows)
    return sum(r["tokens"] for r in rows) / span


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes (always on CPU)")
    ap.add_argument("--steps", type=int, default=0, help="steps per timed block")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = torch.device(args.device)
    args.quick = args.quick or device.type != "cuda"
    args.steps = args.steps or (3 if args.quick else 20)
    if args.worker:
        return worker(args)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# device: {name}; torch {torch.__version__}" + (
        "; SMALL SHAPES (CPU / --quick): not the issue's sizes" if args.quick else ""))  # fmt: skip
    print(f"{'model':8} {'precision':9} {'shape':9} {'tokens/s':>10} {'ms/step':>8} "
          f"{'MFU':>6} {'syncs/step':>10}")  # fmt: skip
    runs = [("lstm", "fp32"), ("lstm", "amp_bf16"), ("gpt2", "amp_bf16"), ("gpt2", "fp32"),
            ("gru_ctc", "fp32"), ("gru_ctc", "amp_bf16")]  # fmt: skip
    for arch, precision in runs:
        try:
            r = bench(arch, precision, device, args.quick, args.steps)
        except Exception as e:  # one failing configuration does not hide the others
            print(f"{arch:8} {precision:9} error: {type(e).__name__}: {str(e).splitlines()[0]}")
            continue
        if "skipped" in r:
            print(f"{arch:8} {precision:9} skipped: {r['skipped']}")
            continue
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        syncs = f"{r['syncs_per_step']:.1f}" if r["syncs_per_step"] is not None else "n/a"
        print(f"{arch:8} {precision:9} {r['shape']:9} {r['tokens_per_s']:10.0f} "
              f"{r['ms_per_step']:8.2f} {mfu:>6} {syncs:>10}", flush=True)  # fmt: skip
    ks = (1, 2) if device.type != "cuda" else (1, 4, 8, 16)
    for k in ks:
        agg = packed(k, args.device, args.quick, args.steps * (1 if args.quick else 10))
        print(f"packed LSTM fp32: K={k:2d} trials, aggregate {agg:10.0f} tokens/s", flush=True)


if __name__ == "__main__":
    main()
