"""Checks of a sWUGGY or sBLIMP set (the CHECKERS entry of their kinds): fail early, naming the
file and item.

A set whose gold.csv and units disagree, whose pairs are incomplete or whose units fall outside
the vocabulary would give a wrong score silently (the official scorers drop or mispair
unpaired items), so scoring depends on checks.json like training does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seqlab.data.checks_report import checks_report, entropy_nats
from seqlab.data.ingest import read_units_text
from seqlab.data.sblimp_files import toolkit_pairing_agrees
from seqlab.data.zr_sets import LEXICAL, TASKS
from seqlab.files import read_json


def run_set_checks(manifest_path: str | Path, params: dict[str, Any] | None = None) -> dict:
    """Checks of a set (CHECKERS layout): files agree, pairs complete, units in range."""
    manifest_path = Path(manifest_path)
    man, root = read_json(manifest_path), manifest_path.parent
    task = TASKS[man["kind"]]
    gold = task.read_gold(root / man["files"]["gold"])
    units = dict(read_units_text(root / man["files"]["units"], man["vocab_size"] + 2))
    V, results = man["vocab_size"], {}
    lexical = task is LEXICAL
    key = ["id"] if lexical else ["type", "subtype", "id"]
    text = "word" if lexical else "transcription"
    good, bad_name = ("word", "nonword") if lexical else ("correct", "incorrect")

    def item(k: tuple) -> str:  # an id as the task names it: `id 3` or `type/subtype/id 3`
        return f"id {k[0]}" if lexical else f"{k[0]}/{k[1]}/id {k[2]}"

    def check(name: str, bad: list[str], detail: dict[str, Any], fix: str) -> None:
        fails = (
            []
            if not bad
            else [
                f"check {name} failed: {root} {bad[0]}"
                f"{f' (+{len(bad) - 1} more)' if len(bad) > 1 else ''}; {fix}"
            ]
        )
        results[name] = ({**detail, "n_bad": len(bad)}, fails)

    names = set(gold["filename"])
    bad = [f"gold filename {f!r} has no units" for f in gold["filename"] if f not in units]
    bad += [f"units name {f!r} is not in gold.csv" for f in sorted(set(units) - names)]
    check(
        "files_match",
        bad,
        {"n_gold": len(gold), "n_units": len(units)},
        "rebuild the set (rerun its prepare rule)",
    )
    counts = gold.groupby([*key, "voice"])["correct"].agg(["sum", "size"])
    odd = counts[(counts["sum"] != 1) | (counts["size"] != 2)]
    bad = [
        f"{item(k)} voice {k[-1]!r} has {int(r['sum'])} {good} in "
        f"{int(r['size'])} rows, not one {good} + one {bad_name}"
        for k, r in odd.iterrows()
    ]
    check("pairs_complete", bad, {"n_pairs": len(counts)}, "fix gold.csv")
    if not lexical:  # the official scorer pairs rows by their order in gold.csv
        bad = toolkit_pairing_agrees(gold)
        check(
            "toolkit_pairing",
            bad,
            {},
            "list each pair's rows in the same order for correct and incorrect rows "
            "(zerospeech2021 pairs the k-th correct row with the k-th incorrect one)",
        )
    bad = [f"{f!r} is empty" for f, u in units.items() if len(u) == 0]
    bad += [
        f"{f!r} has unit {int(u.max())} >= vocab {V}"
        for f, u in units.items()
        if len(u) and u.max() >= V
    ]
    check("token_range", bad, {"vocab_size": V}, "re-quantize or fix vocab_size")
    per_id = gold.groupby([*key, "correct"])[text].nunique()
    bad = [
        f"{item(k)} has {n} different {good if k[-1] else bad_name} items across voices"
        for k, n in per_id.items()
        if n > 1
    ]
    check("same_pair_per_id", bad, {"n_ids": len(gold[key].drop_duplicates())}, "fix gold.csv")
    if man["kind"].endswith("_synthetic"):
        lens = gold.assign(n=gold["filename"].map(lambda f: len(units.get(f, ()))))
        diff = lens.groupby([*key, "voice"])["n"].nunique()
        bad = [
            f"{item(k)} voice {k[-1]!r}: {good} and {bad_name} differ in length"
            for k, n in diff.items()
            if n > 1
        ]
        check("matched_lengths", bad, {}, "the renderer must share draws within a pair")
    ctrl = read_json(root / man["files"]["controls"]) if (root / "controls.json").exists() else {}
    bad = [] if ctrl else ["controls.json is missing or empty"]
    head = task.keys[0]
    check("controls", bad, {k: v.get(head) for k, v in ctrl.items()}, "rebuild the set")
    allu = np.concatenate(list(units.values())).astype(np.int64) if units else np.zeros(0, int)
    return checks_report(
        results,
        params or {},
        dataset=man.get("dataset"),
        manifest=str(manifest_path),
        vocab_size=V,
        unigram_entropy_nats=entropy_nats(np.bincount(allu[allu < V], minlength=V)),
    )
