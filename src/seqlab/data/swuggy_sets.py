"""sWUGGY sets in the ZeroSpeech 2021 lexical layout: built from the synthetic world or ingested.

A set directory (`seqlab.data.zr_sets`) holds `gold.csv` (id, filename, voice, frequency,
word, phones, length, correct), `units.txt`, `controls.json` and `manifest.json`, so a model
is scored the same way on the embedded set and on real ZR2021 files.

The synthetic set (`swuggy_synthetic`) draws words of the world's lexicon across frequency bands
(frequency = count in the world dataset's train text; `oov` words never occur in it). A nonword
substitutes 1-2 phonemes by phonemes of the same class (same durations), keeps every phoneme
bigram attested in the lexicon, is no cmudict pronunciation, and among those candidates has the
phoneme-bigram log-probability closest to the word's, on the side that alternates from id to id.
Word and nonword are rendered by the same voice from the same random draws, so their units
differ only around the substituted phonemes. Naive substitution leaks (unit-level cues alone
score well above 0.5); with this matching both controls shipped with the set, a phoneme-bigram
oracle and a unit-unigram model, score about 0.5.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqlab.config import from_dict
from seqlab.config_datasets import SwuggySynthetic, SwuggyZerospeech, params_of
from seqlab.data.lexicon import build_lexicon, cmudict_prons, strip_stress
from seqlab.data.phonemes import CLASS_OF, PHONEMES, SIL
from seqlab.data.swuggy_files import read_gold
from seqlab.data.world import World, stream_rng
from seqlab.data.zr_sets import (
    LEXICAL,
    all_unit_counts,
    random_names,
    speaking_voices,
    synthetic_world,
    train_unit_counts,
    units_of_gold,
    write_set,
)
from seqlab.errors import SeqlabError
from seqlab.scoring.swuggy import BAND_LABELS

KINDS = ("swuggy_synthetic", "swuggy_zerospeech")
N_PH = len(PHONEMES)


# -- the phoneme-bigram model ----------------------------------------------------------------


def bigram_logp(world: World, train: list[tuple[int, ...]], alpha: float = 0.1) -> np.ndarray:
    """log P(b | a) over phonemes of the rendered train text (expected SIL pauses), smoothed."""
    lex, pp = world.lexicon, world.params.pause_prob
    counts = np.zeros((N_PH, N_PH))
    n_words = np.bincount(np.concatenate([np.array(s) for s in train]), minlength=len(lex))
    for pron, c in zip(lex.prons, n_words, strict=True):
        np.add.at(counts, (pron[:-1], pron[1:]), c)
    first = np.array([p[0] for p in lex.prons])
    last = np.array([p[-1] for p in lex.prons])
    np.add.at(counts, (SIL, first[[s[0] for s in train]]), 1.0)
    np.add.at(counts, (last[[s[-1] for s in train]], SIL), 1.0)
    a = np.array([w for s in train for w in s[:-1]], np.int64)
    b = np.array([w for s in train for w in s[1:]], np.int64)
    np.add.at(counts, (last[a], first[b]), 1.0 - pp)
    np.add.at(counts, (last[a], SIL), pp)
    np.add.at(counts, (SIL, first[b]), pp)
    counts += alpha
    return np.log(counts / counts.sum(1, keepdims=True))


def seq_logp(logp: np.ndarray, phones: np.ndarray) -> np.ndarray:
    """Bigram log-probability of SIL + phones + SIL; rows of a 2-D array score at once."""
    ph = np.atleast_2d(phones)
    sil = np.full((len(ph), 1), SIL)
    full = np.concatenate([sil, ph, sil], axis=1)
    return logp[full[:, :-1], full[:, 1:]].sum(1)


def attested(world: World) -> np.ndarray:
    """Bigrams seen inside lexicon words; SIL->first and last->SIL for word edges."""
    ok = np.zeros((N_PH, N_PH), bool)
    for p in world.lexicon.prons:
        ok[p[:-1], p[1:]] = True
        ok[SIL, p[0]] = ok[p[-1], SIL] = True
    return ok


def candidates(pron: np.ndarray, n_sub: int, ok: np.ndarray, real: set[tuple]) -> np.ndarray:
    """Every within-class substitution of `n_sub` phonemes with attested bigrams, no real word."""
    alts = [
        [q for q in range(N_PH) if q != p and CLASS_OF[q] == CLASS_OF[p] and q != SIL] for p in pron
    ]
    rows = []
    for pos in itertools.combinations(range(len(pron)), n_sub):
        for sub in itertools.product(*(alts[i] for i in pos)):
            c = pron.copy()
            c[list(pos)] = sub
            rows.append(c)
    if not rows:
        return np.zeros((0, len(pron)), np.int64)
    c = np.array(rows)
    full = np.concatenate([np.full((len(c), 1), SIL), c, np.full((len(c), 1), SIL)], axis=1)
    c = c[ok[full[:, :-1], full[:, 1:]].all(1)]
    keep = [tuple(PHONEMES[i] for i in row) not in real for row in c]
    return c[np.array(keep, bool)] if len(c) else c


# -- the synthetic set -----------------------------------------------------------------------


def _quotas(p: SwuggySynthetic) -> list[int]:
    """Ids wanted per band (oov, 1-5, 6-20, 21-100, >100): oov_share, the rest evenly."""
    oov = round(p.n_items * p.oov_share)
    rest = p.n_items - oov
    return [oov] + [rest // 4 + (i < rest % 4) for i in range(4)]


def _pick_words(
    band_of: np.ndarray, want: list[int], rng: np.random.Generator, usable: np.ndarray
) -> list[int]:
    """Candidate word indices, 3x each band's quota (some words get no nonword), shuffled."""
    out: list[int] = []
    for b, n in enumerate(want):
        out += rng.permutation(np.flatnonzero((band_of == b) & usable))[: 3 * n].tolist()
    return out


def _match(
    pron: np.ndarray,
    n_subs: tuple[int, int],
    side: int,
    logp: np.ndarray,
    ok: np.ndarray,
    real: set[tuple],
    max_gap: float,
) -> tuple[np.ndarray, float] | None:
    """The nonword with the bigram score closest to the word's, on `side` if any candidate of
    either substitution count is, else on the other side; None when nothing is within max_gap."""
    word = seq_logp(logp, pron)[0]
    pools = []
    for k in n_subs:
        cand = candidates(pron, k, ok, real)
        gap = seq_logp(logp, cand) - word if len(cand) else np.zeros(0)
        good = (np.abs(gap) <= max_gap) & (gap != 0)
        pools.append((cand[good], gap[good]))
    for want_side in (True, False):
        for cand, gap in pools:
            sel = (np.sign(gap) == side) == want_side
            if sel.any():
                i = np.flatnonzero(sel)[np.argmin(np.abs(gap[sel]))]
                return cand[i], float(gap[i])
    return None


def build_swuggy_synthetic(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Generate the set from the world of its synthetic_units dataset into `out_dir`."""
    params = {k: v for k, v in params.items() if k != "checks"}
    p = from_dict(SwuggySynthetic, params, f"datasets.{name}")
    out_dir = Path(out_dir)
    world_path, wp, world, train = synthetic_world(p, out_dir, "swuggy_synthetic")
    lex = world.lexicon
    big = build_lexicon(wp.lexicon_size + 600)  # words beyond the lexicon: never in train text
    prons = list(lex.prons) + list(big.prons[len(lex) :])
    words = list(lex.words) + list(big.words[len(lex) :])
    counts = np.bincount(np.concatenate([np.array(s) for s in train]), minlength=len(prons))
    logp, ok = bigram_logp(world, train), attested(world)
    real = {tuple(strip_stress(pr)) for prs in cmudict_prons().values() for pr in prs}
    rng = stream_rng(p.seed, "swuggy-words")
    usable = np.array([len(pr) >= p.min_phones for pr in prons])
    band_of = np.digitize(counts, [1, 5, 20, 100])
    want, quota = _quotas(p), [0] * 5
    items, n_pos = [], 0  # n_pos: items whose nonword is the more probable one
    first = _pick_words(band_of, want, rng, usable)
    taken = set(first)
    spare = [int(w) for w in rng.permutation(np.flatnonzero(usable)) if w not in taken]
    for k, w in enumerate(first + spare):  # spare words fill the quota of a band that lacks
        b = int(band_of[w])
        if len(items) == p.n_items:
            break
        if k < len(first) and quota[b] >= want[b]:
            continue
        pron = np.asarray(prons[w], np.int64)
        n_sub = 2 if rng.random() < p.two_sub_prob and len(pron) > 2 else 1
        side = 1 if 2 * n_pos <= len(items) else -1  # alternate: keep the oracle at 0.5
        found = _match(pron, (n_sub, 3 - n_sub), side, logp, ok, real, p.max_gap)
        if found is None:
            continue
        items.append((w, pron, *found))
        n_pos += found[1] > 0
        quota[b] += 1
    if len(items) < p.n_items:
        raise SeqlabError(
            f"dataset {name!r}: only {len(items)} of {p.n_items} items could be matched to a "
            "nonword; lower n_items or raise max_gap"
        )
    speakers = speaking_voices(p, wp, "swuggy-voices")
    rrng = stream_rng(p.seed, "swuggy-render")
    rows, units = [], {}
    names = random_names(rrng, 2 * len(items) * len(speakers))
    for i, (w, pron, nonword, _) in enumerate(items):
        for v in speakers:
            draws = world.draws(rrng, len(pron) + 2)
            for correct, ph in ((1, pron), (0, nonword)):
                full = np.concatenate([[SIL], ph, [SIL]])
                fname = names.pop()
                units[fname] = world.render(full, v, draws=draws).units
                phones = " ".join(PHONEMES[q] for q in ph)
                rows.append(
                    {
                        "id": i + 1,
                        "filename": fname,
                        "voice": world.voices[v].id,
                        "frequency": int(counts[w]),
                        "word": words[w] if correct else phones.lower().replace(" ", "_"),
                        "phones": phones,
                        "length": len(ph),
                        "correct": correct,
                    }
                )
    gold = pd.DataFrame(rows)
    unigram = train_unit_counts(world_path, wp.vocab_size)
    phone_scores = {
        r["filename"]: float(
            seq_logp(logp, np.array([PHONEMES.index(q) for q in r["phones"].split()]))[0]
        )
        for r in rows
    }
    voices = [{"id": world.voices[v].id, "heldout": world.voices[v].heldout} for v in speakers]
    extra = {
        "world": {"dataset": p.world, "manifest": str(world_path)},
        "bigram_gap_mean": float(np.mean([abs(it[3]) for it in items])),
        "nonword_more_probable_share": float(np.mean([it[3] > 0 for it in items])),
        "ids_per_band": dict(zip(BAND_LABELS, quota, strict=True)),
    }
    info = {
        "dataset": name,
        "kind": "swuggy_synthetic",
        "vocab_size": wp.vocab_size,
        "split": p.split,
        "voices": voices,
        "params": params_of(p),
        **extra,
    }
    controls = {"phoneme_bigram": phone_scores, "unit_unigram": unigram}
    return write_set(out_dir, LEXICAL, gold, units, controls, info)


# -- real sets -------------------------------------------------------------------------------


def ingest_swuggy_zerospeech(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """A ZR2021 lexical gold.csv + the user's quantized units -> a set; names must match."""
    params = {k: v for k, v in params.items() if k != "checks"}
    p = from_dict(SwuggyZerospeech, params, f"datasets.{name}")
    gold = read_gold(p.gold)
    units = units_of_gold(name, gold, p.gold, p.units, p.vocab_size)
    voices = [{"id": str(v), "heldout": False} for v in sorted(gold["voice"].unique())]
    counts = all_unit_counts(units, p.vocab_size)
    info = {
        "dataset": name,
        "kind": "swuggy_zerospeech",
        "vocab_size": p.vocab_size,
        "split": p.split,
        "voices": voices,
        "params": params_of(p),
    }
    return write_set(Path(out_dir), LEXICAL, gold, units, {"unit_unigram": counts}, info)
