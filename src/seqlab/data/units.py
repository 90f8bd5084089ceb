"""Unit-LM batches: utterances wrapped in BOS/EOS, cut into sequences, ordered by the seed.

The whole split is held in memory as one uint16 token stream (2 bytes/token: 100M tokens
is 200 MB), which makes the data order a pure function of (seed, step) — the property that
lets a resumed trial see exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from seqlab.data.shards import Manifest, Utterance


def token_stream(utts: Iterable[Utterance], bos: int, eos: int) -> np.ndarray:
    """Concatenate utterances as `[BOS, u1, ..., un, EOS]` each: the only place BOS/EOS enter."""
    parts: list[np.ndarray] = []
    for u in utts:
        parts.append(np.array([bos], np.uint16))
        parts.append(np.asarray(u.units, np.uint16))
        parts.append(np.array([eos], np.uint16))
    if not parts:
        return np.zeros(0, np.uint16)
    return np.concatenate(parts)


def cut_sequences(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """Cut the stream into rows of `seq_len + 1` tokens with stride `seq_len`.

    Row i gives inputs `row[:-1]` and targets `row[1:]`; consecutive rows share one token so
    every position of the stream (but the first) is a target exactly once.
    """
    n = (len(stream) - 1) // seq_len
    if n <= 0:
        return np.zeros((0, seq_len + 1), np.uint16)
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return stream[idx]


class SequenceBatches:
    """Deterministic batches over a fixed set of sequences.

    `batch(step)` for training: epoch e = step*B // N is a permutation drawn from
    (seed, e); no state, so resume needs only the step. `eval_batches()` for evaluation:
    the sequences in order, no shuffling.
    """

    def __init__(self, seqs: np.ndarray, batch_size: int, seed: int):
        if len(seqs) == 0:
            raise ValueError("no sequences: the split is shorter than one sequence")
        self.seqs = torch.from_numpy(seqs.astype(np.int64))
        self.batch_size = batch_size
        self.seed = seed
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.seqs)

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.seqs), generator=g)
            self._perm_epoch = epoch
        return self._perm

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `index`-th training batch (index counts micro-batches from 0)."""
        n = len(self.seqs)
        rows = []
        for j in range(index * self.batch_size, (index + 1) * self.batch_size):
            rows.append(self._order(j // n)[j % n])
        x = self.seqs[torch.stack(rows)]
        return x[:, :-1], x[:, 1:]

    def eval_batches(self, max_batches: int | None = None):
        """Yield (x, y) over the sequences in order, at most `max_batches` batches."""
        for b, i in enumerate(range(0, len(self.seqs), self.batch_size)):
            if max_batches is not None and b >= max_batches:
                return
            x = self.seqs[i : i + self.batch_size]
            yield x[:, :-1], x[:, 1:]


def load_unit_split(manifest: Manifest, split: str, seq_len: int) -> np.ndarray:
    """Read a split's shards (in manifest order) and cut it into sequences."""
    stream = token_stream(manifest.iter_split(split), manifest.bos, manifest.eos)
    return cut_sequences(stream, seq_len)
