"""report.html opened in headless Chromium: sections and plots render, no console errors, the
overview is on the first screen at 1280 px and nothing overflows sideways.

The page is built from real (tiny) trials through the same calls the rules make. The
screenshots are kept in test-artifacts/report.png (first screen) and report-full.png for a
person to look at.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, tiny_trial
from PIL import Image

from seqlab.files import write_json
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


#: appended to a copy of the page: measures the layout and writes it into the DOM, which
#: --dump-dom then prints (the report itself has no scripts)
MEASURE = """<script>
const r = document.getElementById("overview").getBoundingClientRect();
const w = document.documentElement.clientWidth;
const wide = [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest(".tbl"))
  .map(e => e.tagName + "#" + e.id).slice(0, 10);
const out = {scrollWidth: document.documentElement.scrollWidth, clientWidth: w,
  innerHeight: window.innerHeight, overviewTop: r.top, overviewLeft: r.left,
  overviewRight: r.right, tablesScrolling: [...document.querySelectorAll(".tbl")]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.firstChild.id), wide: wide};
const pre = document.createElement("pre"); pre.id = "measure";
pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
</script>"""


def test_report_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    url = page.resolve().as_uri()
    dom = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url, user_dir=tmp_path / "u1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in ('id="overview"', 'id="exp-lstm"', 'id="exp-gpt2"', 'id="compare"',
                    'id="exp-lstm-ledger"', 'id="exp-lstm-factors"'):  # fmt: skip
        assert section in dom.stdout, section
    assert dom.stdout.count("<svg") >= 6  # the loss-curve and metric plots, inlined
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    assert not re.search(r'(src|href)="(https?:)?//', dom.stdout)  # nothing fetched


def test_overview_first_and_nothing_overflows_at_1280px(page: Path, tmp_path: Path) -> None:
    """At laptop width the answers are on the first screen and the page never scrolls sideways
    (no table scrolls inside its box either: long hashes and run ids are shortened/wrapped)."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = chromium("--window-size=1280,800", "--dump-dom", probe.resolve().as_uri(),
                   user_dir=tmp_path / "u1")  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = json.loads(html.unescape(re.search(r'<pre id="measure">(.*?)</pre>', dom.stdout)[1]))
    assert m["scrollWidth"] <= m["clientWidth"], m  # no horizontal overflow
    assert not m["wide"] and not m["tablesScrolling"], m
    assert 0 <= m["overviewTop"] < 0.3 * m["innerHeight"], m  # the overview leads
    assert m["overviewRight"] <= m["clientWidth"], m
    text = dom.stdout
    assert text.index('id="overview"') < text.index('id="exp-lstm"')
    assert "optim.lr" in text[text.index('id="overview-factors"') :][:2000]

    shot = tmp_path / "report.png"
    out = chromium(f"--screenshot={shot}", "--window-size=1280,800", "--hide-scrollbars",
                   page.resolve().as_uri(), user_dir=tmp_path / "u2")  # fmt: skip
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    img = Image.open(shot).convert("L")
    assert img.size[0] == 1280
    lo, hi = img.getextrema()
    assert hi - lo > 100  # not a blank page
    assert len(img.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20  # text drawn
    keep = ROOT / "test-artifacts"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / "report.png")
    full = tmp_path / "full.png"
    chromium(f"--screenshot={full}", "--window-size=1280,4000", "--hide-scrollbars",
             page.resolve().as_uri(), user_dir=tmp_path / "u3")  # fmt: skip
    if full.exists():
        shutil.copy(full, keep / "report-full.png")
