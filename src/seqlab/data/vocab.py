"""The unit vocabulary: what each token id of a unit dataset means. BOS and EOS are defined here.

A unit dataset of `vocab_size` V (its manifest's `vocab_size`) holds the units 0..V-1, the
quantizer's cluster ids, stored raw in shards and text files (never with specials). Two special
ids follow them, put around every utterance by the store writer (seqlab.data.store):

    BOS = V       begin of sequence: opens every utterance of the token stream, BOS u1 .. un EOS
    EOS = V + 1   end of sequence: closes it (sWUGGY scores log p(u1 .. un EOS | BOS))

so a model over units predicts V + 2 token ids (`n_token_ids`). Tokens are uint16, so V is at
most 65534. A unit manifest records `bos`, `eos` and `n_token_ids` as computed here.
"""

from __future__ import annotations

#: the special ids after the units: BOS, then EOS
N_SPECIAL = 2


def bos_id(vocab_size: int) -> int:
    """BOS, the id that opens every utterance: the first id after the units."""
    return vocab_size


def eos_id(vocab_size: int) -> int:
    """EOS, the id that closes every utterance: the one after BOS."""
    return vocab_size + 1


def n_token_ids(vocab_size: int) -> int:
    """Token ids a model over units predicts: the units, BOS and EOS."""
    return vocab_size + N_SPECIAL
