"""Unit-LM batches: rows of the packed token store, ordered by the seed.

The split's token stream (utterances as `BOS u1 .. un EOS`, laid out by the store writer,
seqlab.data.store) is `np.memmap`ed read-only and cut into rows of `seq_len + 1` tokens with
stride `seq_len`; a batch gathers its rows from the map with one fancy index. Nothing is
decoded or held per trial but one epoch's permutation (int32: 4 bytes per row, 31 MB for 1B
tokens at seq_len 128), so start-up and memory do not grow with the corpus, and the data order
is a pure function of (seed, step): a resumed trial sees exactly the batches an uninterrupted
one would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from seqlab.data.shards import Utterance
from seqlab.data.store import release


def token_stream(utts: Iterable[Utterance], bos: int, eos: int) -> np.ndarray:
    """`[BOS, u1, ..., un, EOS]` per utterance, concatenated: the stream the store holds.

    The store writer (seqlab.data.store.StoreWriter) lays out the same stream block-wise;
    this per-utterance form is the reference the checks and tests compare it with.
    """
    parts: list[np.ndarray] = []
    for u in utts:
        parts += [np.array([bos], np.uint16), np.asarray(u.units, np.uint16)]
        parts.append(np.array([eos], np.uint16))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint16)


def n_rows(n_tokens: int, seq_len: int) -> int:
    """Rows of `seq_len + 1` tokens, stride `seq_len`: every token but the first is a target."""
    return max(0, (n_tokens - 1) // seq_len)


class StoreBatches:
    """Deterministic batches over the rows of a token stream (a memmap or any 1-D array).

    `batch(index)` for training: epoch e = index*B // N is a permutation drawn from (seed, e)
    (torch.randperm, as before the store: same seed, same batches); no state, so resume needs
    only the step. `eval_batches()` for evaluation: the rows in order, no shuffling.
    """

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, seed: int):
        self.tokens, self.seq_len = tokens, seq_len
        self.n = n_rows(len(tokens), seq_len)
        if self.n == 0:
            raise ValueError("no sequences: the split is shorter than one sequence")
        self.batch_size = batch_size
        self.seed = seed
        self._cols = np.arange(seq_len + 1, dtype=np.int64)
        self._perm_epoch = -1
        self._perm = torch.empty(0, dtype=torch.int32)

    def __len__(self) -> int:
        return self.n

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=g, dtype=torch.int32)
            self._perm_epoch = epoch
        return self._perm

    def rows(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the given row numbers, gathered from the map (CPU int64)."""
        idx = rows.astype(np.int64)[:, None] * self.seq_len + self._cols
        x = torch.from_numpy(np.asarray(self.tokens[idx]).astype(np.int64))
        release(self.tokens)  # keep RSS to this batch, not every page touched so far
        return x[:, :-1], x[:, 1:]

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `index`-th training batch (index counts micro-batches from 0)."""
        j = np.arange(index * self.batch_size, (index + 1) * self.batch_size, dtype=np.int64)
        epochs, pos = j // self.n, j % self.n
        rows = np.empty(len(j), np.int64)
        for e in np.unique(epochs):  # one or two epochs (more only if batch_size > rows)
            sel = epochs == e
            rows[sel] = self._order(int(e)).numpy()[pos[sel]]
        return self.rows(rows)

    def eval_batches(
        self, max_batches: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x, y) over the rows in order, at most `max_batches` batches."""
        for b, i in enumerate(range(0, self.n, self.batch_size)):
            if max_batches is not None and b >= max_batches:
                return
            yield self.rows(np.arange(i, min(i + self.batch_size, self.n)))
