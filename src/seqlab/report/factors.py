"""What mattered, computed: the factor table of an experiment's grid (final.json ``factors``).

For each grid key (a *factor*) and each of its values (a *level*): the plateau rate and the
loss at the plateau milestone as marginal means over the other keys, with a 95% confidence
interval over seeds, and each level's difference from the first level paired by seed. The
study's one-line conclusions ("optim.lr decides the plateau", "optim.name makes no
difference") are then read off these numbers instead of being written by hand.

How the design is read (the anchors are W&B's parameter importance and Optuna's fANOVA; this
is the exact, small-grid version):

- *Aliased keys* (two keys whose values always change together over the runs, as the hand-run
  study's AdamW runs did with lr and betas) are merged into one factor ``a + b`` flagged
  ``confounded``: the data cannot tell their effects apart, and the verdict says so.
- A factor's levels are compared over the *common cells*: the combinations of the other keys
  that occur with every level. On a full factorial grid that is every combination, so the
  marginal means are exact (equal weight per cell); on a one-factor-at-a-time design it is
  the base point. With no common cell the factor is confounded with the keys whose values
  differ between its levels, and its level means (over whatever cells it has) are flagged.
- *Paired by seed*: a seed's value at a level is the mean over the common cells of that
  seed's trials; differences between levels are taken per seed (same seed = same init and
  data order), so seed-to-seed noise cancels. Seeds missing from some cell drop out of the
  pairing; with fewer than two paired seeds the difference is unpaired (Welch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: two-sided 95% Student t quantiles for 1..30 degrees of freedom (no scipy in the stack)
# fmt: off
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)
# fmt: on


def t975(df: float) -> float:
    """The 97.5% quantile of Student's t (1.96 beyond 30 degrees of freedom)."""
    if not math.isfinite(df) or df < 1:
        return math.nan
    return _T975[min(int(df), 30) - 1] if df <= 30 else 1.96


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95% t interval of the finite values; no interval from fewer than two."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    n = len(x)
    if n == 0:
        return {"mean": None, "ci": None, "n": 0}
    half = t975(n - 1) * x.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
    mean = float(x.mean())
    ci = [mean - half, mean + half] if math.isfinite(half) else None
    return {"mean": mean, "ci": ci, "n": n}


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """mean(a) - mean(b) with a Welch 95% interval (unpaired samples)."""
    xa = np.asarray([v for v in a if math.isfinite(v)], float)
    xb = np.asarray([v for v in b if math.isfinite(v)], float)
    if not len(xa) or not len(xb):
        return {"mean": None, "ci": None, "n": 0}
    mean = float(xa.mean() - xb.mean())
    if len(xa) < 2 or len(xb) < 2:
        return {"mean": mean, "ci": None, "n": min(len(xa), len(xb))}
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if se else math.inf
    half = t975(dof) * se if se else 0.0
    return {"mean": mean, "ci": [mean - half, mean + half], "n": min(len(xa), len(xb))}


def _key(v: Any) -> str:
    """A hashable, order-stable identity for a config value (lists such as betas included)."""
    return json.dumps(v, sort_keys=True)


def fmt_level(v: Any) -> str:
    """A level as a reader writes it: 0.0005 -> 5e-4, 0.01 -> 1e-2, [0.9, 0.99] -> 0.9/0.99."""
    if isinstance(v, list | tuple):
        return "/".join(fmt_level(x) for x in v)
    if isinstance(v, float) and (0 < abs(v) < 0.1 or abs(v) >= 1e5):
        mant, exp = f"{v:.3e}".split("e")
        return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _sort_levels(levels: list[Any]) -> list[Any]:
    try:
        return sorted(levels)
    except TypeError:
        return sorted(levels, key=_key)


def alias_groups(runs: Mapping[str, Mapping[str, Any]], keys: Sequence[str]) -> list[list[str]]:
    """Keys that partition the runs identically (always change together), grouped."""

    def partition(k: str) -> frozenset:
        groups: dict[str, set[str]] = {}
        for run, levels in runs.items():
            groups.setdefault(_key(levels[k]), set()).add(run)
        return frozenset(frozenset(g) for g in groups.values())

    out: dict[frozenset, list[str]] = {}
    for k in keys:
        out.setdefault(partition(k), []).append(k)
    return list(out.values())


def _stats_for(trials: list[dict], level_of, cells: set, what: str) -> dict:
    """Per-seed means over `cells` of `what` (loss or plateau 0/1) at each level."""
    per: dict[str, dict[int, float]] = {}
    for t in trials:
        if t["cell"] in cells and t[what] is not None and math.isfinite(t[what]):
            per.setdefault(level_of(t), {}).setdefault(t["seed"], []).append(float(t[what]))
    return {lv: {s: float(np.mean(v)) for s, v in by_seed.items()} for lv, by_seed in per.items()}


def _diff(per_seed: dict, level: str, ref: str, complete: dict) -> dict[str, Any]:
    """level - ref: paired over seeds complete in both, else Welch over the per-seed means."""
    a, b = per_seed.get(level, {}), per_seed.get(ref, {})
    common = [s for s in sorted(set(a) & set(b)) if complete[level].get(s) and complete[ref].get(s)]
    if len(common) >= 2:
        d = [a[s] - b[s] for s in common]
        out = mean_ci(d) | {"paired": True, "per_seed": dict(zip(common, d, strict=True))}
        out["identical"] = all(x == 0.0 for x in d)
        out["same_sign"] = all(x > 0 for x in d) or all(x < 0 for x in d)
        return out
    out = welch(list(a.values()), list(b.values())) | {"paired": False, "per_seed": {}}
    return out | {"identical": False, "same_sign": False}


def factor_table(trials: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """The factor table from trial records ``{run, seed, levels: {key: value}, plateau, loss}``.

    `keys` are the grid's keys; keys with one value over the runs are not factors. Returns
    ``{design, factors: [...], verdicts: [...]}`` (see the module docstring for the method).
    """
    runs = {t["run"]: {k: t["levels"][k] for k in keys} for t in trials}
    varying = [k for k in keys if len({_key(r[k]) for r in runs.values()}) > 1]
    groups = alias_groups(runs, varying)
    seeds = sorted({int(t["seed"]) for t in trials})
    n_full = math.prod(len({_key(r[g[0]]) for r in runs.values()}) for g in groups)
    cells_all = {tuple(_key(r[g[0]]) for g in groups) for r in runs.values()}
    design = {
        "keys": list(keys),
        "factors": [" + ".join(g) for g in groups],
        "n_runs": len(runs),
        "n_cells": len(cells_all),
        "n_full_factorial": n_full,
        "factorial": len(cells_all) == n_full,
        "seeds": seeds,
    }
    recs = []
    for t in trials:
        p = t.get("plateau")
        recs.append(
            {
                **t,
                "plateau": None if p is None else float(p),
                "loss": math.nan if t.get("loss") is None else float(t["loss"]),
            }
        )
    factors = [_factor(g, groups, runs, recs, seeds) for g in groups]
    return {"design": design, "factors": factors, "verdicts": [f["verdict"] for f in factors]}


def _factor(
    group: list[str], groups: list[list[str]], runs: dict, recs: list[dict], seeds: list[int]
) -> dict[str, Any]:
    """One factor's rows, differences from its first level, and verdict."""
    name = " + ".join(group)
    others = [g[0] for g in groups if g is not group]
    lv_value = {_key(runs[r][group[0]]): [runs[r][k] for k in group] for r in runs}
    levels = [_key(v) for v in _sort_levels([vals[0] for vals in lv_value.values()])]
    levels = list(dict.fromkeys(levels))
    cells_at = {lv: set() for lv in levels}
    for vals in runs.values():
        cells_at[_key(vals[group[0]])].add(tuple(_key(vals[o]) for o in others))
    common = set.intersection(*cells_at.values()) if cells_at else set()
    exact = bool(common)
    for t in recs:
        t["cell"] = tuple(_key(runs[t["run"]][o]) for o in others)
    use = common if exact else set.union(*cells_at.values())
    level_of = lambda t: _key(runs[t["run"]][group[0]])  # noqa: E731
    loss = _stats_for(recs, level_of, use, "loss")
    plat = _stats_for(recs, level_of, use, "plateau")
    # a seed is complete at a level when it has a finite value in every cell used there
    n_cells = {lv: len(use & cells_at[lv]) for lv in levels}
    counts: dict[str, dict[int, int]] = {lv: {} for lv in levels}
    for t in recs:
        if t["cell"] in use and math.isfinite(t["loss"]):
            c = counts[level_of(t)]
            c[t["seed"]] = c.get(t["seed"], 0) + 1
    complete = {lv: {s: counts[lv].get(s, 0) == n_cells[lv] for s in seeds} for lv in levels}
    confounded_with = [] if exact else _covarying(group, groups, runs, levels)
    rows = []
    for lv in levels:
        trial_flags = [
            t["plateau"]
            for t in recs
            if t["cell"] in use and level_of(t) == lv and t["plateau"] is not None
        ]
        pl = plat.get(lv, {})
        row = {
            "key": name,
            "level": lv_value[lv] if len(group) > 1 else lv_value[lv][0],
            "label": " + ".join(fmt_level(v) for v in lv_value[lv]),
            "n_cells": n_cells[lv],
            "loss": mean_ci(list(loss.get(lv, {}).values())) | {"per_seed": loss.get(lv, {})},
            "plateau": mean_ci(list(pl.values()))
            | {
                "per_seed": pl,
                "seeds_all": sum(v == 1.0 for v in pl.values()),
                "seeds_none": sum(v == 0.0 for v in pl.values()),
                "n_seeds": len(pl),
                "trials": int(sum(trial_flags)),
                "n_trials": len(trial_flags),
            },
        }
        if lv != levels[0]:
            row["vs_first"] = {
                "loss": _diff(loss, lv, levels[0], complete),
                "plateau": _diff(plat, lv, levels[0], complete),
            }
        rows.append(row)
    aliased = group[1:] if len(group) > 1 else []
    out = {
        "key": name,
        "keys": group,
        "levels": [r["label"] for r in rows],
        "exact": exact,
        "common_cells": len(common),
        "confounded": bool(aliased or confounded_with),
        "confounded_with": aliased or confounded_with,
        "rows": rows,
    }
    out["verdict"] = verdict(out)
    return out


def _covarying(group: list[str], groups: list[list[str]], runs: dict, levels: list[str]) -> list:
    """Other keys whose values never overlap between two levels of the factor."""
    out = []
    for g in groups:
        if g is group:
            continue
        sets = [{_key(r[g[0]]) for r in runs.values() if _key(r[group[0]]) == lv} for lv in levels]
        if any(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1 :]):
            out.extend(g)
    return out


def _ci_text(d: Mapping[str, Any]) -> str:
    ci = d.get("ci")
    span = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    return f"{d['mean']:+.3f}{span}"


def verdict(f: Mapping[str, Any]) -> dict[str, Any]:
    """One computed sentence per factor, with its kind (for tests and styling)."""
    name, rows = f["key"], f["rows"]
    if len(f["keys"]) > 1:
        first, rest = f["keys"][0], ", ".join(f["keys"][1:])
        return {
            "key": name,
            "kind": "confounded",
            "text": f"{first} cannot be judged apart from {rest}: they always change "
            "together in this design (confounded); vary one alone to tell",
        }
    if f["confounded"]:
        with_ = ", ".join(f["confounded_with"])
        text = (
            f"{name} cannot be judged: no setting of the other keys occurs with each of "
            f"its values, and {with_} changes with it (confounded)"
        )
        return {"key": name, "kind": "confounded", "text": text}
    plats = [r["plateau"] for r in rows]
    n = max((p["n_seeds"] for p in plats), default=0)
    if any(p["seeds_all"] == p["n_seeds"] > 0 for p in plats) and any(
        p["seeds_none"] == p["n_seeds"] > 0 for p in plats
    ):
        parts = [
            f"{r['label']} plateaus on {r['plateau']['seeds_all']}/{r['plateau']['n_seeds']} seeds"
            for r in rows
        ]
        parts[1:] = [p.replace(" plateaus on ", " on ") for p in parts[1:]]
        return {
            "key": name,
            "kind": "decides_plateau",
            "text": f"{name} decides the plateau: " + ", ".join(parts),
        }
    diffs = [r["vs_first"] for r in rows[1:]]
    if diffs and all(
        d["loss"]["identical"] and (d["plateau"]["identical"] or not d["plateau"]["n"])
        for d in diffs
    ):
        eq = " = ".join(r["label"] for r in rows)
        k = min(d["loss"]["n"] for d in diffs)
        return {
            "key": name,
            "kind": "no_difference",
            "text": f"{name} makes no difference: {eq} on all {k} seeds",
        }
    moved = [(r, r["vs_first"]["plateau"]) for r in rows[1:]]
    if any(d["mean"] and d["ci"] and (d["ci"][0] > 0 or d["ci"][1] < 0) for _, d in moved):
        rates = ", ".join(f"{r['label']} {r['plateau']['mean']:.2f}" for r in rows)
        return {
            "key": name,
            "kind": "changes_plateau",
            "text": f"{name} changes the plateau rate: {rates} (over {n} seeds)",
        }
    ref = rows[0]["label"]
    tested = [(r["label"], r["vs_first"]["loss"]) for r in rows[1:] if r["vs_first"]["loss"]["n"]]
    if not tested:
        return {"key": name, "kind": "no_data", "text": f"{name}: no comparable trials"}
    sig = [(lb, d) for lb, d in tested if d["ci"] and (d["ci"][0] > 0 or d["ci"][1] < 0)]
    kind = "changes_loss" if sig else "no_detected_difference"
    shown = ", ".join(f"{lb} − {ref} = {_ci_text(d)} nats" for lb, d in (sig or tested))
    how = "paired by seed" if all(d.get("paired") for _, d in tested) else "unpaired"
    head = f"{name} changes the milestone loss" if sig else f"{name}: no clear effect on the loss"
    return {"key": name, "kind": kind, "text": f"{head}: {shown} (95% CI, {how})"}


def factors_of_final(final: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any] | None:
    """final.json's ``factors``: the factor table over its runs' grid keys (None without one).

    A trial's level of a key is the run's resolved config value (so a variant that leaves a
    key alone counts at the base value); its outcome is the plateau verdict and the loss it
    was judged on (the milestone loss, or the fallback named in ``plateau.per_seed``).
    """
    runs = final["runs"]
    if len(runs) < 2 or not keys:
        return None
    trials = []
    for run, info in runs.items():
        levels = {k: info.get("config", {}).get(k, info.get("overrides", {}).get(k)) for k in keys}
        for ps in info["plateau"]["per_seed"]:
            trials.append(
                {
                    "run": run,
                    "seed": ps["seed"],
                    "levels": levels,
                    "plateau": ps["plateau"],
                    "loss": ps["loss"],
                }
            )
    table = factor_table(trials, keys)
    rule = final.get("plateau", {})
    table["outcome"] = {
        "loss": f"{rule.get('metric', 'eval')} loss at step {rule.get('milestone')} (nats)",
        "plateau": "share of trials within the margin of the unigram entropy",
        "ci": "95% Student t over seeds",
    }
    return table


def _fmt_ci(d: Mapping[str, Any] | None, digits: int = 3, signed: bool = False) -> str:
    if not d or d.get("mean") is None:
        return ""
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    ci = d.get("ci")
    return f.format(d["mean"]) + (f" [{f.format(ci[0])}, {f.format(ci[1])}]" if ci else "")


FACTOR_HEADER = [
    "factor",
    "value",
    "plateau (seeds · trials)",
    "plateau rate [95% CI]",
    "milestone loss [95% CI]",
    "Δ loss vs first value",
    "design",
]


def factor_rows(factors: Mapping[str, Any] | None) -> list[list[str]]:
    """The factor table as text cells (FACTOR_HEADER), for the ledger and the report."""
    rows = []
    for f in (factors or {}).get("factors", []):
        design = "confounded" if f["confounded"] else "exact" if f["exact"] else "unbalanced"
        for r in f["rows"]:
            p = r["plateau"]
            seeds = f"{p['seeds_all']}/{p['n_seeds']} · {p['trials']}/{p['n_trials']}"
            d = r.get("vs_first", {}).get("loss")
            diff = _fmt_ci(d, signed=True) + (
                "" if not d else " paired" if d["paired"] else " unpaired"
            )
            cells = [f["key"], r["label"], seeds if p["n_seeds"] else "", _fmt_ci(p, 2)]
            rows.append([*cells, _fmt_ci(r["loss"]), diff or "(reference)", design])
    return rows
