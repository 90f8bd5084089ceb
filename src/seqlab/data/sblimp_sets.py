"""sBLIMP sets in the ZeroSpeech 2021 syntactic layout: built from the synthetic world or
ingested from the official gold.csv and one's own units.

A set directory (`seqlab.data.zr_sets`) holds `gold.csv` (id, filename, voice, type, subtype,
correct, transcription), `units.txt`, `controls.json` and `manifest.json`.

The synthetic set (`sblimp_synthetic`) builds minimal pairs from the only word-order
regularity the world's sentences have: each word's preferred followers (collocations, drawn
with `collocation_prob`). The correct sentence holds a collocated pair `a b` (one seen at least
`min_pair_count` times in the world dataset's train text); the incorrect one breaks it, each
kind of break a `type`:

- `collocation_swap`: `b a`, where `a` is no preferred follower of `b` (same words, new order);
- `follower_replaced`: `a c`, where `c` is no preferred follower of `a`, has the phoneme classes
  of `b` (hence its durations) and a train count within `max_freq_ratio` of `b`'s, on the more
  or the less frequent side alternately from id to id.

`subtype` is the pair's train count band. Context words around the pair are drawn by frequency
and form no other collocation in either sentence. Both sentences are rendered by the same
voice from the same draws (a word keeps its draws when it moves, SIL pauses stay at the same
word boundaries), so they have exactly the same number of units; the two scoring conventions
therefore agree on this set. Controls shipped with the set score about 0.5: a unit-unigram
model and a word-unigram model (word-order-blind: it ties every swap); a word-bigram model of
the train text is a topline (the set can be solved from the corpus). Changing the corpus
(world or its train text) changes every item and every figure.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqlab.config import from_dict
from seqlab.config_datasets import SblimpSynthetic, SblimpZerospeech, params_of
from seqlab.data.phonemes import CLASS_OF, SIL
from seqlab.data.sblimp_files import read_gold
from seqlab.data.world import RenderDraws, World, stream_rng
from seqlab.data.zr_sets import (
    SYNTACTIC,
    all_unit_counts,
    random_names,
    speaking_voices,
    synthetic_world,
    train_unit_counts,
    units_of_gold,
    write_set,
)
from seqlab.errors import SeqlabError

TYPES = ("collocation_swap", "follower_replaced")
PAIR_BANDS = ((0, "pair_rare"), (20, "pair_common"), (100, "pair_frequent"))  # count >= edge


# -- the corpus's statistics -----------------------------------------------------------------


@dataclass
class Corpus:
    """Word and word-bigram counts of the world dataset's train text."""

    words: np.ndarray  # (n_lex,) counts
    pairs: collections.Counter  # (a, b) -> count
    starts: np.ndarray  # (n_lex,) sentence-initial counts

    @classmethod
    def of(cls, train: list[tuple[int, ...]], n_lex: int) -> Corpus:
        pairs = collections.Counter(p for s in train for p in zip(s[:-1], s[1:], strict=False))
        words = np.bincount(np.concatenate([np.array(s) for s in train]), minlength=n_lex)
        return cls(words, pairs, np.bincount([s[0] for s in train], minlength=n_lex))

    def word_unigram(self, sentence: tuple[int, ...]) -> float:
        """Word-order-blind control: sum of add-one smoothed log p(word) (fsum: exact, so a
        swap ties)."""
        logp = np.log((self.words + 1.0) / (self.words.sum() + len(self.words)))
        return math.fsum(logp[list(sentence)].tolist())

    def word_bigram(self, sentence: tuple[int, ...], alpha: float = 0.1) -> float:
        """Topline: add-alpha smoothed word bigram log-probability (sentence start included)."""
        n = len(self.words)
        lp = np.log((self.starts[sentence[0]] + alpha) / (self.starts.sum() + alpha * n))
        for a, b in zip(sentence[:-1], sentence[1:], strict=False):
            lp += np.log((self.pairs[(a, b)] + alpha) / (self.words[a] + alpha * n))
        return float(lp)


# -- the synthetic set -----------------------------------------------------------------------


def _collocations(world: World, corpus: Corpus, min_count: int) -> list[tuple[int, int]]:
    """Distinct (a, b), b a preferred follower of a, seen >= min_count times, a != b."""
    out = {
        (a, int(b))
        for a in range(len(world.lexicon))
        for b in world.followers[a]
        if a != b and corpus.pairs[(a, int(b))] >= min_count
    }
    return sorted(out)


def _replacement(
    world: World, corpus: Corpus, a: int, b: int, side: int, ratio: float, by_class: dict
) -> int | None:
    """c for `a b -> a c`: b's phoneme classes, no follower of a, count within `ratio` of b's;
    the closest count on `side` (+1 more frequent, -1 less) if any, else on the other."""
    cb = corpus.words[b] + 1.0
    cands = [
        c
        for c in by_class[tuple(CLASS_OF[world.lexicon.prons[b]])]
        if c not in (a, b)
        and c not in world.followers[a]
        and 1 / ratio <= (corpus.words[c] + 1.0) / cb <= ratio
    ]
    if not cands:
        return None
    gap = np.log((corpus.words[cands] + 1.0) / cb)
    for want in (True, False):
        sel = [i for i, g in enumerate(gap) if (np.sign(g) == side) == want]
        if sel:
            return cands[min(sel, key=lambda i: abs(gap[i]))]
    return None


def _context(
    world: World, rng: np.random.Generator, n_left: int, n_right: int, members: list[list[int]]
) -> tuple[list[int], list[int]] | None:
    """Left/right words by frequency that make no collocation in any member (None: retry)."""
    left = rng.choice(len(world.lexicon), n_left, p=world.lexicon.prob).tolist()
    right = rng.choice(len(world.lexicon), n_right, p=world.lexicon.prob).tolist()
    for m in members:
        s = left + m + right
        if any(s[i + 1] in world.followers[s[i]] for i in range(len(s) - 1) if i != n_left):
            return None
    return left, right


def _items(name: str, p: SblimpSynthetic, world: World, corpus: Corpus) -> list[dict[str, Any]]:
    """Every id: type, subtype, the correct and incorrect sentence, where the pair sits."""
    colloc = _collocations(world, corpus, p.min_pair_count)
    by_class: dict[tuple, list[int]] = collections.defaultdict(list)
    for w, pron in enumerate(world.lexicon.prons):
        by_class[tuple(CLASS_OF[pron])].append(w)
    rng = stream_rng(p.seed, "sblimp-items")
    items = []
    for kind in TYPES:
        n_pos, got = 0, []
        for k in rng.permutation(len(colloc)):
            if len(got) == p.n_per_type:
                break
            a, b = colloc[k]
            if kind == "collocation_swap":
                if a in world.followers[b]:
                    continue
                bad = [b, a]
            else:
                side = 1 if 2 * n_pos <= len(got) else -1  # word-unigram control at 0.5
                c = _replacement(world, corpus, a, b, side, p.max_freq_ratio, by_class)
                if c is None:
                    continue
                n_pos += corpus.words[c] > corpus.words[b]
                bad = [a, c]
            n_words = int(rng.integers(p.min_words, p.max_words + 1))
            n_left = int(rng.integers(0, n_words - 1))
            for _ in range(50):
                ctx = _context(world, rng, n_left, n_words - 2 - n_left, [[a, b], bad])
                if ctx is not None:
                    break
            else:
                continue
            count = corpus.pairs[(a, b)]
            band = next(name for edge, name in reversed(PAIR_BANDS) if count >= edge)
            left, right = ctx
            got.append(
                {
                    "type": kind,
                    "subtype": band,
                    "good": tuple(left + [a, b] + right),
                    "bad": tuple(left + bad + right),
                    "at": n_left,
                }
            )
        if len(got) < p.n_per_type:
            raise SeqlabError(
                f"dataset {name!r}: only {len(got)} of {p.n_per_type} {kind} items found; "
                "lower n_per_type or min_pair_count"
            )
        items += got
    return items


def _render_pair(
    world: World, item: dict[str, Any], voice: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Units of the correct and incorrect sentence: shared draws and pauses, matched lengths.

    Each word position owns a slice of the draws; in the incorrect sentence a swapped word
    takes its own slice along, a replacement (same phoneme classes) takes the replaced one's."""
    good, bad, at = item["good"], item["bad"], item["at"]
    prons = world.lexicon.prons
    pauses = rng.random(len(good) - 1) < world.params.pause_prob
    lens = [len(prons[w]) for w in good]
    n = 2 + sum(lens) + int(pauses.sum())
    draws = world.draws(rng, n)
    swapped = item["type"] == "collocation_swap"
    order = list(range(len(good)))
    if swapped:
        order[at], order[at + 1] = at + 1, at
    gaps = np.append(pauses, False)  # a pause after each word but the last
    starts = np.cumsum([1] + [lens[i] + gaps[i] for i in range(len(good))])  # rows of word i
    out = []
    for words, slots in ((good, range(len(good))), (bad, order)):
        ph, rows = [SIL], [0]
        for pos, (w, slot) in enumerate(zip(words, slots, strict=True)):
            if pos and pauses[pos - 1]:
                ph.append(SIL)
                rows.append(starts[pos] - 1)
            ph += prons[w].tolist()
            rows += range(starts[slot], starts[slot] + len(prons[w]))
        ph.append(SIL)
        rows.append(n - 1)
        shared = RenderDraws(*(getattr(draws, f.name)[rows] for f in fields(RenderDraws)))
        out.append(world.render(np.array(ph), voice, draws=shared).units)
    return out[0], out[1]


def build_sblimp_synthetic(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Generate the set from the world of its synthetic_units dataset into `out_dir`."""
    params = {k: v for k, v in params.items() if k != "checks"}
    p = from_dict(SblimpSynthetic, params, f"datasets.{name}")
    out_dir = Path(out_dir)
    world_path, wp, world, train = synthetic_world(p, out_dir, "sblimp_synthetic")
    corpus = Corpus.of(train, len(world.lexicon))
    items = _items(name, p, world, corpus)
    speakers = speaking_voices(p, wp, "sblimp-voices")
    rrng = stream_rng(p.seed, "sblimp-render")
    names = random_names(rrng, 2 * len(items) * len(speakers))
    rows, units, controls = [], {}, {"word_unigram": {}, "word_bigram": {}}
    for i, item in enumerate(items):
        for v in speakers:
            pair = _render_pair(world, item, v, rrng)
            for correct, words, u in ((1, item["good"], pair[0]), (0, item["bad"], pair[1])):
                fname = names.pop()
                units[fname] = u
                controls["word_unigram"][fname] = corpus.word_unigram(words)
                controls["word_bigram"][fname] = corpus.word_bigram(words)
                rows.append(
                    {
                        "id": i + 1,
                        "filename": fname,
                        "voice": world.voices[v].id,
                        "type": item["type"],
                        "subtype": item["subtype"],
                        "correct": correct,
                        "transcription": world.text(words),
                    }
                )
    voices = [{"id": world.voices[v].id, "heldout": world.voices[v].heldout} for v in speakers]
    info = {
        "dataset": name,
        "kind": "sblimp_synthetic",
        "vocab_size": wp.vocab_size,
        "split": p.split,
        "voices": voices,
        "params": params_of(p),
        "world": {"dataset": p.world, "manifest": str(world_path)},
        "ids_per_type": dict(collections.Counter(it["type"] for it in items)),
        "toplines": ["word_bigram"],
    }
    controls["unit_unigram"] = train_unit_counts(world_path, wp.vocab_size)
    return write_set(out_dir, SYNTACTIC, pd.DataFrame(rows), units, controls, info)


# -- real sets -------------------------------------------------------------------------------


def ingest_sblimp_zerospeech(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """A ZR2021 syntactic gold.csv + the user's quantized units -> a set; names must match."""
    params = {k: v for k, v in params.items() if k != "checks"}
    p = from_dict(SblimpZerospeech, params, f"datasets.{name}")
    gold = read_gold(p.gold)
    units = units_of_gold(name, gold, p.gold, p.units, p.vocab_size)
    info = {
        "dataset": name,
        "kind": "sblimp_zerospeech",
        "vocab_size": p.vocab_size,
        "split": p.split,
        "voices": [{"id": str(v), "heldout": False} for v in sorted(gold["voice"].unique())],
        "params": params_of(p),
    }
    counts = all_unit_counts(units, p.vocab_size)
    return write_set(Path(out_dir), SYNTACTIC, gold, units, {"unit_unigram": counts}, info)
