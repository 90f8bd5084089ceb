"""Phoneme labels shared by real and synthetic data, the CTC model and PER.

The 39 ARPAbet phonemes (stress removed) + SIL, in the order of neural_seq_decoder's
PHONE_DEF_SIL: its label ids are ours + 1, 0 being the CTC blank. Each phoneme has a class
(the synthetic world draws durations per class and substitutes within a class). The number of
output frames the CTC model's unfold leaves a trial is here too, because a data check (enough
frames for the labels?) and the model (packing, loss lengths) must agree on it.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

# fmt: off
PHONEMES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH",
    "UW", "V", "W", "Y", "Z", "ZH", "SIL",
)
# fmt: on
PHONEME_ID: dict[str, int] = {p: i for i, p in enumerate(PHONEMES)}
SIL: int = PHONEME_ID["SIL"]
CLASSES: tuple[str, ...] = (
    "vowel",
    "stop",
    "affricate",
    "fricative",
    "nasal",
    "liquid_glide",
    "silence",
)
_MEMBERS = {
    "vowel": "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW",
    "stop": "B D G K P T",
    "affricate": "CH JH",
    "fricative": "DH F HH S SH TH V Z ZH",
    "nasal": "M N NG",
    "liquid_glide": "L R W Y",
    "silence": "SIL",
}
PHONEME_CLASS: dict[str, str] = {p: c for c, ps in _MEMBERS.items() for p in ps.split()}
CLASS_OF: np.ndarray = np.array([CLASSES.index(PHONEME_CLASS[p]) for p in PHONEMES], np.int64)

Lengths = TypeVar("Lengths")  # a numpy array or a torch tensor of frame counts


def ctc_frames(frame_lens: Lengths, kernel_len: int, stride_len: int) -> Lengths:
    """Output frames after unfolding `kernel_len` bins every `stride_len` bins:
    floor((T - K) / S) + 1, and 0 when T < K. Works on numpy arrays and torch tensors alike."""
    return (frame_lens >= kernel_len) * ((frame_lens - kernel_len) // stride_len + 1)
