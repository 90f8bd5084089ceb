"""Shared fixtures: small real datasets on disk, one torch thread (the machines are shared)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from seqlab.config_load import adapter, errors_of
from seqlab.data.manifest import write_unit_manifest
from seqlab.data.shards import Utterance, write_shards
from seqlab.data.store import StoreWriter
from seqlab.errors import SeqlabError

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def markov_utterances(n: int, seed: int, vocab: int = 64, prefix: str = "u"):
    """Sticky first-order Markov units: learnable structure, realistic repeats."""
    rng = np.random.default_rng(seed)
    trans = np.random.default_rng(123).dirichlet(np.full(vocab, 0.1), size=vocab)
    for i in range(n):
        length = int(rng.integers(20, 120))
        u = [int(rng.integers(vocab))]
        for _ in range(length - 1):
            u.append(u[-1] if rng.random() < 0.5 else int(rng.choice(vocab, p=trans[u[-1]])))
        yield Utterance(f"{prefix}{i:05d}", np.array(u, np.uint16), {"speaker": f"s{i % 3}"})


def make_unit_dataset(root: Path, n_train: int = 200, n_eval: int = 30, vocab: int = 64) -> Path:
    """A small real dataset (shards + manifest); returns the manifest path."""
    shards, store = {}, {}
    for split, n, seed, prefix in (("train", n_train, 1, "tr"), ("eval", n_eval, 2, "ev")):
        writer = StoreWriter(root, split, vocab)
        utts = markov_utterances(n, seed, vocab, prefix)
        shards[split] = write_shards(utts, root, split, 64, store=writer)
        store[split] = writer.close()
    write_unit_manifest(root / "manifest.json", "markov", "synthetic_units", vocab, shards,
                   {"kind": "markov"}, store=store)  # fmt: skip
    return root / "manifest.json"


@pytest.fixture(scope="session")
def unit_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_unit_dataset(tmp_path_factory.mktemp("units"))


#: a tiny synthetic corpus and LSTM for real snakemake runs (seconds per trial)
TINY_DATASET = {
    "kind": "synthetic_units",
    "seed": 3,
    "lexicon_size": 200,
    "n_train_utterances": 120,
    "n_eval_utterances": 20,
}
TINY_TRAIN = {
    "model": {"arch": "lstm", "n_embd": 16, "hidden": 16, "n_layer": 1, "dropout": 0.0},
    "optim": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99]},
    "schedule": {"name": "constant"},
    "max_steps": 6,
    "batch_size": 4,
    "seq_len": 32,
    "grad_clip": 5.0,
    "eval_interval": 3,
    "eval_batches": 2,
    "ckpt_interval": 3,
    "log_interval": 2,
    "milestones": [3],
}


def curves(trial_dir: Path) -> list[dict]:
    """Train/eval records of a trial's log.jsonl without the wall-clock fields: what two runs
    that should match bitwise are compared on."""
    out = []
    for line in (trial_dir / "log.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["kind"] in ("train", "eval"):
            e.pop("tok_s", None)
            e.pop("time", None)
            out.append(e)
    return out


def tiny_trial(manifest: Path, **train: object) -> dict:
    """A resolved trial config for a tiny LSTM: seconds on one CPU thread."""
    cfg = {
        "model": {"arch": "lstm", "n_embd": 32, "hidden": 32, "n_layer": 1, "dropout": 0.1},
        "optim": {"name": "adam", "lr": 1e-2, "betas": [0.9, 0.99]},
        "schedule": {"name": "cosine", "warmup": 2},
        "max_steps": 12,
        "batch_size": 8,
        "seq_len": 32,
        "grad_clip": 5.0,
        "eval_interval": 4,
        "eval_batches": 2,
        "ckpt_interval": 4,
        "log_interval": 2,
        "milestones": [4, 10],
    }
    cfg.update(train)
    return {
        "experiment": "t",
        "run": "base",
        "seed": 0,
        "task": "unit_lm",
        "data": {"dataset": "markov", "manifest": str(manifest)},
        "train": cfg,
    }


def parse(cls: type[T], data: Any, where: str) -> T:
    """One block (a `train:`, a dataset) validated as `cls` as the config loader validates it;
    SeqlabError names each problem's key under `where`."""
    try:
        return adapter(cls).validate_python(data)
    except ValidationError as e:
        raise SeqlabError("; ".join(errors_of(cls, e, where))) from None
