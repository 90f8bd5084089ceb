"""The unit-dataset checks, on streams: one pass per split, one more over train's windows.

Each split is read chunk by chunk (seqlab.data.unit_sources) into small accumulators: counts
of bad units with their first few locations, unigram and bigram counts, one length and one
64-bit hash per utterance (for train/eval duplicates). Memory is the chunk plus 16 bytes per
utterance here (~40 with ingest's name hashes: measured +0.12 GB at 1B units in 2.9M
utterances), so it grows with the number of utterances, not of units; the
anomalous-window check needs the corpus distribution first, so it is a second pass over train.
Every check is vectorised over a chunk (numpy bincount/cumsum, no per-token Python).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqlab.data.checks_report import Result, entropy_nats, more
from seqlab.data.vocab import bos_id, eos_id

CheckParams = Any  # seqlab.data.checks.CheckParams (that module imports this one)

_B = np.uint64(0x9E3779B97F4A7C15)  # odd: invertible modulo 2**64
_B_INV = np.uint64(pow(int(_B), -1, 2**64))
_MIX = np.uint64(0xBF58476D1CE4E5B9)
MAX_BIGRAM_V = 4096  # bigram counts are V*V: skipped above this vocabulary


_POWERS: dict[str, np.ndarray] = {}


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """B**(i+1) and B**-i for i < n (mod 2**64), cached across chunks."""
    if len(_POWERS.get("pw", ())) < n:
        m = max(n, 1 << 20)
        _POWERS["pw"] = np.cumprod(np.full(m, _B, np.uint64))
        ip = np.cumprod(np.full(m, _B_INV, np.uint64))
        _POWERS["ip"] = np.concatenate([np.ones(1, np.uint64), ip])
    return _POWERS["pw"][:n], _POWERS["ip"][: n + 1]


def utterance_hashes(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash (mod 2**64) of each utterance's units, mixed with its length.

    Vectorised over a chunk: prefix sums of `(x_i + 1) * B**(i+1)`, each utterance's
    difference brought back to its start by `B**-start`, so the hash does not depend on where
    the utterance sits. Collisions: ~n**2 / 2**65 (1e-6 at 5M utterances).
    """
    pw, ip = _powers(len(x))
    prefix = np.zeros(len(x) + 1, np.uint64)
    np.cumsum((x.astype(np.uint64) + 1) * pw, out=prefix[1:])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    return ((prefix[ends] - prefix[starts]) * ip[starts]) ^ (lengths.astype(np.uint64) * _MIX)


@dataclass
class Scan:
    """What one pass over a split leaves: small, whatever the split's size."""

    name: str
    V: int
    listed: int
    lengths: list[np.ndarray] = field(default_factory=list)
    hashes: list[np.ndarray] = field(default_factory=list)
    bad: dict[str, int] = field(default_factory=lambda: {"range": 0, "special": 0})
    first: dict[str, list[tuple[int, int, int]]] = field(
        default_factory=lambda: {"range": [], "special": []}
    )
    edges_ok: bool | None = None
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    joint: np.ndarray | None = None

    def add(self, u0: int, L: np.ndarray, x: np.ndarray, edges_ok: bool | None) -> None:
        V = self.V
        ends = np.cumsum(L)
        big = np.flatnonzero((x >= V) | (x < 0)) if x.dtype != np.uint16 else np.flatnonzero(x >= V)
        xb = x[big].astype(np.int64)
        for kind, mask in (
            ("range", (xb < 0) | (xb > eos_id(V))),
            ("special", (xb >= bos_id(V)) & (xb <= eos_id(V))),
        ):
            hits = big[mask]
            self.bad[kind] += len(hits)
            for i in hits[: max(0, self.listed - len(self.first[kind]))]:
                u = int(np.searchsorted(ends, i, side="right"))
                self.first[kind].append((u0 + u, int(i - (ends[u] - L[u])), int(x[i])))
        if edges_ok is not None:
            self.edges_ok = edges_ok if self.edges_ok is None else self.edges_ok and edges_ok
        xi = x.astype(np.int32) if x.dtype == np.uint16 else np.clip(x, -1, V).astype(np.int32)
        if len(big):
            xi[big] = V  # out of the unigram/bigram counts below
        c = np.bincount(xi, minlength=V + 1)[:V]
        self.counts = c if not len(self.counts) else self.counts + c
        if V <= MAX_BIGRAM_V and len(xi) > 1:
            pair = xi[:-1] * (V + 1) + xi[1:]
            cut = ends[:-1] - 1  # last unit of each utterance but the chunk's final one
            pair[cut[(cut >= 0) & (cut < len(pair))]] = V  # lands in a dropped bin
            j = np.bincount(pair, minlength=(V + 1) ** 2).reshape(V + 1, V + 1)[:V, :V].ravel()
            self.joint = j if self.joint is None else self.joint + j
        self.lengths.append(L)
        self.hashes.append(utterance_hashes(x, L))

    def finish(self) -> None:
        self.L = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        self.H = np.concatenate(self.hashes) if self.hashes else np.zeros(0, np.uint64)
        if not len(self.counts):
            self.counts = np.zeros(self.V, np.int64)
        del self.lengths, self.hashes

    def locate(self, i: int) -> tuple[int, int]:
        """(utterance, position in it) of flat unit index i of the split."""
        ends = np.cumsum(self.L)
        u = int(np.searchsorted(ends, i, side="right"))
        return u, int(i - (ends[u] - self.L[u]))


def scan(src: Any, V: int, listed: int) -> Scan:
    sc = Scan(src.name, V, listed)
    for ch in src.chunks():
        sc.add(ch.u0, ch.lengths, ch.units, ch.edges_ok)
    sc.finish()
    return sc


def check_token_range(scans: dict[str, Scan], srcs: dict, V: int, p: CheckParams) -> Result:
    """Raw units are 1-D uint16 in 0..V-1 (BOS/EOS = V, V+1 are no_special_tokens' job)."""
    fails, detail = [], {}
    for name, sc in scans.items():
        src = srcs[name]
        if src.bad_arrays:
            u, dtype, shape = src.bad_arrays[0]
            path, key = src.where(u)
            fails.append(
                f"check token_range failed: {path} sample {key!r} has units of "
                f"dtype {dtype} shape {shape}, expected 1-D uint16"
                f"{more(len(src.bad_arrays), 'such samples')}; re-tokenize the shard"
            )
        first = [
            dict(zip(("shard", "key"), src.where(u), strict=True)) | {"position": pos, "unit": unit}
            for u, pos, unit in sc.first["range"]
        ]
        detail[name] = {
            "n_bad_arrays": len(src.bad_arrays),
            "n_out_of_range": sc.bad["range"],
            "first": first,
        }
        if first:
            f = first[0]
            fails.append(
                f"check token_range failed: {f['shard']} sample {f['key']!r} has unit {f['unit']} "
                f"at position {f['position']} (vocab {V})"
                f"{more(sc.bad['range'], 'out-of-range units')}; re-tokenize or fix vocab_size"
            )
    return {"vocab_size": V, "splits": detail}, fails


def check_no_special_tokens(scans: dict[str, Scan], srcs: dict, V: int, p: CheckParams) -> Result:
    """BOS/EOS only where the loader puts them: never in raw units, once at each edge."""
    fails, detail = [], {}
    for name, sc in scans.items():
        if sc.first["special"]:
            u, pos, unit = sc.first["special"][0]
            shard, key = srcs[name].where(u)
            fails.append(
                f"check no_special_tokens failed: {shard} sample {key!r} has "
                f"{'BOS' if unit == bos_id(V) else 'EOS'} ({unit}) at position {pos}"
                f"{more(sc.bad['special'], 'BOS/EOS')}; "
                "BOS/EOS only where the loader puts them: strip them at ingest or fix vocab_size"
            )
        clean = not srcs[name].bad_arrays and not sc.bad["range"] and not sc.bad["special"]
        loader_ok = sc.edges_ok if sc.edges_ok is not None else (True if clean else None)
        if loader_ok is False:
            shard, key = srcs[name].where(0)
            fails.append(
                f"check no_special_tokens failed: {shard} sample {key!r} and the rest of split "
                f"{name!r}: the store does not put exactly one BOS/EOS at each utterance's edges;"
                " rebuild the dataset (rerun its prepare rule)"
            )
        detail[name] = {"raw_specials": sc.bad["special"], "loader_edges_ok": loader_ok}
    return detail, fails


def check_non_empty(scans: dict[str, Scan], srcs: dict, V: int, p: CheckParams) -> Result:
    """No utterance shorter than min_units (an empty one is a BOS/EOS pair of pure noise)."""
    fails, detail = [], {}
    for name, sc in scans.items():
        short = np.flatnonzero(sc.L < p.min_units)
        first = [srcs[name].where(int(u))[1] for u in short[: p.max_listed]]
        detail[name] = {"n_short": int(len(short)), "first": first}
        if len(short):
            u, n = int(short[0]), int(sc.L[short[0]])
            shard, key = srcs[name].where(u)
            what = "is empty" if n == 0 else f"has {n} units (< min_units {p.min_units})"
            fails.append(
                f"check non_empty failed: {shard} sample {key!r} {what}"
                f"{more(len(short), 'short utterances')}; drop it at ingest or fix the tokenizer"
            )
    return {"min_units": p.min_units, "splits": detail}, fails


def length_stats(scans: dict[str, Scan], srcs: dict, V: int, p: CheckParams) -> Result:
    """Per split sizes and utterance lengths; informative, never fails."""
    out = {}
    for name, sc in scans.items():
        L, n = sc.L, len(sc.L)
        n_stream = int(L.sum()) + 2 * n
        st = {"n_samples": n, "n_units": int(L.sum()), "n_stream_tokens": n_stream}
        st[f"n_sequences_{p.seq_len}"] = max(0, (n_stream - 1) // p.seq_len)
        if n:
            st.update(min=int(L.min()), mean=float(L.mean()), median=float(np.median(L)))
            st.update(p95=float(np.percentile(L, 95)), max=int(L.max()))
        out[name] = st
    return {"seq_len": p.seq_len, "splits": out}, []


def check_train_eval_overlap(scans: dict[str, Scan], srcs: dict, V: int, p: CheckParams) -> Result:
    """Eval utterances whose exact unit sequence is in train measure memorisation, not LM."""
    train = scans.get(p.train_split)
    if train is None:
        return {"skipped": f"no split {p.train_split!r}"}, []
    nonempty = np.flatnonzero(train.L > 0)
    order = nonempty[np.argsort(train.H[nonempty], kind="stable")]
    sorted_h = train.H[order]
    fails, detail = [], {}
    for name, sc in scans.items():
        if sc is train:
            continue
        pos = np.searchsorted(sorted_h, sc.H)
        pos_c = np.minimum(pos, max(0, len(sorted_h) - 1))
        hit = (sc.L > 0) & (pos < len(sorted_h))
        hit &= sorted_h[pos_c] == sc.H if len(sorted_h) else False
        dup = np.flatnonzero(hit)
        share = len(dup) / max(1, len(sc.L))
        detail[name] = {"n_duplicates": int(len(dup)), "share": share}
        if len(dup) and share > p.max_overlap_share:
            u, t = int(dup[0]), int(order[pos[dup[0]]])
            (es, ek), (ts, tk) = srcs[name].where(u), srcs[p.train_split].where(t)
            fails.append(
                f"check train_eval_overlap failed: {es} sample {ek!r} equals {ts} sample {tk!r} "
                f"({len(dup)} of {len(sc.L)} {name} utterances in train, {share:.1%} > "
                f"{p.max_overlap_share:.1%}); hold out whole sentences or raise max_overlap_share"
            )
    return {"max_overlap_share": p.max_overlap_share, "splits": detail}, fails


def unigram_stats(sc: Scan) -> dict[str, float]:
    """Unigram (raw units; loader targets with BOS/EOS) and bigram conditional entropies."""
    V, n_utt = sc.V, len(sc.L)
    tok = np.concatenate([sc.counts, [max(0, n_utt - 1), n_utt]])  # every stream token but 1st
    out = {
        "unigram_entropy_nats": entropy_nats(sc.counts),
        "unigram_entropy_tokens_nats": entropy_nats(tok),
        "n_units": int(sc.counts.sum()),
    }
    if sc.joint is not None:
        prev = sc.joint.reshape(V, V).sum(1)
        out["bigram_conditional_entropy_nats"] = entropy_nats(sc.joint) - entropy_nats(prev)
    return out
