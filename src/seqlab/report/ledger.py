"""The run ledger (results/{exp}/ledger.md): a hand-kept run-tracking document, generated.

For each run: what it changed relative to the base config (``key: base → new``), its config, and
its result (best metric and step, plateau rate, stability events, stop reasons). Everything comes
from final.json, which comes from the trials, so the ledger cannot go stale.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seqlab.files import atomic_write
from seqlab.report.compare import fmt_mean_std
from seqlab.report.factors import FACTOR_HEADER, factor_rows
from seqlab.report.summary import flatten

_MISSING = object()


def fmt_value(value: Any) -> str:
    """Config values as a reader writes them: 0.0005, [0.9, 0.99], null, adam."""
    if value is _MISSING:
        return "(unset)"
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def lookup(cfg: Mapping[str, Any], dotted: str) -> Any:
    """Value of a dotted key in a nested config; a leading ``train.`` is optional."""
    flat = flatten(cfg)
    for key in (dotted, dotted.removeprefix("train.")):
        if key in flat:
            return flat[key]
    return _MISSING


def changes(overrides: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """``key: base → new`` for every override (even when equal to the base, for clarity)."""
    return [f"{k}: {fmt_value(lookup(base, k))} → {fmt_value(v)}" for k, v in overrides.items()]


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub pipe table ('|' in cells escaped)."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("| " + " | ".join("---" for _ in header) + " |")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def status(info: Mapping[str, Any]) -> str:
    """One word per run, as the hand-kept document did: converged, plateaued, unstable."""
    reasons = info.get("stop_reasons", {})
    rate = info.get("plateau", {}).get("rate")
    if reasons.get("diverged"):
        return "diverged"
    if rate is not None and rate >= 0.5:
        return "plateaued"
    if any(info.get("stability", {}).values()) or (rate or 0) > 0:
        return "unstable"
    return "converged" if rate is not None else "—"


def _num(x: Any, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _run_section(i: int, run: str, info: Mapping[str, Any], final: Mapping, base: Mapping) -> str:
    rank_by = final.get("rank_by", "best_eval_loss")
    m = info["metrics"]
    plateau = info["plateau"]
    seeds = info["seeds"]
    best = seeds.index(info["best_seed"])
    rank_vals = m.get(rank_by, {}).get("values", [None] * len(seeds))
    best_steps = m.get("best_step", {}).get("values", [None] * len(seeds))
    out = [f"## Run {i}: `{run}` — {status(info)}", ""]
    changed = changes(info.get("overrides", {}), base)
    out.append("**Changes from base**:" + ("" if changed else " none (the base config)"))
    out += [f"- `{c}`" for c in changed] + [""]
    cfg = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(info.get("config", {}).items()))
    out += [f"**Config**: {cfg}" if cfg else "**Config**: (not recorded)", ""]
    events = ", ".join(f"{k} {v}" for k, v in info.get("events", {}).items() if v) or "none"
    rate = plateau.get("rate")
    out += [
        "**Result**:",
        f"- {rank_by}: {fmt_mean_std(m.get(rank_by))} over {info['n_seeds']} seeds "
        f"(best: seed {info['best_seed']}, {_num(rank_vals[best])} at step "
        f"{_num(best_steps[best], 0)}); rank {info.get('rank', '?')}/{len(final['runs'])}",
        f"- plateau rate: {'n/a' if rate is None else f'{rate:.0%}'} "
        f"({sum(bool(s['plateau']) for s in plateau['per_seed'])}/{plateau['n_flagged']} seeds)",
        f"- stability: skipped updates {info['stability'].get('n_skipped', 0)}, "
        f"lr cuts {info['stability'].get('n_lr_cuts', 0)}, "
        f"rollbacks {info['stability'].get('n_rollbacks', 0)}; logged events: {events}",
        "- stop reasons: "
        + (", ".join(f"{k} ×{v}" for k, v in info.get("stop_reasons", {}).items()) or "none"),
        "",
    ]
    milestones = sorted((k for k in m if k.startswith("eval_loss@")), key=lambda k: int(k[10:]))
    header = ["seed", rank_by, "best_step", *milestones, "plateau (loss @ step, source)"]
    rows = []
    for j, (seed, p) in enumerate(zip(seeds, plateau["per_seed"], strict=True)):
        flag = {True: "yes", False: "no", None: "?"}[p["plateau"]]
        where = f"{flag} ({_num(p['loss'])} @ {_num(p['step'], 0)}, {p['source']})"
        vals = [_num(m[k]["values"][j]) for k in milestones]
        rows.append([seed, _num(rank_vals[j]), _num(best_steps[j], 0), *vals, where])
    out += [md_table(header, rows), ""]
    return "\n".join(out)


def render_ledger(exp: str, final: Mapping[str, Any], base_train_cfg: Mapping[str, Any]) -> str:
    """The ledger as Markdown: a summary table, then one section per run (base first)."""
    runs = final["runs"]
    order = sorted(runs, key=lambda r: (r != "base", bool(runs[r].get("overrides")), r))
    rule = final.get("plateau", {})
    data, code = final.get("data", {}), final.get("code", {})
    lines = [
        f"# Run ledger: {exp}",
        "",
        f"Generated from {final.get('n_trials', '?')} trials in {len(runs)} runs; do not edit, "
        "rerun the pipeline. Plateau: loss at step "
        f"{rule.get('milestone')} ({rule.get('metric')}) ≥ unigram entropy "
        f"{_num(rule.get('baseline_nats'))} − {rule.get('margin')} nats.",
        "",
        f"Data: {data.get('dataset')} (manifest sha256 {data.get('manifest_sha256')}). "
        f"Code: seqlab {code.get('seqlab')}, git {code.get('git')}, torch {code.get('torch')}.",
        "",
        "## Summary",
        "",
    ]
    rank_by = final.get("rank_by", "best_eval_loss")
    rows = []
    for i, run in enumerate(order, start=1):
        info = runs[run]
        rate = info["plateau"].get("rate")
        rows.append(
            [
                i,
                f"`{run}`",
                "; ".join(changes(info.get("overrides", {}), base_train_cfg)) or "base",
                fmt_mean_std(info["metrics"].get(rank_by)),
                "" if rate is None else f"{rate:.0%}",
                status(info),
            ]
        )
    header = ["#", "run", "changes from base", f"{rank_by} (mean ± std)", "plateau", "status"]
    lines += [md_table(header, rows), ""]
    factors = final.get("factors")
    if factors:
        lines += ["## What mattered", ""]
        lines += [f"- {v['text']}" for v in factors["verdicts"]] + [""]
        outcome = factors.get("outcome", {})
        lines += [
            f"Per grid key and value: the plateau (seeds on which every trial plateaued · "
            f"trials) and the {outcome.get('loss', 'milestone loss')}, marginal means "
            "over the other keys with 95% intervals over seeds.",
            "",
        ]
        lines += [md_table(FACTOR_HEADER, factor_rows(factors)), ""]
    if final.get("best_run"):
        lines += [f"Best run: `{final['best_run']}`, model `{final['best_model_path']}`.", ""]
    for i, run in enumerate(order, start=1):
        lines.append(_run_section(i, run, runs[run], final, base_train_cfg))
    return "\n".join(lines).rstrip() + "\n"


def write_ledger(
    exp: str, final: Mapping[str, Any], base_train_cfg: Mapping[str, Any], path: str | Path
) -> Path:
    """Atomically write results/{exp}/ledger.md."""
    text = render_ledger(exp, final, base_train_cfg)
    return atomic_write(path, lambda tmp: tmp.write_text(text))
