"""HTML building blocks of the report: cells a reader can scan, tables that fit the page.

Long hashes are shortened with the full value on hover; long names (run ids, paths) may break
after ``__`` and ``/``; numbers are right-aligned with 4 significant digits. Everything is
escaped here, once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from html import escape
from typing import Any

import pandas as pd

#: the page's style: one column of text at laptop width; tables never wider than the page
CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em auto;max-width:1180px;padding:0 1em;
color:#222;line-height:1.4}
h1{margin:.2em 0 .1em} h2{margin:1.2em 0 .4em} h3{margin:1em 0 .3em}
p.lead{color:#555;margin:.2em 0 .8em} nav a{margin-right:1em}
.tbl{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.3em 0 .8em;font-size:.84em}
th,td{border:1px solid #ddd;padding:.15em .45em;text-align:left;vertical-align:top;
overflow-wrap:break-word} td code{overflow-wrap:anywhere}
th{background:#f2f2f2;font-weight:600} td.num{text-align:right;white-space:nowrap}
code{font-family:ui-monospace,monospace,monospace;font-size:.92em;background:#f3f3f3;
padding:0 .2em;overflow-wrap:anywhere}
.hash{font-family:ui-monospace,monospace,monospace;border-bottom:1px dotted #999;cursor:help}
ul.verdicts{margin:.2em 0 .6em;padding-left:1.2em} ul.verdicts li{margin:.15em 0}
.kind-confounded{color:#a33} .verdict{font-weight:600;margin:.2em 0}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(500px,1fr));gap:0 1.5em}
figure{margin:.6em 0 1.2em} figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#444;font-size:.9em;max-width:46em}
section.exp{border-top:2px solid #888;margin-top:2em}
#overview{background:#fafafa;border:1px solid #e4e4e4;border-radius:6px;padding:.2em 1em .6em}
details{margin:.5em 0} summary{cursor:pointer;font-weight:600}
"""


class Html(str):
    """A string that is already HTML (not escaped again by `cell`)."""


HASH = re.compile(r"[0-9a-f]{16,}")


def slug(name: str) -> str:
    """A stable, HTML-id-safe form of a name."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "x"


def short_hash(value: str, keep: int = 10) -> Html:
    """A long hash as its first characters, the full value on hover."""
    full = escape(value, quote=True)
    return Html(f'<span class="hash" title="{full}">{escape(value[:keep])}…</span>')


def breakable(text: str) -> Html:
    """Escaped text that may wrap after run-id separators and path slashes."""
    return Html(re.sub(r"(__|/|,)", r"\1<wbr>", escape(text)))


def cell(value: Any) -> tuple[str, bool]:
    """(HTML of one value, is it a number)."""
    if isinstance(value, Html):
        return str(value), False
    if value is None or isinstance(value, float) and math.isnan(value):
        return "", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        return f"{value:.4g}", True
    text = str(value)
    if HASH.fullmatch(text):
        return str(short_hash(text)), False
    return str(breakable(text)), False


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str) -> str:
    """A table that fits the page (wrapped in a scroller as a last resort)."""
    if not rows:
        return "<p>(no rows)</p>"
    head = "".join(f"<th>{breakable(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        tds = []
        for v in row:
            html, num = cell(v.item() if hasattr(v, "item") else v)
            tds.append(f'<td class="num">{html}</td>' if num else f"<td>{html}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (
        f'<div class="tbl"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def df_table(df: pd.DataFrame, table_id: str) -> str:
    """A DataFrame as html_table (NaN shown empty)."""
    rows = [[None if _isnan(v) else v for v in r] for r in df.itertuples(index=False)]
    return html_table([str(c) for c in df.columns], rows, table_id)


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def verdict_list(items: Sequence[tuple[str, ...]]) -> str:
    """<ul> of (kind, text[, experiment]) verdicts; confounded ones are marked."""
    lis = []
    for kind, text, *exp in items:
        head = f'<a href="#exp-{slug(exp[0])}">{escape(exp[0])}</a>: ' if exp else ""
        lis.append(f'<li class="kind-{escape(kind)}">{head}{escape(text)}</li>')
    return f'<ul class="verdicts">{"".join(lis)}</ul>' if items else ""
