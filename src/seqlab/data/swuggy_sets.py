"""sWUGGY sets in the ZeroSpeech 2021 lexical layout: built from the synthetic world or ingested.

A set directory holds `gold.csv` (id, filename, voice, frequency, word, phones, length,
correct), `units.txt` (`filename<TAB>u1,u2,...`, the ZeroSpeech quantized format),
`controls.json` (+ `controls/*.txt` submission files) and `manifest.json` (kind, vocab, voices,
controls), so a model is scored the same way on the embedded set and on real ZR2021 files.

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
from seqlab.config_datasets import SwuggySynthetic, SwuggyZerospeech, SyntheticUnits, params_of
from seqlab.data.ingest import read_units_text, write_units_text
from seqlab.data.lexicon import build_lexicon, cmudict_prons, strip_stress
from seqlab.data.manifest import Manifest, write_dataset_manifest
from seqlab.data.phonemes import CLASS_OF, PHONEMES, SIL
from seqlab.data.swuggy_files import read_gold, write_gold, write_submission
from seqlab.data.synthetic_units import split_sentences
from seqlab.data.vocab import bos_id, eos_id, n_token_ids
from seqlab.data.world import World, stream_rng
from seqlab.errors import SeqlabError
from seqlab.files import read_json, write_json
from seqlab.scoring.swuggy import BAND_LABELS, lexical_scores_seen_heldout, unigram_scores

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


def _world_of(p: SwuggySynthetic, out_dir: Path) -> tuple[Path, SyntheticUnits]:
    path = (
        Path(p.world_manifest) if p.world_manifest else out_dir.parent / p.world / "manifest.json"
    )
    man = read_json(path)
    if man.get("kind") != "synthetic_units":
        raise SeqlabError(
            f"{path}: world {p.world!r} is a {man.get('kind')!r} dataset; "
            "a swuggy_synthetic set needs a synthetic_units dataset"
        )
    return path, SyntheticUnits(**man["params"])


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
    world_path, wp = _world_of(p, out_dir)
    world = World(wp.world_params())
    train, _ = split_sentences(world, wp)
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
    n_train = wp.n_voices
    vrng = stream_rng(p.seed, "swuggy-voices")
    seen = sorted(vrng.choice(n_train, min(p.n_seen_voices, n_train), replace=False).tolist())
    held = list(range(n_train, n_train + min(p.n_heldout_voices, wp.n_heldout_voices)))
    rrng = stream_rng(p.seed, "swuggy-render")
    rows, units = [], {}
    names = _names(rrng, 2 * len(items) * (len(seen) + len(held)))
    for i, (w, pron, nonword, _) in enumerate(items):
        for v in seen + held:
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
    unigram = _train_unigram(world_path, wp.vocab_size)
    phone_scores = {
        r["filename"]: float(
            seq_logp(logp, np.array([PHONEMES.index(q) for q in r["phones"].split()]))[0]
        )
        for r in rows
    }
    voices = [{"id": world.voices[v].id, "heldout": world.voices[v].heldout} for v in seen + held]
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
    return _write_set(out_dir, gold, units, controls, info)


def _names(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct random 11-letter filenames (ZR2021 style: the name says nothing)."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    out: dict[str, None] = {}
    while len(out) < n:
        out.update(dict.fromkeys("".join(r) for r in rng.choice(letters, (n - len(out), 11))))
    return list(out)


def _train_unigram(world_manifest: Path, vocab: int) -> np.ndarray:
    """Unit counts of the world dataset's train split (the unit-unigram control's model)."""
    counts = np.zeros(vocab, np.int64)
    for u in Manifest(world_manifest).iter_split("train"):
        counts += np.bincount(np.asarray(u.units, np.int64), minlength=vocab)[:vocab]
    return counts


def _write_set(
    out: Path,
    gold: pd.DataFrame,
    units: dict[str, np.ndarray],
    controls: dict[str, Any],
    info: dict[str, Any],
) -> dict:
    """gold.csv, units.txt, controls, manifest.json (last; `info` + counts). A control is a
    score per filename or a unit count vector (the unigram model)."""
    write_gold(out / "gold.csv", gold)
    write_units_text(out / "units.txt", ((f, units[f]) for f in gold["filename"]), "tab")
    held = [v["id"] for v in info["voices"] if v["heldout"]]
    files, results = list(gold["filename"]), {}
    for cname, model in controls.items():
        if not isinstance(model, dict):  # unit counts -> unigram scores of every item
            model = dict(zip(files, unigram_scores([units[f] for f in files], model), strict=True))
        write_submission(out / "controls" / f"{cname}.txt", model)
        results[cname] = lexical_scores_seen_heldout(gold, model, held)
    write_json(out / "controls.json", results)
    summary = {
        c: {k: r.get(k) for k in ("lexical_all", "lexical_invocab")}
        | {f"{g}.lexical_all": r[g]["lexical_all"] for g in ("seen", "heldout") if g in r}
        for c, r in results.items()
    }
    fields = {k: v for k, v in info.items() if k not in ("dataset", "kind", "params")}
    V = info["vocab_size"]
    splits = {
        info["split"]: {"n_samples": len(gold), "n_units": int(sum(len(u) for u in units.values()))}
    }
    return write_dataset_manifest(
        out / "manifest.json",
        info["dataset"],
        info["kind"],
        splits,
        info["params"],
        **fields,
        bos=bos_id(V),
        eos=eos_id(V),
        n_token_ids=n_token_ids(V),
        n_ids=int(gold["id"].nunique()),
        controls=summary,
        files={"gold": "gold.csv", "units": "units.txt", "controls": "controls.json"},
    )


# -- real sets -------------------------------------------------------------------------------


def ingest_swuggy_zerospeech(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """A ZR2021 lexical gold.csv + the user's quantized units -> a set; names must match."""
    params = {k: v for k, v in params.items() if k != "checks"}
    p = from_dict(SwuggyZerospeech, params, f"datasets.{name}")
    gold = read_gold(p.gold)
    units = {}
    for n, u in read_units_text(p.units, p.vocab_size):
        units[n[:-4] if n.endswith(".wav") else n] = u
    lack = [f for f in gold["filename"] if f not in units]
    extra = sorted(set(units) - set(gold["filename"]))
    if lack or extra:
        msg = f"{len(lack)} gold filenames have no units (e.g. {lack[0]!r})" if lack else ""
        msg += "; " if lack and extra else ""
        msg += f"{len(extra)} units names are not in gold (e.g. {extra[0]!r})" if extra else ""
        raise SeqlabError(
            f"dataset {name!r}: {p.units} does not match {p.gold}: {msg}; "
            "quantize exactly the lexical files of that gold.csv"
        )
    voices = [{"id": str(v), "heldout": False} for v in sorted(gold["voice"].unique())]
    counts = np.bincount(
        np.concatenate(list(units.values())).astype(np.int64), minlength=p.vocab_size
    )
    info = {
        "dataset": name,
        "kind": "swuggy_zerospeech",
        "vocab_size": p.vocab_size,
        "split": p.split,
        "voices": voices,
        "params": params_of(p),
    }
    return _write_set(Path(out_dir), gold, units, {"unit_unigram": counts}, info)
