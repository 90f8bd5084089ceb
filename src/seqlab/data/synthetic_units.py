"""The `synthetic_units` dataset: a SpidR-like unit corpus drawn from the synthetic world.

Train utterances are sentences spoken by training voices; eval utterances are held-out sentences
(never a train sentence) spoken by training and held-out voices. Written as WebDataset shards +
manifest.json (see seqlab.data.shards), so the rest of the pipeline cannot tell it from real
units. The defaults give ~2M train units (~5.16 nats unigram entropy, like SpidR's 5.17) in a
few seconds on one core.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from seqlab.config import PARAMS_MODELS
from seqlab.config_load import check_block
from seqlab.data.shards import Utterance, write_manifest, write_shards
from seqlab.data.store import StoreWriter
from seqlab.data.world import PHONEMES, World, WorldParams, stream_rng
from seqlab.io import SeqlabError

T = TypeVar("T")


@dataclass
class SyntheticUnitsParams(WorldParams):
    """Every generator setting: the world's (inherited, see WorldParams) and the corpus's."""

    n_train_utterances: int = 11000  # train utterances (~180 units each with the defaults)
    n_eval_utterances: int = 550  # eval utterances, on sentences never used in train
    eval_heldout_share: float = 0.25  # share of eval utterances spoken by held-out voices
    dedup: bool = False  # drop consecutive repeated units (off: SpidR-style 50 Hz frames)
    shard_size: int = 1000  # utterances per .tar shard

    def problems(self) -> list[str]:
        """What is out of range, as `key=value: why` strings (empty when all is well)."""
        out = []
        for k in (
            "lexicon_size",
            "n_followers",
            "n_voices",
            "n_train_utterances",
            "n_eval_utterances",
            "shard_size",
            "frame_rate",
            "max_frames",
        ):
            if getattr(self, k) < 1:
                out.append(f"{k}={getattr(self, k)}: must be >= 1")
        for k in (
            "collocation_prob",
            "pause_prob",
            "coart_prob",
            "stickiness",
            "noise",
            "eval_heldout_share",
        ):
            if not 0.0 <= getattr(self, k) <= 1.0:
                out.append(f"{k}={getattr(self, k)}: must be a probability in [0, 1]")
        for k in ("rate_sigma", "voice_sigma", "dur_sigma", "context_sigma", "block_power"):
            if getattr(self, k) < 0:
                out.append(f"{k}={getattr(self, k)}: must be >= 0")
        if self.n_heldout_voices < 0:
            out.append(f"n_heldout_voices={self.n_heldout_voices}: must be >= 0")
        if self.mean_words < 1:
            out.append(f"mean_words={self.mean_words}: must be >= 1")
        if self.unit_concentration <= 0:
            out.append(f"unit_concentration={self.unit_concentration}: must be > 0")
        if not len(PHONEMES) <= self.vocab_size <= 65534:  # >= 1 unit per phoneme; uint16
            out.append(f"vocab_size={self.vocab_size}: must be in {len(PHONEMES)}..65534")
        if any(not isinstance(v, int | float) or v <= 0 for v in self.class_dur_ms.values()):
            out.append(f"class_dur_ms={self.class_dur_ms}: durations must be > 0")
        return out


def parse_params(cls: type[T], params: dict[str, Any], what: str) -> T:
    """Build the params dataclass `cls` from a config dict, validated by its typed model
    (seqlab.config): unknown keys, wrong types and ranges -> one SeqlabError line."""
    v = check_block(PARAMS_MODELS[cls.__name__], dict(params), what)
    try:
        obj = cls(**{f.name: v[f.name] for f in fields(cls) if f.name in v})  # type: ignore
    except (TypeError, ValueError) as e:
        raise SeqlabError(f"{what}: {e}; fix the config") from None
    bad = obj.problems() if hasattr(obj, "problems") else []
    if bad:
        raise SeqlabError(f"{what}: {'; '.join(bad)}; fix the config")
    return obj


def split_sentences(
    world: World, p: SyntheticUnitsParams
) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Train and eval sentences (word ids); no eval sentence is a train sentence.

    Deterministic from the seed, so later stages (sWUGGY's out-of-vocabulary words) can
    recompute which words the train text contains.
    """
    train = world.sentences(p.n_train_utterances, stream_rng(p.seed, "train-sentences"))
    seen = set(train)
    rng = stream_rng(p.seed, "eval-sentences")
    evals: list[tuple[int, ...]] = []
    for _ in range(100):
        evals += [s for s in world.sentences(2 * p.n_eval_utterances, rng) if s not in seen]
        if len(evals) >= p.n_eval_utterances:
            return train, evals[: p.n_eval_utterances]
    raise SeqlabError(
        f"synthetic_units: cannot draw {p.n_eval_utterances} eval sentences that differ from "
        "the train sentences; raise lexicon_size or mean_words, or lower n_eval_utterances"
    )


def _voices(world: World, p: SyntheticUnitsParams, split: str, n: int) -> np.ndarray:
    rng = stream_rng(p.seed, f"{split}-voices")
    voices = rng.integers(0, p.n_voices, n)
    if split == "eval" and p.n_heldout_voices:
        held = rng.random(n) < p.eval_heldout_share
        voices[held] = rng.integers(p.n_voices, p.n_voices + p.n_heldout_voices, held.sum())
    return voices


def iter_utterances(
    world: World, p: SyntheticUnitsParams, split: str, sentences: list[tuple[int, ...]]
) -> Iterator[Utterance]:
    """Render a split in chunks (vectorized within a chunk, bounded memory)."""
    voices = _voices(world, p, split, len(sentences))
    rng = stream_rng(p.seed, f"{split}-render")
    chunk = 2000
    for start in range(0, len(sentences), chunk):
        sents = sentences[start : start + chunk]
        seqs = [world.phonemes(s, rng) for s in sents]
        vo = voices[start : start + chunk]
        units, n_frames = world.render_many(seqs, vo, rng, dedup=p.dedup)
        for j, (s, u) in enumerate(zip(sents, units, strict=True)):
            voice = world.voices[vo[j]]
            meta = {
                "speaker": voice.id,
                "heldout_voice": voice.heldout,
                "duration": round(int(n_frames[j]) / p.frame_rate, 3),
                "source": "synthetic",
                "text": world.text(s),
            }
            yield Utterance(key=f"{split}_{start + j:07d}", units=u, meta=meta)


def build_synthetic_units(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Generate the dataset into `out_dir` (shards/ + manifest.json); return the manifest."""
    p = parse_params(SyntheticUnitsParams, params, f"dataset {name!r} (synthetic_units)")
    world = World(p.world_params())
    train, evals = split_sentences(world, p)
    splits, store = {}, {}
    for split, sents in (("train", train), ("eval", evals)):
        writer = StoreWriter(out_dir, split, p.vocab_size)
        utts = iter_utterances(world, p, split, sents)
        splits[split] = write_shards(utts, out_dir, split, p.shard_size, store=writer)
        store[split] = writer.close()
    voices = [{"id": v.id, "heldout": v.heldout, "rate": round(v.rate, 4)} for v in world.voices]
    return write_manifest(
        Path(out_dir) / "manifest.json",
        dataset=name,
        kind="synthetic_units",
        vocab_size=p.vocab_size,
        splits=splits,
        params=asdict(p),
        store=store,
        voices=voices,
    )
