#!/usr/bin/env python
"""Throughput of each precision mode through the real training loop (no timed assertions).

    python benchmarks/precision.py                       # tiny GPT on CPU, all modes
    python benchmarks/precision.py --size 124m --iters 300 --compile   # GPT-2 124M on a GPU

Each mode trains in a fresh process (the loop of seqlab.train.loop, text_lm task) on random
token bins of the model's vocabulary (content does not matter for speed), then prints the
precision table of the pipeline (seqlab.report.precision_study, relative to fp32) over the trials'
own metrics: tokens/s and ms/iter (medians over log intervals after the first, eval
and checkpoint time excluded), peak memory (CUDA max allocated, or the process's peak RSS on
CPU), MFU (GPU only, nanoGPT's formula against the device's dense bf16 peak) and the stop
reason (diverged / unsupported with its reason).
"""

import argparse
import multiprocessing as mp
import tempfile
from pathlib import Path

import numpy as np

from seqlab.data.prepare import prepare_dataset
from seqlab.data.token_bins import write_bin
from seqlab.files import write_json
from seqlab.report.precision_study import format_precision_table, precision_of_trials
from seqlab.train.loop import train

MODES = ["fp32", "amp_bf16", "bf16_pure", "amp_fp16", "fp16_naive"]
SIZES = {
    "tiny": ({"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 64}, 257, 8, 64, 2),
    "124m": ({"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024}, 50257, 12, 1024, 5),
}


def make_bins(root: Path, vocab: int, n_tokens: int) -> Path:
    rng = np.random.default_rng(0)
    src = root / "src"
    src.mkdir()
    write_bin(src / "train.bin", rng.integers(0, vocab, n_tokens))
    write_bin(src / "val.bin", rng.integers(0, vocab, max(n_tokens // 100, 4096)))
    write_json(src / "meta.json", {"vocab_size": vocab})
    prepare_dataset("bench", {"kind": "token_bins", "path": str(src)}, root / "data")
    return root / "data" / "manifest.json"


def _run(trial: dict, out: str) -> None:
    train(trial, out, echo=lambda _line: None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=list(SIZES), default="tiny")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--modes", nargs="+", default=MODES)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--tf32", action="store_true")
    args = ap.parse_args()
    model, vocab, batch, seq, accum = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_bins(Path(tmp), vocab, max(2_000_000, 4 * batch * seq * accum))
        dirs = []
        for mode in args.modes:
            cfg = {
                "model": {"arch": "gpt2", "dropout": 0.0, "pad_vocab_multiple": 64, **model},
                "optim": {"name": "adamw", "lr": 6e-4, "betas": [0.9, 0.95],
                          "weight_decay": 0.1, "decay_2d_only": True},
                "schedule": {"name": "cosine", "warmup": 10, "min_lr": 6e-5},
                "max_steps": args.iters, "batch_size": batch, "seq_len": seq,
                "grad_accum": accum, "grad_clip": 1.0, "precision": mode,
                "eval_interval": args.iters, "eval_batches": 2, "ckpt_interval": 10**9,
                "log_interval": max(args.iters // 10, 2), "milestones": [],
                "threads": args.threads, "device": args.device, "compile": args.compile,
                "tf32": args.tf32, "guard": {"enabled": False},
            }  # fmt: skip
            trial = {"experiment": "bench", "run": mode, "seed": 0, "task": "text_lm",
                     "data": {"manifest": str(manifest)}, "train": cfg}  # fmt: skip
            out = Path(tmp) / mode
            write_json(out / "config.json", trial)  # what the report's loader reads
            proc = mp.get_context("spawn").Process(target=_run, args=(trial, str(out)))
            proc.start()
            proc.join()
            dirs.append(out)
        # the same table the pipeline writes (results/{exp}/precision.csv), as text
        print(format_precision_table(precision_of_trials(dirs)))


if __name__ == "__main__":
    main()
