"""Tokenization checks of a unit dataset: fail early, naming shard, sample and rule broken.

`run_unit_checks` reads every shard once into one flat array per split and runs small,
vectorised checks over it (numpy bincount, no per-token Python). `check_and_write` writes
`checks.json` only when all pass, so training (which depends on it) never starts on bad data.
The top-level `unigram_entropy_nats` is the plateau baseline: the loss of a model that only
learned unit frequencies.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.config import UnitChecks
from seqlab.config_load import check_params
from seqlab.data.shards import Manifest, Utterance, iter_shard
from seqlab.data.units import token_stream
from seqlab.io import SeqlabError, read_json, write_json


@dataclass
class CheckParams:
    """Thresholds of the checks; every field is a config key under the dataset's `checks:`."""

    seq_len: int = 128  # training sequence length, for the sequence counts
    min_units: int = 1  # shorter utterances fail non_empty (1: only empty ones)
    max_overlap_share: float = 0.01  # share of eval utterances also in train that fails
    window: int | None = None  # anomalous_windows size; None: max(window_min, n // divisor)
    window_min: int = 2000
    window_divisor: int = 200
    window_factor: float = 4.0  # a window fails above factor x median window JSD ...
    window_min_jsd: float = 0.02  # ... and above this floor (nats; JSD <= ln 2)
    train_split: str = "train"
    max_listed: int = 5  # failure locations kept per check in checks.json

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CheckParams:
        """Validated by the typed config (seqlab.config.UnitChecks), defaults filled."""
        return cls(**check_params(UnitChecks, dict(d or {}), "checks"))


@dataclass
class Split:
    """One split read into memory: all units concatenated, one row per utterance."""

    name: str
    keys: list[str] = field(default_factory=list)
    shard: list[str] = field(default_factory=list)  # shard path of each utterance
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    units: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))
    bad_arrays: list[tuple[int, str, tuple[int, ...]]] = field(default_factory=list)

    @property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.lengths) - self.lengths

    def where(self, i: int) -> tuple[str, str, int]:
        """(shard, key, position in utterance) of flat unit index i."""
        starts = self.starts
        u = int(np.searchsorted(starts, i, side="right") - 1)
        return self.shard[u], self.keys[u], int(i - starts[u])

    def token_position(self, i: int) -> int:
        """Position of flat unit index i in the loader's stream (each utterance adds BOS/EOS)."""
        return int(i + 2 * np.searchsorted(np.cumsum(self.lengths), i, side="right") + 1)

    def utterances(self) -> list[np.ndarray]:
        return np.split(self.units, np.cumsum(self.lengths)[:-1]) if len(self.lengths) else []


Result = tuple[dict[str, Any], list[str]]  # (detail, one-line failure messages)


def _more(n: int, what: str) -> str:
    return f" (+{n - 1} more {what})" if n > 1 else ""


def _read(man: Manifest) -> tuple[dict[str, Split], Result]:
    """Read every split; shard_integrity is checked here as the shards are read."""
    splits: dict[str, Split] = {}
    fails: list[str] = []
    shards: dict[str, dict[str, int]] = {}
    n_dups: dict[str, int] = {}
    for name in man.splits():
        sp, arrays, seen, dups = Split(name), [], {}, []
        for entry in man.shard_entries(name):
            path = str(man.root / entry["path"])
            n0, a0 = len(sp.keys), len(arrays)
            try:
                for utt in iter_shard(path):
                    a = np.asarray(utt.units)
                    if a.dtype != np.uint16 or a.ndim != 1:
                        sp.bad_arrays.append((len(sp.keys), str(a.dtype), a.shape))
                        a = a.ravel()
                    if utt.key in seen:
                        dups.append((path, utt.key, seen[utt.key]))
                    seen.setdefault(utt.key, path)
                    sp.keys.append(utt.key)
                    sp.shard.append(path)
                    arrays.append(a)
            except SeqlabError as e:  # names shard and last good sample; counts are moot
                fails.append(f"check shard_integrity failed: {e}")
                continue
            n, m = len(sp.keys) - n0, sum(len(a) for a in arrays[a0:])
            shards[path] = {"n_samples": n, "n_units": m}
            if (n, m) != (entry["n_samples"], entry["n_units"]):
                last = sp.keys[-1] if n else None
                fails.append(
                    f"check shard_integrity failed: {path} (last sample {last!r}) holds {n} "
                    f"samples / {m} units, manifest says {entry['n_samples']} / "
                    f"{entry['n_units']}; rebuild the dataset (rerun its prepare rule)"
                )
        if dups:
            path, key, first = dups[0]
            fails.append(
                f"check shard_integrity failed: {path} sample {key!r} is a duplicate key in split "
                f"{name!r} (first in {first}){_more(len(dups), 'duplicates')}; "
                "give every utterance a unique key"
            )
        n_dups[name] = len(dups)
        wide = any(a.dtype != np.uint16 for a in arrays)
        dtype = np.int64 if wide else np.uint16
        sp.units = np.concatenate(arrays).astype(dtype) if arrays else sp.units
        sp.lengths = np.array([len(a) for a in arrays], np.int64)
        splits[name] = sp
    return splits, ({"shards": shards, "duplicate_keys": n_dups}, fails)


def check_token_range(splits: dict[str, Split], V: int, p: CheckParams) -> Result:
    """Raw units are 1-D uint16 in 0..V-1 (BOS/EOS = V, V+1 are no_special_tokens' job)."""
    fails, detail = [], {}
    for sp in splits.values():
        if sp.bad_arrays:
            u, dtype, shape = sp.bad_arrays[0]
            fails.append(
                f"check token_range failed: {sp.shard[u]} sample {sp.keys[u]!r} has units of "
                f"dtype {dtype} shape {shape}, expected 1-D uint16"
                f"{_more(len(sp.bad_arrays), 'such samples')}; re-tokenize the shard"
            )
        bad = np.flatnonzero((sp.units < 0) | (sp.units > V + 1))
        where = [sp.where(int(i)) + (int(sp.units[i]),) for i in bad[: p.max_listed]]
        first = [dict(zip(("shard", "key", "position", "unit"), w, strict=True)) for w in where]
        detail[sp.name] = {"n_bad_arrays": len(sp.bad_arrays), "n_out_of_range": len(bad)}
        detail[sp.name]["first"] = first
        if len(bad):
            shard, key, pos, unit = where[0]
            fails.append(
                f"check token_range failed: {shard} sample {key!r} has unit {unit} at position "
                f"{pos} (vocab {V}){_more(len(bad), 'out-of-range units')}; "
                "re-tokenize or fix vocab_size"
            )
    return {"vocab_size": V, "splits": detail}, fails


def check_no_special_tokens(splits: dict[str, Split], V: int, p: CheckParams) -> Result:
    """BOS/EOS only where the loader puts them: never in raw units, once at each edge."""
    fails, detail = [], {}
    bos, eos = V, V + 1
    for sp in splits.values():
        bad = np.flatnonzero((sp.units == bos) | (sp.units == eos))
        if len(bad):
            shard, key, pos = sp.where(int(bad[0]))
            name = "BOS" if sp.units[bad[0]] == bos else "EOS"
            fails.append(
                f"check no_special_tokens failed: {shard} sample {key!r} has {name} "
                f"({int(sp.units[bad[0]])}) at position {pos}{_more(len(bad), 'BOS/EOS')}; "
                "BOS/EOS only where the loader puts them: strip them at ingest or fix vocab_size"
            )
        loader_ok = None
        clean = not sp.bad_arrays and (len(sp.units) == 0 or int(sp.units.max()) < V)
        if clean:  # else the raw failure above already explains a broken stream
            loader_ok = _loader_edges_ok(sp, bos, eos)
            if not loader_ok:
                fails.append(
                    f"check no_special_tokens failed: {sp.shard[0]} sample {sp.keys[0]!r} and "
                    f"the rest of split {sp.name!r}: token_stream does not put exactly one "
                    "BOS/EOS at each utterance's edges; fix seqlab.data.units.token_stream"
                )
        detail[sp.name] = {"raw_specials": int(len(bad)), "loader_edges_ok": loader_ok}
    return detail, fails


def _loader_edges_ok(sp: Split, bos: int, eos: int) -> bool:
    """The loader's stream has BOS at each start and EOS at each end, nowhere else."""
    starts = sp.starts
    utts = (Utterance(k, a) for k, a in zip(sp.keys, sp.utterances(), strict=True))
    stream = token_stream(utts, bos, eos)
    i = np.arange(len(sp.lengths))
    want_bos, want_eos = starts + 2 * i, starts + sp.lengths + 2 * i + 1
    return (
        len(stream) == len(sp.units) + 2 * len(i)
        and np.array_equal(np.flatnonzero(stream == bos), want_bos)
        and np.array_equal(np.flatnonzero(stream == eos), want_eos)
    )


def check_non_empty(splits: dict[str, Split], V: int, p: CheckParams) -> Result:
    """No utterance shorter than min_units (an empty one is a BOS/EOS pair of pure noise)."""
    fails, detail = [], {}
    for sp in splits.values():
        short = np.flatnonzero(sp.lengths < p.min_units)
        first = [sp.keys[u] for u in short[: p.max_listed]]
        detail[sp.name] = {"n_short": int(len(short)), "first": first}
        if len(short):
            u, n = int(short[0]), int(sp.lengths[short[0]])
            what = "is empty" if n == 0 else f"has {n} units (< min_units {p.min_units})"
            fails.append(
                f"check non_empty failed: {sp.shard[u]} sample {sp.keys[u]!r} {what}"
                f"{_more(len(short), 'short utterances')}; drop it at ingest or fix the tokenizer"
            )
    return {"min_units": p.min_units, "splits": detail}, fails


def length_stats(splits: dict[str, Split], V: int, p: CheckParams) -> Result:
    """Per split sizes and utterance lengths; informative, never fails."""
    out = {}
    for sp in splits.values():
        L, n = sp.lengths, len(sp.lengths)
        n_stream = int(L.sum()) + 2 * n
        st = {"n_samples": n, "n_units": int(L.sum()), "n_stream_tokens": n_stream}
        st[f"n_sequences_{p.seq_len}"] = max(0, (n_stream - 1) // p.seq_len)
        if n:
            st.update(min=int(L.min()), mean=float(L.mean()), median=float(np.median(L)))
            st.update(p95=float(np.percentile(L, 95)), max=int(L.max()))
        out[sp.name] = st
    return {"seq_len": p.seq_len, "splits": out}, []


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy in nats of a count vector."""
    c = counts[counts > 0].astype(np.float64)
    q = c / c.sum() if len(c) else c
    return float(-(q * np.log(q)).sum())


def unigram_stats(sp: Split, V: int) -> dict[str, float]:
    """Unigram (raw units; loader targets with BOS/EOS) and bigram conditional entropies."""
    x = sp.units[(sp.units >= 0) & (sp.units < V)].astype(np.int64)
    n_utt = len(sp.lengths)
    # targets of the stream [BOS u.. EOS BOS u.. EOS]: every token but the first
    tok = np.bincount(x, minlength=V + 2)
    tok[V], tok[V + 1] = max(0, n_utt - 1), n_utt
    a = sp.units.astype(np.int64)
    pair = np.ones(max(0, len(a) - 1), bool)
    ends = np.cumsum(sp.lengths)[:-1] - 1  # last unit of each utterance but the final one
    pair[ends[(ends >= 0) & (ends < len(pair))]] = False
    pair &= (a[:-1] < V) & (a[1:] < V) & (a[:-1] >= 0) & (a[1:] >= 0)
    joint = np.bincount(a[:-1][pair] * V + a[1:][pair], minlength=V * V)
    prev = joint.reshape(V, V).sum(1)
    return {
        "unigram_entropy_nats": entropy(np.bincount(x, minlength=V)),
        "unigram_entropy_tokens_nats": entropy(tok),
        "bigram_conditional_entropy_nats": entropy(joint) - entropy(prev),
        "n_units": int(len(x)),
    }


def check_train_eval_overlap(splits: dict[str, Split], V: int, p: CheckParams) -> Result:
    """Eval utterances whose exact unit sequence is in train measure memorisation, not LM."""
    train = splits.get(p.train_split)
    if train is None:
        return {"skipped": f"no split {p.train_split!r}"}, []

    def digest(a: np.ndarray) -> bytes:
        return hashlib.blake2b(a.astype(np.int64).tobytes(), digest_size=16).digest()

    seen: dict[bytes, int] = {}
    for u, a in enumerate(train.utterances()):
        if len(a):
            seen.setdefault(digest(a), u)
    fails, detail = [], {}
    for sp in splits.values():
        if sp is train:
            continue
        dup = []
        for u, a in enumerate(sp.utterances()):
            if len(a) and (t := seen.get(digest(a))) is not None:
                dup.append((u, t))
        share = len(dup) / max(1, len(sp.lengths))
        detail[sp.name] = {"n_duplicates": len(dup), "share": share}
        if dup and share > p.max_overlap_share:
            u, t = dup[0]
            fails.append(
                f"check train_eval_overlap failed: {sp.shard[u]} sample {sp.keys[u]!r} equals "
                f"{train.shard[t]} sample {train.keys[t]!r} ({len(dup)} of {len(sp.lengths)} "
                f"{sp.name} utterances in train, {share:.1%} > {p.max_overlap_share:.1%}); "
                "hold out whole sentences or raise max_overlap_share"
            )
    return {"max_overlap_share": p.max_overlap_share, "splits": detail}, fails


def window_jsd(x: np.ndarray, V: int, W: int, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Jensen-Shannon divergence (nats) of each W-unit window from the whole stream.

    Windows start at 0, W, 2W, ... and a last one ends at the stream's end, so no unit is
    left out. Units outside 0..V-1 count in one extra bin (corruption is anomalous too).
    """
    x = np.minimum(x.astype(np.int64), V)
    x[x < 0] = V
    K = V + 1
    P = np.bincount(x, minlength=K) / max(1, len(x))
    starts = np.arange(0, len(x) - W + 1, W)
    if len(starts) and starts[-1] + W < len(x):
        starts = np.append(starts, len(x) - W)
    scores = np.zeros(len(starts))
    for c in range(0, len(starts), chunk):
        s = starts[c : c + chunk]
        idx = (s[:, None] + np.arange(W)[None, :]).ravel()
        rows = np.repeat(np.arange(len(s)), W)
        Q = np.bincount(rows * K + x[idx], minlength=len(s) * K).reshape(len(s), K) / W
        M = (Q + P) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kq = np.where(Q > 0, Q * np.log(Q / M), 0.0).sum(1)
            kp = np.where(P > 0, P * np.log(P / M), 0.0).sum(1)
        scores[c : c + chunk] = 0.5 * (kq + kp)
    return starts, scores


def check_anomalous_windows(splits: dict[str, Split], V: int, p: CheckParams) -> Result:
    """Windows of train whose unit distribution departs sharply from the corpus (JSD)."""
    sp = splits.get(p.train_split)
    if sp is None or len(sp.units) == 0:
        return {"skipped": f"no units in split {p.train_split!r}"}, []
    n = len(sp.units)
    W = min(n, p.window or max(p.window_min, n // p.window_divisor))
    starts, jsd = window_jsd(sp.units, V, W)
    median = float(np.median(jsd))
    threshold = max(p.window_min_jsd, p.window_factor * median)
    flagged = np.flatnonzero(jsd > threshold)

    def where(w: int) -> dict[str, Any]:
        shard, key, _ = sp.where(int(starts[w]))
        return {"unit_position": int(starts[w]), "token_position": sp.token_position(starts[w]),
                "shard": shard, "key": key, "jsd": float(jsd[w])}  # fmt: skip

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
    _, last_key, _ = sp.where(end - 1)
    return detail, [
        f"check anomalous_windows failed: {first['shard']} sample {first['key']!r} starts a "
        f"{W}-unit window at token position {first['token_position']:,} (unit "
        f"{first['unit_position']:,}) with JSD {first['jsd']:.3f} nats > {threshold:.3f}; "
        f"{len(flagged)} window(s) flagged up to token {sp.token_position(end):,} (sample "
        f"{last_key!r}); inspect or drop those utterances"
    ]


CHECKS = {
    "token_range": check_token_range,
    "no_special_tokens": check_no_special_tokens,
    "non_empty": check_non_empty,
    "length_stats": length_stats,
    "train_eval_overlap": check_train_eval_overlap,
    "anomalous_windows": check_anomalous_windows,
}


def run_unit_checks(manifest_path: str | Path, params: dict[str, Any] | None = None) -> dict:
    """Run every check on a unit dataset; return the checks.json content (never raises on data)."""
    p = CheckParams.from_dict(params)
    man = Manifest(manifest_path)
    V = man.vocab_size
    splits, integrity = _read(man)
    results = {"shard_integrity": integrity}
    results.update({name: fn(splits, V, p) for name, fn in CHECKS.items()})
    train = splits.get(p.train_split)
    if train is not None:
        results["unigram_entropy"] = (unigram_stats(train, V), [])
    else:
        results["unigram_entropy"] = ({}, [
            f"check unigram_entropy failed: {manifest_path} has no split {p.train_split!r} "
            f"(has {list(splits)}); name the training split or set train_split"
        ])  # fmt: skip
    ent = results["unigram_entropy"][0]
    failures = [f for _, fails in results.values() for f in fails]
    return {
        "passed": not failures,
        "dataset": man.data.get("dataset"),
        "manifest": str(manifest_path),
        "vocab_size": V,
        "params": asdict(p),
        **{k: v for k, v in ent.items() if k != "n_units"},
        "checks": {k: {"passed": not f, "detail": d} for k, (d, f) in results.items()},
        "failures": failures,
    }


#: manifest "kind" -> "module:function(manifest_path, params) -> checks dict" for data formats
#: other than unit shards (which run_unit_checks handles). Each returns the same layout:
#: passed, failures (one-line messages), checks {name: {passed, detail}}, params.
CHECKERS: dict[str, str] = {
    "token_bins": "seqlab.data.token_bins:run_token_bin_checks",
    "neural": "seqlab.data.neural:run_neural_checks",
    "swuggy_synthetic": "seqlab.data.swuggy_checks:run_swuggy_checks",
    "swuggy_zerospeech": "seqlab.data.swuggy_checks:run_swuggy_checks",
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
