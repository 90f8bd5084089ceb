"""results/report.html: one self-contained page (inline SVG and CSS, no scripts, no network).

Sections carry stable ids (``exp-{name}``, ``exp-{name}-curves``..., ``compare``) for browser
tests and links. No generation time is written, so the same inputs give the same bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from seqlab.io import atomic_write, read_json
from seqlab.report.compare import fmt_mean_std

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}
th{background:#f2f2f2} code{background:#f5f5f5;padding:0 .2em}
figure{margin:1em 0} figure svg{max-width:100%;height:auto} nav a{margin-right:1em}
section.exp{border-top:2px solid #888;margin-top:2em}
"""


def slug(name: str) -> str:
    """A stable, HTML-id-safe form of a name."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "x"


def inline_svg(path: str | Path, prefix: str) -> str:
    """An SVG file's <svg> element with its ids prefixed, so several plots can share a page."""
    text = Path(path).read_text()
    text = text[text.find("<svg") :]
    ids = set(re.findall(r'\bid="([^"]+)"', text))

    def fix(m: re.Match) -> str:
        return f"{m.group(1)}{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(0)

    return re.sub(r'(\bid="|url\(#|href="#)([^")]+)', fix, text)


def _inline(text: str) -> str:
    """Escape, then `code` and **bold** of the ledger's Markdown."""
    text = escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def md_to_html(md: str) -> str:
    """The Markdown subset the ledger uses: headings, bullets, pipe tables, paragraphs."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := re.match(r"(#{1,6}) (.*)", line):
            level = min(len(m.group(1)) + 2, 6)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = re.split(r"(?<!\\)\|", lines[i].strip()[1:-1])
                rows.append([c.strip().replace("\\|", "|") for c in cells])
                i += 1
            head, body = rows[0], [r for r in rows[1:] if not all(set(c) <= {"-"} for c in r)]
            html = "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
            html += "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body
            )
            out.append(f"<table>{html}</table>")
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


def _table(df: pd.DataFrame, table_id: str) -> str:
    if df.empty:
        return "<p>(no rows)</p>"
    return df.to_html(
        index=False,
        border=0,
        na_rep="",
        table_id=table_id,
        escape=True,
        float_format=lambda x: f"{x:.4g}",
    )


def milestone_table(final: Mapping[str, Any]) -> pd.DataFrame:
    """Per run: loss at each milestone and the final/best eval loss, as 'mean ± std'."""
    names = set().union(*(info["metrics"] for info in final["runs"].values()))
    ms = sorted(
        (n for n in names if "@" in n), key=lambda n: (n.split("@")[0], int(n.split("@")[1]))
    )
    cols = ms + [c for c in ("best_eval_loss", "final_eval_loss") if c in names]
    rows = [
        {
            "run": run,
            "seeds": info["n_seeds"],
            **{c: fmt_mean_std(info["metrics"].get(c)) for c in cols},
        }
        for run, info in final["runs"].items()
    ]
    return pd.DataFrame.from_records(rows)


def _seed_flag(s: Mapping[str, Any]) -> str:
    flag = {True: "yes", False: "no", None: "?"}[s["plateau"]]
    loss = "" if s["loss"] is None else f"{s['loss']:.3f}"
    return f"{s['seed']}: {flag} ({loss}, {s['source']})"


def plateau_table(final: Mapping[str, Any]) -> pd.DataFrame:
    """Per run: plateau rate and each seed's flag with the loss it was judged on."""
    rows = []
    for run, info in final["runs"].items():
        p = info["plateau"]
        seeds = "; ".join(_seed_flag(s) for s in p["per_seed"])
        rows.append(
            {
                "run": run,
                "plateau rate": p["rate"],
                "seeds judged": p["n_flagged"],
                "milestone": p["milestone"],
                "margin": p["margin"],
                "baseline (nats)": p["baseline_nats"],
                "per seed (loss, source)": seeds,
            }
        )
    return pd.DataFrame.from_records(rows)


def _links(paths: Sequence[str | Path], out_dir: Path) -> str:
    items = []
    for p in paths:
        href = escape(os.path.relpath(p, out_dir), quote=True)
        items.append(f'<a href="{href}">{escape(Path(p).name)}</a>')
    return " · ".join(items)


def _experiment(name: str, spec: Mapping[str, Any], out_dir: Path) -> str:
    final = spec["final"] if isinstance(spec["final"], Mapping) else read_json(spec["final"])
    sid = f"exp-{slug(name)}"
    parts = [f'<section class="exp" id="{sid}"><h2>{escape(name)}</h2>']
    facts = {
        "task": final.get("task"),
        "trials": final.get("n_trials"),
        "best run": final.get("best_run"),
        "best model": final.get("best_model_path"),
        **{f"data {k}": v for k, v in final.get("data", {}).items()},
        **{f"code {k}": v for k, v in final.get("code", {}).items()},
    }
    parts.append(_table(pd.DataFrame([facts]), f"{sid}-versions"))
    files = [spec[k] for k in ("summary_csv", "ledger") if spec.get(k)]
    if not isinstance(spec["final"], Mapping):
        files.append(spec["final"])
    if files:
        parts.append(f"<p>Files: {_links(files, out_dir)}</p>")
    parts.append(f'<div id="{sid}-curves"><h3>Curves and metrics</h3>')
    for j, svg in enumerate(spec.get("plots", [])):
        parts.append(
            f"<figure>{inline_svg(svg, f'{sid}-p{j}')}"
            f"<figcaption>{escape(Path(svg).name)}</figcaption></figure>"
        )
    parts.append("</div>")
    ranking = pd.DataFrame(final.get("ranking", []), columns=["run", "mean", "std", "n"])
    parts.append(
        f'<div id="{sid}-ranking"><h3>Ranking by {escape(str(final.get("rank_by")))}'
        f"</h3>{_table(ranking, f'{sid}-ranking-table')}</div>"
    )
    parts.append(
        f'<div id="{sid}-milestones"><h3>Loss at milestones (mean ± std over seeds)</h3>'
        f"{_table(milestone_table(final), f'{sid}-milestones-table')}</div>"
    )
    parts.append(
        f'<div id="{sid}-plateau"><h3>Plateau rates</h3>'
        f"{_table(plateau_table(final), f'{sid}-plateau-table')}</div>"
    )
    if spec.get("ledger") and Path(spec["ledger"]).exists():
        parts.append(f'<div id="{sid}-ledger">{md_to_html(Path(spec["ledger"]).read_text())}</div>')
    trials = spec.get("trial_dirs") or final.get("generated_from", [])
    items = "".join(
        f"<li>{escape(str(t))}: "
        f"{_links([Path(t) / f for f in ('metrics.json', 'config.json', 'log.jsonl')], out_dir)}"
        "</li>"
        for t in trials
    )
    parts.append(f'<div id="{sid}-trials"><h3>Trial outputs</h3><ul>{items}</ul></div>')
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
    nav = "".join(f'<a href="#exp-{slug(n)}">{escape(n)}</a>' for n in experiments)
    body = [f"<h1>{escape(title)}</h1>", f'<nav>{nav}<a href="#compare">comparisons</a></nav>']
    body += [_experiment(name, spec, out_dir) for name, spec in experiments.items()]
    body.append('<section id="compare"><h2>Comparisons</h2>')
    for csv in compare_csvs:
        cid = f"compare-{slug(Path(csv).stem)}"
        try:
            table = pd.read_csv(csv)
        except pd.errors.EmptyDataError:
            table = pd.DataFrame()
        body.append(
            f'<div id="{cid}"><h3>{escape(Path(csv).stem)}</h3>'
            f"<p>{_links([csv], out_dir)}</p>{_table(table, f'{cid}-table')}</div>"
        )
    body.append("</section>")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return atomic_write(out_html, lambda tmp: tmp.write_text(page, encoding="utf-8"))
