#!/usr/bin/env python
"""Data at scale: ingest + checks throughput and memory, and a short trial's start-up, per size.

Builds GSLM text corpora (fairseq quantizer format `name|u1 u2 ...`, 500 units with skewed
frequencies and 50 Hz-like repeats, 100-600 units per utterance, 1% in a separate eval file)
of the given sizes, then per size, each step in a fresh child process (its own peak RSS,
VmHWM, so nothing of the parent counts):

- ingest + checks: `prepare_dataset` (units_text -> packed store) and `check_and_write`;
  units/s by wall clock and per CPU second (the machine may be shared), peak RSS;
- a short trial: a 64-wide LSTM, 20 steps of 32 x 128 tokens on the store: start-up (imports,
  task built, first batch), wall time, peak RSS.

Usage: `python benchmarks/data_scale.py --sizes 10M,100M,1B --work /tmp/seqlab-scale`
(the 1B corpus takes ~4 GB of text plus ~2 GB of store; everything is deleted at the end
unless --keep). Prints one Markdown table row per size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

V = 500
CHUNK = 4_000_000


def _digits() -> tuple[np.ndarray, np.ndarray]:
    text = [str(i).encode() for i in range(V)]
    tab = np.zeros((V, 3), np.uint8)
    for i, t in enumerate(text):
        tab[i, : len(t)] = np.frombuffer(t, np.uint8)
    return tab, np.array([len(t) for t in text])


def write_gslm_corpus(path: Path, n_units: int, seed: int, prefix: str = "utt") -> int:
    """Write ~n_units units as `name|u1 u2 ...` lines, vectorised; returns the units written."""
    rng = np.random.default_rng(seed)
    probs = np.sort(np.random.default_rng(0).dirichlet(np.full(V, 0.3)))[::-1]
    cdf = np.cumsum(probs)
    tab, tab_len = _digits()
    pre = prefix.encode()
    written = line = 0
    with open(path, "wb") as f:
        while written < n_units:
            n = min(CHUNK, n_units - written)
            vals = np.minimum(np.searchsorted(cdf, rng.random(n)), V - 1)
            units = np.repeat(vals, rng.geometric(0.5, n))[:n]  # runs: frames repeat
            L = rng.integers(100, 600, n // 100 + 2)
            L = L[: int(np.searchsorted(np.cumsum(L), n)) + 1]
            L[-1] = n - L[:-1].sum()
            if L[-1] <= 0:
                L = L[:-1]
                L[-1] += n - L.sum()
            ulen = tab_len[units]
            off = np.cumsum(ulen + 1) - (ulen + 1)
            buf = np.empty(int(off[-1] + ulen[-1] + 1), np.uint8)
            for k in range(3):
                m = ulen > k
                buf[off[m] + k] = tab[units[m], k]
            sep = off + ulen
            buf[sep] = 32
            ends = sep[np.cumsum(L) - 1]
            buf[ends] = 10
            raw, starts = buf.tobytes(), np.concatenate([[0], ends[:-1] + 1]).tolist()
            spans = enumerate(zip(starts, ends.tolist(), strict=True))
            f.write(b"".join(b"%s%d|%s" % (pre, line + i, raw[s : e + 1]) for i, (s, e) in spans))
            line += len(L)
            written += n
    return written


def _usage() -> dict[str, float]:
    """CPU time and peak RSS of this process. The peak is VmHWM (reset at exec), not
    ru_maxrss, which Linux carries over from the forking parent (a big parent would count)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    peak = ru.ru_maxrss / 1024
    status = Path("/proc/self/status")
    if status.exists():
        hwm = [ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM:")]
        peak = int(hwm[0].split()[1]) / 1024 if hwm else peak
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": peak}


def child_ingest(work: Path) -> dict:
    from seqlab.data.checks import check_and_write
    from seqlab.data.prepare import prepare_dataset

    t0, c0 = time.perf_counter(), time.process_time()
    cfg = {"kind": "units_text", "train": str(work / "train.txt"),
           "eval": str(work / "eval.txt"), "vocab_size": V}  # fmt: skip
    man = prepare_dataset("scale", cfg, work / "ds")
    t1 = time.perf_counter()
    check_and_write(work / "ds" / "manifest.json", work / "ds" / "checks.json")
    t2 = time.perf_counter()
    units = sum(s["n_units"] for s in man["splits"].values())
    return {"units": units, "ingest_s": t1 - t0, "checks_s": t2 - t1, "wall_s": t2 - t0,
            **_usage(), "cpu_s": time.process_time() - c0}  # fmt: skip


def child_trial(work: Path, t_start: float) -> dict:
    import torch

    from seqlab.config import TrainConfig, from_dict
    from seqlab.train.loop import train
    from seqlab.train.tasks import build_task

    torch.set_num_threads(1)
    cfg = {"model": {"arch": "lstm", "n_embd": 64, "hidden": 64, "n_layer": 1, "dropout": 0.0},
           "optim": {"name": "adam", "lr": 1e-3, "betas": [0.9, 0.99]},
           "schedule": {"name": "constant"}, "max_steps": 20, "batch_size": 32, "seq_len": 128,
           "eval_interval": 20, "eval_batches": 4, "ckpt_interval": 20, "log_interval": 10,
           "milestones": [10]}  # fmt: skip
    data = {"dataset": "scale", "manifest": str(work / "ds" / "manifest.json")}
    trial = {"experiment": "scale", "run": "base", "seed": 0, "task": "unit_lm", "train": cfg,
             "data": data}  # fmt: skip
    task = build_task(trial, from_dict(TrainConfig, cfg, "train"), torch.device("cpu"))
    task.train_batch(0)
    startup = time.perf_counter() - t_start
    shutil.rmtree(work / "trial", ignore_errors=True)
    train(trial, work / "trial", echo=lambda _line: None)
    return {"startup_s": startup, "wall_s": time.perf_counter() - t_start, **_usage()}


def run_child(what: str, work: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, __file__, f"--child={what}", "--work", str(work)],
                       capture_output=True, text=True, env=env)  # fmt: skip
    if r.returncode:
        raise SystemExit(f"{what} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def parse_size(s: str) -> int:
    mult = {"k": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}
    return int(float(s[:-1]) * mult[s[-1]]) if s[-1] in mult else int(s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10M,100M,1B")
    ap.add_argument("--work", default="/tmp/seqlab-scale")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        t_start = time.perf_counter()
        out = child_ingest(Path(args.work)) if args.child == "ingest" else None
        out = out or child_trial(Path(args.work), t_start)
        print(json.dumps(out))
        return
    print("| units | corpus text | ingest + checks | units/s (wall) | units/CPU-s | peak RSS | "
          "trial start-up | 20-step trial | trial peak RSS |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for size in args.sizes.split(","):
        work = Path(args.work) / size
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        n = parse_size(size)
        try:
            write_gslm_corpus(work / "train.txt", n - n // 100, seed=1, prefix="tr")
            write_gslm_corpus(work / "eval.txt", n // 100, seed=2, prefix="ev")
            gb = sum((work / f).stat().st_size for f in ("train.txt", "eval.txt")) / 1e9
            ing = run_child("ingest", work)
            tr = run_child("trial", work)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        rate, cpu_rate = ing["units"] / ing["wall_s"] / 1e6, ing["units"] / ing["cpu_s"] / 1e6
        print(f"| {size} | {gb:.2f} GB | {ing['wall_s']:.1f} s | {rate:.1f}M | {cpu_rate:.1f}M | "
              f"{ing['peak_rss_mb'] / 1024:.2f} GB | {tr['startup_s']:.1f} s | "
              f"{tr['wall_s']:.1f} s | {tr['peak_rss_mb'] / 1024:.2f} GB |")  # fmt: skip


if __name__ == "__main__":
    main()
