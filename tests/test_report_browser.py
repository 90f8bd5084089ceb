"""report.html opened in headless Chromium: sections and plots render, no console errors.

The page is built from real (tiny) trials through the same calls the rules make. The
screenshot is kept in test-artifacts/report.png for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, tiny_trial
from PIL import Image

from seqlab.io import write_json
from seqlab.report.study import compare, report, summarize_experiment
from seqlab.train.loop import train

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium not installed (make test installs it as root)"
)


@pytest.fixture(scope="module")
def page(unit_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    res = tmp_path_factory.mktemp("browser") / "results"
    for exp, lrs in (("lstm", (1e-2, 1e-4)), ("gpt2", (1e-3,))):
        dirs = []
        for lr in lrs:
            for seed in (0, 1):
                trial = tiny_trial(unit_manifest, optim={"name": "adam", "lr": lr})
                run = f"optim.lr~{lr:g}"
                trial.update(experiment=exp, run=run, seed=seed, overrides={"optim.lr": lr})
                d = res / exp / "runs" / run / f"seed{seed}"
                write_json(d / "config.json", trial)
                train(trial, d, echo=lambda _: None)
                dirs.append(d)
        write_json(res / "checks.json", {"unigram_entropy_nats": 4.0})
        summarize_experiment(dirs, res / "checks.json", res / exp, {"milestone": 4})
    csv = res / "compare" / "lstm_vs_gpt2.csv"
    compare("lstm_vs_gpt2", {"experiments": ["lstm", "gpt2"]}, res, csv)
    return report(["lstm", "gpt2"], res, [csv], res / "report.html")


def chromium(*args: str, user_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_report_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    url = page.resolve().as_uri()
    dom = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url, user_dir=tmp_path / "u1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in ('id="exp-lstm"', 'id="exp-gpt2"', 'id="compare"', 'id="exp-lstm-ledger"'):
        assert section in dom.stdout, section
    assert dom.stdout.count("<svg") >= 6  # the loss-curve and metric plots, inlined
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    assert not re.search(r'(src|href)="(https?:)?//', dom.stdout)  # nothing fetched

    shot = tmp_path / "report.png"
    out = chromium(f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars", url,
                   user_dir=tmp_path / "u2")  # fmt: skip
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    img = Image.open(shot).convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100  # not a blank page
    assert len(img.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20  # text and plots drawn
    keep = ROOT / "test-artifacts"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / "report.png")
