"""Tokenization checks of a dataset: fail early, naming file or shard, sample and rule broken.

`run_unit_checks` streams each split of a unit dataset once from its packed store (or from
its shards when it has none; seqlab.data.unit_sources) through vectorised accumulators
(seqlab.data.unit_checks), then train once more for its windows (seqlab.data.unit_windows).
`check_and_write` writes `checks.json` only when all pass, so training (which depends on it)
never starts on bad data. The top-level `unigram_entropy_nats` is the plateau baseline: the
loss of a model that only learned unit frequencies.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seqlab.config import from_dict
from seqlab.config_datasets import UnitChecks
from seqlab.data import unit_checks as uc
from seqlab.data.checks_report import checks_report
from seqlab.data.manifest import Manifest
from seqlab.data.progress import Progress
from seqlab.data.unit_sources import sources
from seqlab.data.unit_windows import check_anomalous_windows
from seqlab.errors import SeqlabError
from seqlab.files import read_json, write_json

CHECKS = {
    "token_range": uc.check_token_range,
    "no_special_tokens": uc.check_no_special_tokens,
    "non_empty": uc.check_non_empty,
    "length_stats": uc.length_stats,
    "train_eval_overlap": uc.check_train_eval_overlap,
}


def run_unit_checks(manifest_path: str | Path, params: dict[str, Any] | None = None) -> dict:
    """Run every check on a unit dataset; return the checks.json content (never raises on data)."""
    p = from_dict(UnitChecks, dict(params or {}), "checks")
    man = Manifest(manifest_path)
    V = man.vocab_size
    srcs = sources(man)
    order = sorted(srcs, key=lambda s: s != p.train_split)  # train first: others hash against it
    prog = Progress("checks", sum(int(man.data["splits"][s]["n_units"]) for s in srcs))
    scans = {}
    for name in order:
        scans[name] = uc.scan(srcs[name], V, p.max_listed)
        prog.update(int(scans[name].L.sum()))
    scans = {s: scans[s] for s in srcs}
    kind = "store_integrity" if man.data.get("store") else "shard_integrity"
    integrity = {s: getattr(src, "detail", {}) for s, src in srcs.items()}
    results = {kind: (integrity, [f for src in srcs.values() for f in src.integrity])}
    results.update({name: fn(scans, srcs, V, p) for name, fn in CHECKS.items()})
    train = scans.get(p.train_split)
    results["anomalous_windows"] = check_anomalous_windows(train, srcs.get(p.train_split), V, p)
    if train is not None:
        results["unigram_entropy"] = (uc.unigram_stats(train), [])
    else:
        results["unigram_entropy"] = (
            {},
            [
                f"check unigram_entropy failed: {manifest_path} has no split {p.train_split!r} "
                f"(has {list(scans)}); name the training split or set train_split"
            ],
        )
    prog.done()
    ent = results["unigram_entropy"][0]
    return checks_report(
        results,
        asdict(p),
        dataset=man.data.get("dataset"),
        manifest=str(manifest_path),
        vocab_size=V,
        **{k: v for k, v in ent.items() if k != "n_units"},
    )


#: manifest "kind" -> "module:function(manifest_path, params) -> checks dict" for data formats
#: other than unit shards (which run_unit_checks handles). Each returns the same layout:
#: passed, failures (one-line messages), checks {name: {passed, detail}}, params.
CHECKERS: dict[str, str] = {
    "token_bins": "seqlab.data.token_bins:run_token_bin_checks",
    "neural": "seqlab.data.neural:run_neural_checks",
    "swuggy_synthetic": "seqlab.data.zr_checks:run_set_checks",
    "swuggy_zerospeech": "seqlab.data.zr_checks:run_set_checks",
    "sblimp_synthetic": "seqlab.data.zr_checks:run_set_checks",
    "sblimp_zerospeech": "seqlab.data.zr_checks:run_set_checks",
}


def run_checks(manifest_path: str | Path, params: dict[str, Any] | None = None) -> dict:
    """The checks of a dataset, chosen by its manifest's kind."""
    kind = read_json(manifest_path).get("kind")
    if kind not in CHECKERS:
        return run_unit_checks(manifest_path, params)
    module, func = CHECKERS[kind].split(":")
    return getattr(importlib.import_module(module), func)(manifest_path, params)


def check_and_write(
    manifest_path: str | Path, out_path: str | Path, params: dict[str, Any] | None = None
) -> dict:
    """Write checks.json (atomically) when every check passes; else raise a one-line error."""
    out_path = Path(out_path)
    out_path.unlink(missing_ok=True)  # a stale pass must not survive a failing rerun
    report = run_checks(manifest_path, params)
    fails = report["failures"]
    if fails:
        more = ""
        if len(fails) > 1:
            names = sorted({f.split()[1] for f in fails[1:]})
            more = f" (+{len(fails) - 1} more failures: {', '.join(names)})"
        raise SeqlabError(fails[0] + more)
    write_json(out_path, report)
    return report
