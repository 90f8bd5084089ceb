"""Anomalous windows of train, streamed: the JSD of each W-unit window from the whole corpus.

A second pass over train (the corpus distribution P comes from the first): windows start at
0, W, 2W, ... and a last one ends at the stream's end, so no unit is left out. Units outside
0..V-1 count in one extra bin (corruption is anomalous too). Memory: one chunk and a block of
window counts (at most ~32 MB), plus one float per window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.data.checks_report import Result


def jsd_rows(counts: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats) of each row's distribution from P."""
    Q = counts / np.maximum(1, counts.sum(1, keepdims=True))
    M = (Q + P) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kq = np.where(Q > 0, Q * np.log(Q / M), 0.0).sum(1)
        kp = np.where(P > 0, P * np.log(P / M), 0.0).sum(1)
    return 0.5 * (kq + kp)


def window_scores(
    chunks: Any, V: int, n: int, W: int, P: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, JSD) of every window of the raw-unit stream given as chunks of units."""
    K, full = V + 1, n // W
    last = n - W if full * W < n else None
    rows = max(1, (1 << 22) // K)  # window counts in flight: rows x K
    scores: list[np.ndarray] = []
    carry, tail = np.zeros(K, np.int64), np.zeros(K, np.int64)
    g = 0
    for ch in chunks:
        x = ch.units.astype(np.int64)
        x[(x < 0) | (x > V)] = V
        if last is not None and g + len(x) > last:
            tail += np.bincount(x[max(0, last - g) :], minlength=K)
        for a in range(0, len(x), rows * W):  # sub-blocks bound the count matrix
            piece, g0 = x[a : a + rows * W], g + a
            keep = min(len(piece), max(0, full * W - g0))
            if keep == 0:
                continue
            wid = (g0 + np.arange(keep)) // W - g0 // W
            c = np.bincount(wid * K + piece[:keep], minlength=(int(wid[-1]) + 1) * K)
            c = c.reshape(-1, K)
            c[0] += carry
            done = (g0 + keep) // W - g0 // W  # windows that end inside this piece
            if done:
                scores.append(jsd_rows(c[:done], P))
            carry = c[done] if done < len(c) else np.zeros(K, np.int64)
        g += len(x)
    starts = np.arange(full, dtype=np.int64) * W
    if last is not None:
        scores.append(jsd_rows(tail[None], P))
        starts = np.append(starts, last)
    return starts, np.concatenate(scores) if scores else np.zeros(0)


def check_anomalous_windows(sc: Any, src: Any, V: int, p: Any) -> Result:
    """Windows of train whose unit distribution departs sharply from the corpus (JSD)."""
    n = int(sc.L.sum()) if sc is not None else 0
    if n == 0:
        return {"skipped": f"no units in split {p.train_split!r}"}, []
    W = min(n, p.window or max(p.window_min, n // p.window_divisor))
    P = np.append(sc.counts, n - sc.counts.sum()) / n
    starts, jsd = window_scores(src.chunks(), V, n, W, P)
    median = float(np.median(jsd))
    threshold = max(p.window_min_jsd, p.window_factor * median)
    flagged = np.flatnonzero(jsd > threshold)

    def where(w: int) -> dict[str, Any]:
        u, _ = sc.locate(int(starts[w]))
        shard, key = src.where(u)
        return {
            "unit_position": int(starts[w]),
            "token_position": int(starts[w]) + 2 * u + 1,
            "shard": shard,
            "key": key,
            "jsd": float(jsd[w]),
        }

    detail = {
        "window": W,
        "n_windows": len(starts),
        "median_jsd": median,
        "max_jsd": float(jsd.max()),
        "threshold": threshold,
        "n_flagged": int(len(flagged)),
        "flagged": [where(w) for w in flagged[: p.max_listed]],
        "top": [where(w) for w in np.argsort(-jsd)[: p.max_listed]],
    }
    if not len(flagged):
        return detail, []
    first = detail["flagged"][0]
    end = int(starts[flagged[-1]]) + W
    _, last_key = src.where(sc.locate(end - 1)[0])
    u_end = int(np.searchsorted(np.cumsum(sc.L), end, side="right"))  # utterances before `end`
    return detail, [
        f"check anomalous_windows failed: {first['shard']} sample {first['key']!r} starts a "
        f"{W}-unit window at token position {first['token_position']:,} (unit "
        f"{first['unit_position']:,}) with JSD {first['jsd']:.3f} nats > {threshold:.3f}; "
        f"{len(flagged)} window(s) flagged up to token {end + 2 * u_end + 1:,} (sample "
        f"{last_key!r}); inspect or drop those utterances"
    ]
