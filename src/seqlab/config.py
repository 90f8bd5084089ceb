"""The typed config: every dataset kind, experiment, training and evaluation key, validated once.

pydantic v2 rather than dataclasses with a hand-written validator, because it gives for free
what the hand-written checkers each did partly: discriminated unions (a dataset's `kind`, a
model's `arch`) validate against the one chosen variant instead of reporting every
alternative; every error carries its exact location, which becomes the dotted key of the one
line we print; strict types refuse what YAML 1.1 silently reads as a string (`lr: 1e-3`); and
the JSON schema of the config is generated from the same models (`python -m seqlab.config`).

`validate_config` (in seqlab.config_load) is the entry point; the Snakefile calls it once.
The models live here; the library's parameter dataclasses delegate to `check_params`.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from seqlab.config_datasets import (  # noqa: F401 (re-exported: one import for the config)
    DATASET_KINDS,
    SWUGGY_KINDS,
    TASK_KINDS,
    BinChecks,
    Dataset,
    NeuralChecks,
    NonNeg,
    NonNegF,
    Pos,
    PosF,
    Strict,
    UnitChecks,
)
from seqlab.io import SeqlabError

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]  # dropout, betas
PRECISIONS = ("fp32", "amp_bf16", "bf16_pure", "amp_fp16", "fp16_naive", "auto")


# -- training ----------------------------------------------------------------------------------
class LSTM(Strict):
    """seqlab.models.lstm.LSTMConfig; vocab_size comes from the data."""

    arch: Literal["lstm"]
    n_embd: Pos = 256
    hidden: Pos = 256
    n_layer: Pos = 2
    dropout: Rate = 0.0


class GPT2(Strict):
    """seqlab.models.gpt2.GPTConfig; vocab_size comes from the data."""

    arch: Literal["gpt2"]
    block_size: Pos = 128
    n_layer: Pos = 2
    n_head: Pos = 4
    n_embd: Pos = 256
    dropout: Rate = 0.0
    bias: bool = True
    pad_vocab_multiple: Pos = 1

    @model_validator(mode="after")
    def _heads(self) -> GPT2:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        return self


class GRUCTC(Strict):
    """seqlab.models.gru_ctc.GRUCTCConfig; vocab_size, n_features and n_days come from the
    data (n_days may be set larger, n_features only to the data's value)."""

    arch: Literal["gru_ctc"]
    n_features: Pos | None = None
    n_days: Pos | None = None
    hidden: Pos = 1024
    n_layer: Pos = 5
    bidirectional: bool = True
    dropout: Rate = 0.4
    input_dropout: Rate = 0.0
    layer_norm: bool = False
    kernel_len: Pos = 32
    stride_len: Pos = 4
    smooth: bool = True
    smooth_width: Pos = 2
    smooth_kernel: Pos = 20


Model = Annotated[LSTM | GPT2 | GRUCTC, Field(discriminator="arch")]


class Optim(Strict):
    """seqlab.train.optim.build_optimizer; keys that do not apply to `name` are ignored."""

    name: Literal["adam", "adamw", "sgd"]
    lr: PosF
    betas: Annotated[list[Rate], Field(min_length=2, max_length=2)] = [0.9, 0.999]
    eps: NonNegF = 1e-8
    weight_decay: NonNegF = 0.0
    momentum: NonNegF = 0.0
    decay_2d_only: bool = False
    fused: bool | None = None  # None: auto (on when every parameter is on CUDA)


class Schedule(Strict):
    """seqlab.train.optim.lr_at."""

    name: Literal["constant", "cosine", "inverse_sqrt", "linear"] = "constant"
    warmup: NonNeg = 0
    warmup_init: NonNegF = 0.0
    min_lr: NonNegF = 0.0  # the schedule's end (cosine, linear) or floor (inverse_sqrt)


class Augment(Strict):
    """Task ctc's data augmentation (seqlab.train.augment)."""

    white_noise: NonNegF = 0.0
    constant_offset: NonNegF = 0.0
    time_mask_width: NonNeg = 0
    time_mask_max: NonNeg = 0


class Guard(Strict):
    """The stability guard (seed 003's adaptive LR, seed 004's roll back)."""

    enabled: bool = True
    gnorm_threshold: NonNegF = 0.0  # cut the LR when the grad norm exceeds this (0 = off)
    max_skips: Pos = 3  # consecutive skipped (non-finite) updates that also cut the LR
    spike_factor: NonNegF = 0.0  # loss > factor x recent mean -> roll back (0 = off)
    spike_window: Pos = 20
    lr_cut: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    lr_floor: NonNegF = 0.0  # the guard never cuts the LR below this
    max_cuts: NonNeg = 5
    max_rollbacks: NonNeg = 3


class Train(Strict):
    """An experiment's `train:` block (seqlab.train.config.TrainConfig)."""

    model: Model = Field(default_factory=lambda: LSTM(arch="lstm"))
    optim: Optim = Field(default_factory=lambda: Optim(name="adam", lr=1e-3))
    schedule: Schedule = Field(default_factory=Schedule)
    max_steps: Pos = 100
    batch_size: Pos = 32
    seq_len: Pos = 128
    grad_accum: Pos = 1
    grad_clip: NonNegF = 0.0
    precision: Literal[PRECISIONS] = "fp32"  # type: ignore[valid-type]
    eval_interval: Pos = 50
    eval_batches: NonNeg = 0
    ckpt_interval: Pos = 50
    log_interval: Pos = 10
    patience: NonNeg = 0
    min_delta: NonNegF = 0.0
    milestones: list[Pos] = Field(default_factory=lambda: [40, 100, 1000])
    keep_steps: list[NonNeg] = Field(default_factory=list)
    init_from: Annotated[str, Field(min_length=1)] | None = None
    threads: Pos = 1
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    compile: bool = False
    tf32: bool = False
    augment: Augment = Field(default_factory=Augment)
    guard: Guard = Field(default_factory=Guard)

    @model_validator(mode="after")
    def _warmup_fits(self) -> Train:
        s = self.schedule
        if s.name in ("cosine", "linear") and s.warmup > self.max_steps:
            raise ValueError(f"schedule.warmup: {s.warmup} exceeds max_steps {self.max_steps}")
        if isinstance(self.model, GPT2) and self.seq_len > self.model.block_size:
            raise ValueError(
                f"seq_len: {self.seq_len} exceeds model.block_size {self.model.block_size} "
                "(GPT-2's learned positions); raise block_size or lower seq_len"
            )
        return self


# -- experiments -------------------------------------------------------------------------------
class Resources(Strict):
    """A job's resources (mapped to sbatch by the SLURM profile)."""

    gpu: NonNeg = 0
    cpus_per_task: Pos = 1
    mem_mb: Pos = 4000
    runtime: Pos = 60  # minutes


class EvalResources(Strict):
    """An evaluation job's resources; a key left out takes the rules' default for scoring
    (1 GPU if the training had any, the training's threads, 4000 MB, 30 minutes)."""

    gpu: NonNeg | None = None
    cpus_per_task: Pos | None = None
    mem_mb: Pos | None = None
    runtime: Pos | None = None  # minutes


class Plateau(Strict):
    milestone: Pos = 40
    margin: NonNegF = 0.5
    metric: Literal["eval", "train"] = "eval"


class SwuggyEvalOpts(Strict):
    """`eval.swuggy` minus `set` (seqlab.eval.swuggy.SwuggyEvalParams)."""

    checkpoints: list[Literal["best", "last"] | NonNeg] = Field(default_factory=list)
    length_normalised: bool = False
    batch_size: Pos = 256
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    threads: Pos | None = None  # None: the experiment's train.threads


class SwuggyEval(SwuggyEvalOpts):
    set: str  # a dataset of kind swuggy_*


class Eval(Strict):
    swuggy: SwuggyEval | None = None


class Experiment(Strict):
    task: Literal["unit_lm", "text_lm", "ctc"] = "unit_lm"
    dataset: str
    seeds: Annotated[list[NonNeg], Field(min_length=1)] = Field(default_factory=lambda: [0])
    train: Train
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    eval_resources: EvalResources | None = None  # evaluation jobs; keys left out: defaults
    pack: Pos = 1  # trials per cluster submission
    plateau: Plateau = Field(default_factory=Plateau)
    eval: Eval = Field(default_factory=Eval)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{seeds} repeats a seed")
        return seeds


class Compare(Strict):
    kind: Literal["experiments", "optimizers", "precision"] = "experiments"
    experiments: Annotated[list[str], Field(min_length=1)]
    a: str = "adam"  # kind optimizers: the pair compared
    b: str = "adamw"


class Config(Strict):
    """The whole config file."""

    datasets: Annotated[dict[str, Dataset], Field(min_length=1)]
    experiments: Annotated[dict[str, Experiment], Field(min_length=1)]
    compare: dict[str, Compare] = Field(default_factory=dict)


#: the library's parameter dataclasses (by name: this layer imports no library code) -> model
PARAMS_MODELS: dict[str, type[BaseModel]] = {
    "SyntheticUnitsParams": DATASET_KINDS["synthetic_units"],
    "UnitsTextParams": DATASET_KINDS["units_text"],
    "UnitsShardsParams": DATASET_KINDS["units_shards"],
    "SyntheticTextParams": DATASET_KINDS["synthetic_text_bins"],
    "IngestParams": DATASET_KINDS["token_bins"],
    "SwuggySyntheticParams": DATASET_KINDS["swuggy_synthetic"],
    "SwuggyZerospeechParams": DATASET_KINDS["swuggy_zerospeech"],
    "SyntheticNeuralParams": DATASET_KINDS["neural_synthetic"],
    "SwuggyEvalParams": SwuggyEvalOpts,
}
ARCH_MODELS: dict[str, type[BaseModel]] = {"lstm": LSTM, "gpt2": GPT2, "gru_ctc": GRUCTC}


def dump(model: BaseModel) -> dict[str, Any]:
    """Plain dict with defaults filled; None (= "default/auto/from the data") left out."""
    return model.model_dump(mode="python", exclude_none=True)


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `base` with dotted `overrides` applied (each section must exist in base;
    the key itself may be new: the typed models then say whether it is a valid key)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        parts = key.split(".")
        cur = out
        for p in parts[:-1]:
            if not isinstance(cur.get(p), dict):
                raise SeqlabError(f"override {key!r}: {p!r} is not a section of the base config")
            cur = cur[p]
        cur[parts[-1]] = copy.deepcopy(value)
    return out


def json_schema() -> dict[str, Any]:
    """The JSON schema of the config file, for editors (workflow/schemas/config.schema.json)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = "seqlab config; generated by `python -m seqlab.config` (do not edit)"
    return schema


if __name__ == "__main__":
    import json

    print(json.dumps(json_schema(), indent=1, sort_keys=True))
