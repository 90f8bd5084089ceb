"""results/report.html: one self-contained page (inline SVG and CSS, no scripts, no network).

It leads with the answers (seqlab.report.overview: experiments, best runs, what mattered, the
comparisons with a verdict each), then one section per experiment: its runs, plots with
captions a person can read, per-seed plateau detail, the run ledger and the trial files.

Sections carry stable ids (``overview``, ``compare``, ``exp-{name}``, ``exp-{name}-curves``...)
for browser tests and links. No generation time is written, so the same inputs give the same
bytes. The ledger (Markdown) is rendered by markdown-it-py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from seqlab.files import atomic_write, read_json
from seqlab.report.compare import fmt_mean_std
from seqlab.report.factors import FACTOR_HEADER, factor_rows
from seqlab.report.overview import overview
from seqlab.report.tables import CSS, Html, breakable, html_table, short_hash, slug, verdict_list

#: figure captions by file name: what the reader is looking at and how to read it
CAPTIONS = {
    "train_loss.svg": "Training loss of each run over steps: the line is the mean over seeds, "
    "the band the min–max over seeds; the dashed line is the unigram entropy of the data, where a "
    "model that has learnt only unit frequencies sits (the plateau).",
    "eval.svg": "The metric that picks each trial's best checkpoint (eval loss, or PER for CTC) "
    "on the held-out split over training; mean over seeds, band min–max.",
    "best.svg": "Best value of that metric per run, best run on top: one dot per seed, the "
    "black tick the mean ± 1 std. The axis spans the per-seed values, not zero; when runs lie "
    "far apart, the right panel shows each seed's distance from its run's mean.",
    "swuggy.svg": "sWUGGY lexical accuracy per run (a dot per seed) against chance and the "
    "set's controls; a model is credible only to the right of both. Right: over training.",
    "sblimp.svg": "sBLIMP syntactic accuracy per run (a dot per seed) against chance and the "
    "set's controls (unit unigram, word unigram: word-order-blind); a model is credible only "
    "to the right of them. Right: over training, all voices and held-out voices.",
    "precision.svg": "Each precision mode relative to fp32 on the same settings: throughput, "
    "peak memory and final eval loss; red = diverged, grey = skipped on this device.",
}


def inline_svg(path: str | Path, prefix: str) -> str:
    """An SVG file's <svg> element with its ids prefixed, so several plots can share a page."""
    text = Path(path).read_text()
    text = text[text.find("<svg") :]
    ids = set(re.findall(r'\bid="([^"]+)"', text))

    def fix(m: re.Match) -> str:
        return f"{m.group(1)}{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(0)

    return re.sub(r'(\bid="|url\(#|href="#)([^")]+)', fix, text)


_MD = MarkdownIt("commonmark").enable("table")


def md_to_html(md: str, shift: int = 2) -> str:
    """Markdown (the ledger) -> HTML, headings moved down `shift` levels to nest in a section."""
    html = _MD.render(md)
    html = re.sub(r"<(/?)h([1-6])>", lambda m: f"<{m[1]}h{min(6, int(m[2]) + shift)}>", html)
    return html.replace("<table>", '<div class="tbl"><table>').replace("</table>", "</table></div>")


def _links(paths: Sequence[str | Path], out_dir: Path) -> str:
    items = []
    for p in paths:
        href = escape(os.path.relpath(p, out_dir), quote=True)
        items.append(f'<a href="{href}">{escape(Path(p).name)}</a>')
    return " · ".join(items)


def _facts(final: Mapping[str, Any]) -> str:
    """Task, trials, data and code versions in one line (hashes shortened, full on hover)."""

    def value(v: Any) -> str:
        if isinstance(v, list):
            return ", ".join(value(x) for x in v)
        text = str(v)
        return short_hash(text) if len(text) > 16 and text.isalnum() else escape(text)

    data, code = dict(final.get("data", {})), final.get("code", {})
    bits = [f"task {escape(str(final.get('task')))}", f"{final.get('n_trials')} trials"]
    dataset = escape(str(data.pop("dataset", "?")))
    bits.append(
        f"data {dataset} ("
        + ", ".join(f"{escape(k)} {value(v)}" for k, v in data.items() if v is not None)
        + ")"
    )
    bits.append("code " + ", ".join(f"{escape(k)} {value(v)}" for k, v in code.items() if v))
    return f'<p class="lead">{" · ".join(bits)}</p>'


def runs_table(final: Mapping[str, Any], table_id: str) -> str:
    """Per run, best first: the ranking metric, loss at each milestone, plateau, stops."""
    rank_by = final.get("rank_by")
    runs = final["runs"]
    order = [r["run"] for r in final.get("ranking", [])] or sorted(runs)
    names = set().union(*(info["metrics"] for info in runs.values()))
    ms = sorted(
        (n for n in names if "@" in n and n.startswith("eval")), key=lambda n: int(n.split("@")[1])
    )
    rows = []
    for run in order:
        info = runs[run]
        p = info.get("plateau") or {}
        flagged = sum(bool(s["plateau"]) for s in p.get("per_seed", []))
        stops = ", ".join(f"{k} ×{v}" for k, v in (info.get("stop_reasons") or {}).items())
        rows.append(
            [
                info.get("rank"),
                Html(f"<code>{breakable(run)}</code>"),
                info["n_seeds"],
                fmt_mean_std(info["metrics"].get(rank_by)),
                *[fmt_mean_std(info["metrics"].get(m)) for m in ms],
                f"{flagged}/{p.get('n_flagged', 0)}" if p.get("rate") is not None else "",
                stops,
            ]
        )
    header = ["#", "run", "seeds", f"{rank_by} (mean ± std)", *ms, "plateau (seeds)", "stops"]
    return html_table(header, rows, table_id)


def plateau_table(final: Mapping[str, Any], table_id: str) -> str:
    """Per run and seed: plateau or not, and the loss (and its source) it was judged on."""
    rows = []
    for run, info in final["runs"].items():
        for s in info["plateau"]["per_seed"]:
            flag = {True: "plateau", False: "learns", None: "?"}[s["plateau"]]
            rows.append(
                [
                    Html(f"<code>{breakable(run)}</code>"),
                    s["seed"],
                    flag,
                    s["loss"],
                    s["step"],
                    s["source"],
                ]
            )
    return html_table(["run", "seed", "verdict", "loss", "at step", "from"], rows, table_id)


def _experiment(name: str, spec: Mapping[str, Any], out_dir: Path) -> str:
    final = spec["final"] if isinstance(spec["final"], Mapping) else read_json(spec["final"])
    sid = f"exp-{slug(name)}"
    parts = [f'<section class="exp" id="{sid}"><h2>{escape(name)}</h2>', _facts(final)]
    if final.get("best_run"):
        model = breakable(str(final.get("best_model_path")))
        parts.append(
            f"<p>Best run <code>{breakable(final['best_run'])}</code> (seed "
            f"{final.get('best_seed')}); its model: <code>{model}</code></p>"
        )
    parts.append(
        f'<div id="{sid}-runs"><h3>Runs, best first</h3>'
        f"{runs_table(final, f'{sid}-runs-table')}</div>"
    )
    factors = final.get("factors")
    if factors:
        verdicts = [(v["kind"], v["text"]) for v in factors["verdicts"]]
        table = html_table(FACTOR_HEADER, factor_rows(factors), f"{sid}-factors-table")
        parts.append(
            f'<div id="{sid}-factors"><h3>What mattered</h3>{verdict_list(verdicts)}'
            f"<p>{escape(factors.get('outcome', {}).get('loss', ''))}: marginal means over the "
            "other grid keys, 95% intervals over seeds; plateau = seeds on which every trial "
            f"plateaued · trials.</p>{table}</div>"
        )
    parts.append(f'<div id="{sid}-curves"><h3>Curves and per-seed values</h3><div class="figs">')
    for j, svg in enumerate(spec.get("plots", [])):
        caption = CAPTIONS.get(Path(svg).name, Path(svg).stem.replace("_", " "))
        parts.append(
            f"<figure>{inline_svg(svg, f'{sid}-p{j}')}"
            f"<figcaption>{escape(caption)} ({_links([svg], out_dir)})</figcaption>"
            "</figure>"
        )
    parts.append("</div></div>")
    parts.append(
        f'<div id="{sid}-plateau"><h3>Plateau, seed by seed</h3>'
        f"{plateau_table(final, f'{sid}-plateau-table')}</div>"
    )
    if spec.get("ledger") and Path(spec["ledger"]).exists():
        parts.append(
            f'<details id="{sid}-ledger"><summary>Run ledger (what each run changed '
            f"and got)</summary>{md_to_html(Path(spec['ledger']).read_text())}"
            "</details>"
        )
    files = [spec[k] for k in ("summary_csv", "ledger") if spec.get(k)]
    if not isinstance(spec["final"], Mapping):
        files.append(spec["final"])
    trials = spec.get("trial_dirs") or final.get("generated_from", [])
    items = "".join(
        f"<li>{breakable(str(t))}: "
        f"{_links([Path(t) / f for f in ('metrics.json', 'config.json', 'log.jsonl')], out_dir)}"
        "</li>"
        for t in trials
    )
    parts.append(
        f'<details id="{sid}-trials"><summary>Files: the experiment\'s and '
        f"{len(trials)} trials'</summary><p>{_links(files, out_dir)}</p>"
        f"<ul>{items}</ul></details>"
    )
    parts.append("</section>")
    return "\n".join(parts)


def build_report(
    experiments: Mapping[str, Mapping[str, Any]],
    compare_csvs: Sequence[str | Path],
    out_html: str | Path,
    title: str = "seqlab report",
) -> Path:
    """Write the page. `experiments[name]` holds final (dict or path), summary_csv, ledger,
    plots (SVG paths) and trial_dirs; `compare_csvs` are results/compare/*.csv."""
    out_dir = Path(out_html).parent
    finals = {
        n: s["final"] if isinstance(s["final"], Mapping) else read_json(s["final"])
        for n, s in experiments.items()
    }
    n_trials = sum(f.get("n_trials", 0) for f in finals.values())
    nav = "".join(f'<a href="#exp-{slug(n)}">{escape(n)}</a>' for n in experiments)
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="lead">{len(finals)} experiments · {n_trials} trials · every number below '
        "is recomputed from the trials' own files.</p>",
        overview(finals, compare_csvs, out_dir),
        f'<nav>Experiments: {nav}<a href="#compare">comparisons</a></nav>',
    ]
    body += [_experiment(name, spec, out_dir) for name, spec in experiments.items()]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return atomic_write(out_html, lambda tmp: tmp.write_text(page, encoding="utf-8"))
