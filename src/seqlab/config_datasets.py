"""The typed config of every dataset kind and of each kind's checks (see seqlab.config)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Pos = Annotated[int, Field(ge=1)]
NonNeg = Annotated[int, Field(ge=0)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegF = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PosF = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Vocab = Annotated[int, Field(ge=1, le=65534)]  # uint16 tokens with BOS/EOS on top
N_PHONEMES = 40  # 39 ARPAbet + SIL: a synthetic world needs >= 1 unit per phoneme


class Strict(BaseModel):
    """Unknown keys refused, no silent type coercion (a YAML string is never a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- checks ------------------------------------------------------------------------------------
class UnitChecks(Strict):
    """Thresholds of the unit checks (seqlab.data.checks.CheckParams)."""

    seq_len: Pos = 128
    min_units: Pos = 1
    max_overlap_share: Prob = 0.01
    window: Pos | None = None
    window_min: Pos = 2000
    window_divisor: Pos = 200
    window_factor: PosF = 4.0
    window_min_jsd: NonNegF = 0.02
    train_split: str = "train"
    max_listed: NonNeg = 5


class BinChecks(Strict):
    """Thresholds of the token-bin checks (seqlab.data.token_bins.BinCheckParams)."""

    seq_len: Pos = 128
    min_val_share: Prob = 0.0001
    max_val_share: Prob = 0.5
    max_listed: NonNeg = 5


class NeuralChecks(Strict):
    """Thresholds of the neural checks (seqlab.data.neural.NeuralCheckParams)."""

    kernel_len: Pos = 32
    stride_len: Pos = 4
    max_listed: NonNeg = 5


class SwuggyChecks(Strict):
    """sWUGGY sets have no tunable checks (an empty block is allowed)."""


# -- datasets ----------------------------------------------------------------------------------
class World(Strict):
    """The synthetic world (seqlab.data.world.WorldParams)."""

    seed: NonNeg = 0
    lexicon_size: Pos = 2000
    mean_words: Annotated[float, Field(ge=1.0)] = 10.0
    n_followers: Pos = 4
    collocation_prob: Prob = 0.35
    pause_prob: Prob = 0.1
    n_voices: Pos = 20
    n_heldout_voices: NonNeg = 4
    rate_sigma: NonNegF = 0.12
    voice_sigma: NonNegF = 1.5
    frame_rate: Pos = 50
    class_dur_ms: dict[str, PosF] = Field(
        default_factory=lambda: {
            "vowel": 100.0,
            "stop": 60.0,
            "affricate": 90.0,
            "fricative": 90.0,
            "nasal": 70.0,
            "liquid_glide": 60.0,
            "silence": 200.0,
        }
    )
    dur_sigma: NonNegF = 0.3
    max_frames: Pos = 40
    vocab_size: Annotated[int, Field(ge=N_PHONEMES, le=65534)] = 256
    block_power: NonNegF = 0.4
    unit_concentration: PosF = 1.75
    context_sigma: NonNegF = 1.5
    coart_prob: Prob = 0.2
    stickiness: Prob = 0.85
    noise: Prob = 0.03


class SyntheticUnits(World):
    kind: Literal["synthetic_units"]
    n_train_utterances: Pos = 11000
    n_eval_utterances: Pos = 550
    eval_heldout_share: Prob = 0.25
    dedup: bool = False
    shard_size: Pos = 1000
    checks: UnitChecks = Field(default_factory=UnitChecks)


class UnitsText(Strict):
    kind: Literal["units_text"]
    train: Annotated[str, Field(min_length=1)]
    eval: str | None = None
    eval_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05
    split_seed: NonNeg = 0
    vocab_size: Vocab = 256
    frame_rate: PosF = 50.0
    speaker_regex: str | None = None
    checks: UnitChecks = Field(default_factory=UnitChecks)

    @field_validator("speaker_regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"{v!r} is not a regular expression ({e})") from None
        return v


Shards = Annotated[str, Field(min_length=1)] | Annotated[list[str], Field(min_length=1)]


class UnitsShards(Strict):
    kind: Literal["units_shards"]
    train: Shards
    eval: Shards
    vocab_size: Vocab = 256
    mode: Literal["copy", "hardlink", "symlink"] = "copy"
    checks: UnitChecks = Field(default_factory=UnitChecks)


class SyntheticTextBins(World):
    kind: Literal["synthetic_text_bins"]
    n_train_sentences: Pos = 20000
    n_val_sentences: Pos = 1000
    checks: BinChecks = Field(default_factory=BinChecks)


class TokenBins(Strict):
    kind: Literal["token_bins"]
    path: Annotated[str, Field(min_length=1)]
    vocab_size: Vocab | None = None
    link: bool = True
    trusted: bool = False  # read nanoGPT's meta.pkl (a pickle: runs code) for the vocab size
    checks: BinChecks = Field(default_factory=BinChecks)


class SwuggySynthetic(Strict):
    kind: Literal["swuggy_synthetic"]
    world: Annotated[str, Field(min_length=1)]
    world_manifest: str | None = None
    seed: NonNeg = 0
    n_items: Pos = 240
    oov_share: Prob = 0.2
    n_seen_voices: Pos = 4
    n_heldout_voices: NonNeg = 4
    two_sub_prob: Prob = 0.5
    min_phones: Pos = 3
    max_gap: PosF = 1.0
    split: str = "dev"
    checks: SwuggyChecks = Field(default_factory=SwuggyChecks)


class SwuggyZerospeech(Strict):
    kind: Literal["swuggy_zerospeech"]
    gold: Annotated[str, Field(min_length=1)]
    units: Annotated[str, Field(min_length=1)]
    vocab_size: Vocab = 256
    split: str = "dev"
    checks: SwuggyChecks = Field(default_factory=SwuggyChecks)


class NeuralSynthetic(Strict):
    kind: Literal["neural_synthetic"]
    seed: NonNeg = 0
    lexicon_size: Pos = 500
    mean_words: Annotated[float, Field(ge=1.0)] = 4.0
    n_days: Pos = 4
    n_train_per_day: Pos = 100
    n_test_per_day: Pos = 20
    n_competition_days: NonNeg = 2
    n_competition_per_day: NonNeg = 10
    n_features: Pos = 256
    slowdown: PosF = 2.5
    sil_frames: NonNegF = 6.0
    rest_frames: NonNeg = 12
    dur_sigma: NonNegF = 0.25
    tuned_share: Prob = 0.3
    class_weight: Prob = 0.6
    transition_bins: NonNegF = 1.5
    snr: NonNegF = 0.8
    count_rate: NonNegF = 1.5
    drift_gain: NonNegF = 0.2
    drift_offset: NonNegF = 0.5
    drift_tuning: NonNegF = 0.15
    block_size: Pos = 20
    checks: NeuralChecks = Field(default_factory=NeuralChecks)


class NeuralPickle(Strict):
    kind: Literal["neural_pickle"]
    path: Annotated[str, Field(min_length=1)]
    trusted: bool = False
    competition_days: list[NonNeg] | None = None
    checks: NeuralChecks = Field(default_factory=NeuralChecks)


class NeuralNpz(Strict):
    kind: Literal["neural_npz"]
    path: Annotated[str, Field(min_length=1)]
    checks: NeuralChecks = Field(default_factory=NeuralChecks)


DATASET_KINDS: dict[str, type[Strict]] = {
    m.model_fields["kind"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in (
        SyntheticUnits,
        UnitsText,
        UnitsShards,
        SyntheticTextBins,
        TokenBins,
        SwuggySynthetic,
        SwuggyZerospeech,
        NeuralSynthetic,
        NeuralPickle,
        NeuralNpz,
    )
}
Dataset = Annotated[
    SyntheticUnits
    | UnitsText
    | UnitsShards
    | SyntheticTextBins
    | TokenBins
    | SwuggySynthetic
    | SwuggyZerospeech
    | NeuralSynthetic
    | NeuralPickle
    | NeuralNpz,
    Field(discriminator="kind"),
]
#: the task each dataset kind can feed
TASK_KINDS = {
    "unit_lm": ("synthetic_units", "units_text", "units_shards"),
    "text_lm": ("synthetic_text_bins", "token_bins"),
    "ctc": ("neural_synthetic", "neural_pickle", "neural_npz"),
}
SWUGGY_KINDS = ("swuggy_synthetic", "swuggy_zerospeech")
