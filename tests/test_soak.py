"""Soak: a trial SIGKILLed at 20 random moments, half of them while a checkpoint is being
written, still ends bitwise where an uninterrupted one does, with no temp file left.

The trial runs in forked processes (real processes, really killed) so that the 20 restarts
do not pay 20 interpreter and torch start-ups on a shared 2-core machine.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from conftest import curves, tiny_trial

from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.loop import train

KILLS = 20


def _quiet(_line: str) -> None:
    pass


def _run(trial: dict, out: Path) -> None:
    train(trial, out, echo=_quiet)


def _temps(trial_dir: Path) -> list[Path]:
    return list(trial_dir.rglob(".*.tmp"))


def _kill_while_writing(proc: multiprocessing.Process, ckpt: Path, timeout: float) -> bool:
    """SIGKILL as soon as a checkpoint temp file exists; True if one did."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.is_alive():
        if ckpt.is_dir() and any(n.endswith(".tmp") for n in os.listdir(ckpt)):
            os.kill(proc.pid, signal.SIGKILL)
            return True
        time.sleep(0.0005)
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
    return False


@pytest.mark.slow
def test_twenty_sigkills_end_bitwise_with_no_temp_left(unit_manifest: Path, tmp_path: Path):
    model = {"arch": "lstm", "n_embd": 16, "hidden": 16, "n_layer": 1, "dropout": 0.1}
    trial = tiny_trial(unit_manifest, model=model, batch_size=4, seq_len=16, max_steps=240,
                       ckpt_interval=3, eval_interval=40, log_interval=5)  # fmt: skip
    t0 = time.time()
    train(trial, tmp_path / "full", echo=_quiet)
    full_s = time.time() - t0
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(0)
    out, mid_write = tmp_path / "soak", 0
    for k in range(KILLS):
        proc = ctx.Process(target=_run, args=(trial, out))
        proc.start()
        if k % 2:
            time.sleep(rng.uniform(0.05, 0.8) * full_s / 10)
            proc.kill()
        else:
            mid_write += _kill_while_writing(proc, out / "ckpt", full_s / 3)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL, f"kill {k}: the trial ended before it"
    print(f"{mid_write} of {KILLS} kills during a checkpoint write; full run {full_s:.1f}s")
    assert mid_write >= 3, "too few kills landed during a checkpoint write"
    proc = ctx.Process(target=_run, args=(trial, out))
    proc.start()
    proc.join()
    assert proc.exitcode == 0
    assert curves(tmp_path / "full") == curves(out)
    a = load_checkpoint(tmp_path / "full" / "model.pt")
    b = load_checkpoint(out / "model.pt")
    assert a["step"] == b["step"] and all(
        torch.equal(a["model"][k], b["model"][k]) for k in a["model"]
    )
    assert not _temps(out)
