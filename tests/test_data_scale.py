"""Memory of ingest + checks stays flat in corpus size (measured in child processes)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

from conftest import PYTHON, ROOT

SCRIPT = ROOT / "benchmarks" / "data_scale.py"
spec = importlib.util.spec_from_file_location("data_scale", SCRIPT)
data_scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(data_scale)  # type: ignore[union-attr]


def ingest_in_child(work: Path, n_units: int) -> dict:
    work.mkdir()
    data_scale.write_gslm_corpus(work / "train.txt", n_units, seed=1, prefix="tr")
    data_scale.write_gslm_corpus(work / "eval.txt", n_units // 100, seed=2, prefix="ev")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [PYTHON, str(SCRIPT), "--child=ingest", "--work", str(work)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "units/s" in r.stderr and "ETA" in r.stderr  # progress lines for the logs
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["text_bytes"] = sum((work / f).stat().st_size for f in ("train.txt", "eval.txt"))
    return out


def test_ingest_and_checks_memory_flat(tmp_path: Path) -> None:
    # both past the first text block (16 MB) and store chunk (4M tokens): the steady state
    small = ingest_in_child(tmp_path / "small", 6_000_000)
    big = ingest_in_child(tmp_path / "big", 12_000_000)
    assert big["units"] == 12_120_000 and small["units"] == 6_060_000
    grew = big["peak_rss_mb"] - small["peak_rss_mb"]
    data_grew = (big["text_bytes"] - small["text_bytes"]) / 2**20  # ~21 MB more text
    # before the store, ingest held every split as lists of arrays (~40 bytes/unit): +150 MB
    assert grew < 0.5 * data_grew, (small, big)
