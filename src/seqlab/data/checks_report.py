"""The pieces every dataset's checks share: one entropy, one checks.json layout.

Every checker (units, token bins, neural features, sWUGGY sets) returns `checks_report(...)`:
`passed`, `failures` (one line each), `checks` {name: {passed, detail}}, `params`, plus the
plateau baseline `unigram_entropy_nats` at the top level, which the reports read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Result = tuple[dict[str, Any], list[str]]  # (detail, one-line failure messages)


def entropy_nats(counts: np.ndarray) -> float:
    """Shannon entropy in nats of a count vector (zeros ignored): the unigram plateau baseline."""
    c = np.asarray(counts)
    c = c[c > 0].astype(np.float64)
    q = c / c.sum() if len(c) else c
    return float(-(q * np.log(q)).sum())


def more(n: int, what: str) -> str:
    """' (+k more what)' after the first of n failures, so a message stays one line."""
    return f" (+{n - 1} more {what})" if n > 1 else ""


def checks_report(results: dict[str, Result], params: dict[str, Any], **top: Any) -> dict[str, Any]:
    """Assemble checks.json from each check's (detail, failures); `top` adds top-level keys."""
    failures = [f for _, fails in results.values() for f in fails]
    return {
        "passed": not failures,
        **top,
        "params": params,
        "checks": {k: {"passed": not f, "detail": d} for k, (d, f) in results.items()},
        "failures": failures,
    }
