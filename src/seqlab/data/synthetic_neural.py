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

from pathlib import Path
from typing import Any

import numpy as np

from seqlab.config import from_dict
from seqlab.config_datasets import NeuralSynthetic, WorldParams, params_of
from seqlab.data.neural import NeuralSplit, write_dataset
from seqlab.data.world import CLASS_OF, PHONEMES, SIL, World, stream_rng
from seqlab.errors import SeqlabError


def _patterns(p: NeuralSynthetic, rng: np.random.Generator) -> np.ndarray:
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
    p: NeuralSynthetic,
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
    p = from_dict(NeuralSynthetic, params, f"datasets.{name}")
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
    return write_dataset(name, "neural_synthetic", splits, p.n_days, params_of(p), Path(out_dir))
