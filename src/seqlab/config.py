"""The shape of the config: one dataclass per block, its defaults in its fields, nothing else.

The library uses these dataclasses as they are, with no pydantic import (the GPU benchmark runs
without it); seqlab.config_load validates a config file against them, once, when it loads.
Every key is described in config/README.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import field
from typing import Annotated, Any, Literal, TypeVar

from seqlab.config_datasets import (
    Block,
    Bool,
    Bound,
    Dataset,
    NonNeg,
    NonNegF,
    Pos,
    PosF,
    Rate,
    Tagged,
)
from seqlab.errors import SeqlabError

PRECISIONS = ("fp32", "amp_bf16", "bf16_pure", "amp_fp16", "fp16_naive", "auto")
Device = Annotated[str, Bound(pattern=r"^(auto|cpu|cuda(:\d+)?)$")]
T = TypeVar("T")


# -- models: a `model:` block; its Config adds the vocabulary size, which the data gives -------
class LSTMModel(Block):
    arch: Literal["lstm"] = "lstm"
    n_embd: Pos = 256
    hidden: Pos = 256
    n_layer: Pos = 2
    dropout: Rate = 0.0  # between LSTM layers and before the output layer


class GPTModel(Block):
    arch: Literal["gpt2"] = "gpt2"
    block_size: Pos = 128  # longest sequence (size of the position embedding)
    n_layer: Pos = 2
    n_head: Pos = 4
    n_embd: Pos = 256
    dropout: Rate = 0.0
    bias: Bool = True  # biases in Linear and LayerNorm layers, as GPT-2
    pad_vocab_multiple: Pos = 1  # 64 for GPT-2's tokenizer: 50257 -> 50304

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")


class GRUCTCModel(Block):
    arch: Literal["gru_ctc"] = "gru_ctc"
    n_features: Pos | None = None  # None: the data's (128 crossings + 128 spike power)
    n_days: Pos | None = None  # None: the data's (one input layer per day; may be set larger)
    hidden: Pos = 1024  # GRU units (baseline nUnits)
    n_layer: Pos = 5  # GRU layers (baseline nLayers)
    bidirectional: Bool = True
    dropout: Rate = 0.4  # between GRU layers (baseline dropout)
    input_dropout: Rate = 0.0  # on the day layer's output
    layer_norm: Bool = False  # LayerNorm on the GRU output
    kernel_len: Pos = 32  # unfold window in 20 ms bins
    stride_len: Pos = 4  # unfold stride: one output frame per 80 ms
    smooth: Bool = True  # Gaussian smoothing of the input over time
    smooth_width: Pos = 2  # its sd in bins (baseline gaussianSmoothWidth 2.0)
    smooth_kernel: Pos = 20  # its taps (baseline: 20)


class LSTMConfig(LSTMModel):
    vocab_size: int = 258  # set from the data by build_model: 256 units + BOS + EOS


class GPTConfig(GPTModel):
    vocab_size: int = 258  # the real vocabulary, set from the data by build_model

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_multiple
        return (self.vocab_size + m - 1) // m * m


class GRUCTCConfig(GRUCTCModel):
    n_features: int = 256  # set from the data: 128 threshold crossings + 128 spike power
    n_days: int = 1  # set from the data: one input layer per recording day
    vocab_size: int = 41  # set from the data: 40 phonemes (39 ARPAbet + SIL) + blank


ModelBlock = Annotated[LSTMModel | GPTModel | GRUCTCModel, Tagged("arch")]


# -- training ----------------------------------------------------------------------------------
class Optim(Block):  # keys that do not apply to `name` are ignored
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: PosF = 1e-3
    betas: Annotated[list[Rate], Bound(min_length=2, max_length=2)] = field(
        default_factory=lambda: [0.9, 0.999]
    )
    eps: NonNegF = 1e-8
    weight_decay: NonNegF = 0.0
    momentum: NonNegF = 0.0  # sgd
    decay_2d_only: Bool = False  # nanoGPT's split: no decay on biases and LayerNorm gains
    fused: Bool | None = None  # None: auto (on when every parameter is on CUDA)


class Schedule(Block):  # seqlab.train.optim.lr_at
    name: Literal["constant", "cosine", "inverse_sqrt", "linear"] = "constant"
    warmup: NonNeg = 0
    warmup_init: NonNegF = 0.0
    min_lr: NonNegF = 0.0  # the schedule's end (cosine, linear) or floor (inverse_sqrt)


class Augment(Block):  # task ctc's data augmentation (seqlab.train.augment)
    white_noise: NonNegF = 0.0
    constant_offset: NonNegF = 0.0
    time_mask_width: NonNeg = 0
    time_mask_max: NonNeg = 0


class GuardConfig(Block):
    """The adaptive LR cut of the hand-run GRU study; the roll back to the last good
    checkpoint on a loss spike of the hand-run GPT-2 study."""

    enabled: Bool = True
    gnorm_threshold: NonNegF = 0.0  # cut the LR when the grad norm exceeds this (0 = off)
    max_skips: Pos = 3  # this many consecutive skipped (non-finite) updates also cut the LR
    spike_factor: NonNegF = 0.0  # loss > factor x recent mean -> roll back (0 = off)
    spike_window: Pos = 20  # steps in the recent-loss mean used by spike detection
    lr_cut: Annotated[float, Bound(strict=True, gt=0.0, le=1.0)] = 0.8  # LR x this per cut
    lr_floor: NonNegF = 0.0  # never cut below this LR (nor lift the schedule above its own)
    max_cuts: NonNeg = 5  # at most this many cuts per trial
    max_rollbacks: NonNeg = 3  # at most this many roll-backs per trial, then spikes are logged


class TrainConfig(Block):
    """An experiment's `train:` block: everything the loop needs."""

    model: ModelBlock = field(default_factory=LSTMModel)
    optim: Optim = field(default_factory=Optim)
    schedule: Schedule = field(default_factory=Schedule)
    max_steps: Pos = 100  # optimizer steps
    batch_size: Pos = 32  # sequences per micro-batch (per device under DDP)
    seq_len: Pos = 128  # tokens per sequence (inputs; targets are shifted by one)
    grad_accum: Pos = 1  # micro-batches per optimizer step
    grad_clip: NonNegF = 0.0  # max global grad norm (0 = no clipping)
    precision: Literal[PRECISIONS] = "fp32"  # type: ignore[valid-type]
    eval_interval: Pos = 50  # evaluate every N steps (and at milestones and the last step)
    eval_batches: NonNeg = 0  # batches of the eval split per evaluation (0 = all of it)
    ckpt_interval: Pos = 50  # write a resumable checkpoint every N steps
    log_interval: Pos = 10  # one log line / log.jsonl record every N steps
    patience: NonNeg = 0  # early stop after N evaluations without improvement (0 = off)
    min_delta: NonNegF = 0.0  # an improvement must beat the best by more than this
    milestones: list[Pos] = field(default_factory=lambda: [40, 100, 1000])
    keep_steps: list[NonNeg] = field(default_factory=list)  # also keep ckpt/step{N}.pt
    init_from: Annotated[str, Bound(min_length=1)] | None = None  # start from these weights
    threads: Pos = 1  # torch intra-op threads (1 per job beats 2 threads in one job)
    device: Device = "auto"
    compile: Bool = False  # torch.compile the model
    tf32: Bool = False  # let fp32 matmuls/convs use TF32 on CUDA (nanoGPT: on); in metrics
    augment: Augment = field(default_factory=Augment)  # task ctc
    guard: GuardConfig = field(default_factory=GuardConfig)

    def __post_init__(self) -> None:
        s = self.schedule
        if s.name in ("cosine", "linear") and s.warmup > self.max_steps:
            raise ValueError(f"schedule.warmup: {s.warmup} exceeds max_steps {self.max_steps}")
        if isinstance(self.model, GPTModel) and self.seq_len > self.model.block_size:
            raise ValueError(
                f"seq_len: {self.seq_len} exceeds model.block_size {self.model.block_size} "
                "(GPT-2's learned positions); raise block_size or lower seq_len"
            )


# -- experiments -------------------------------------------------------------------------------
class Resources(Block):  # a training job's (mapped to sbatch by the SLURM profile)
    gpu: NonNeg = 0
    cpus_per_task: Pos = 1
    mem_mb: Pos = 4000
    runtime: Pos = 60  # minutes


class EvalResources(Block):  # a key left out: the rules' default (workflow/rules/common.smk)
    gpu: NonNeg | None = None
    cpus_per_task: Pos | None = None
    mem_mb: Pos | None = None
    runtime: Pos | None = None  # minutes


class Plateau(Block):
    """Loss at `milestone` more than `margin` above the best of the grid point's seeds."""

    milestone: Pos = 40
    margin: NonNegF = 0.5
    metric: Literal["eval", "train"] = "eval"


class LmEval(Block):  # eval.swuggy or eval.sblimp; `set` is resolved by the rule
    set: str = ""  # a dataset of kind swuggy_* (eval.sblimp: sblimp_*)
    checkpoints: list[Literal["best", "last"] | NonNeg] = field(default_factory=list)
    # headline: mean log-prob per predicted token instead of the sum (both are computed)
    length_normalised: Bool = False
    batch_size: Pos = 256  # items per forward pass
    device: Device = "auto"  # auto: cuda when available, else cpu
    threads: Pos | None = None  # None: the experiment's train.threads


class Eval(Block):
    swuggy: LmEval | None = None
    sblimp: LmEval | None = None


def _unique(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{seeds} repeats a seed")
    return seeds


def _path_safe(name: str, reserved: tuple[str, ...] = ()) -> str:
    """Names become path parts and wildcard values."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ValueError(
            f"{name!r} is not a path-safe name (it becomes a directory under results/); use "
            "letters, digits, '_', '.' and '-', not first '.' or '-'"
        )
    if name in reserved:
        raise ValueError(f"the name is reserved (results/{name}); rename it")
    return name


Name = Annotated[str, Bound(_path_safe)]
ExpName = Annotated[str, Bound(lambda n: _path_safe(n, ("data", "logs", "compare", "report.html")))]


class Experiment(Block, kw_only=True):
    task: Literal["unit_lm", "text_lm", "ctc"] = "unit_lm"
    dataset: str
    seeds: Annotated[list[NonNeg], Bound(_unique, min_length=1)] = field(
        default_factory=lambda: [0]
    )
    train: TrainConfig
    grid: dict[str, Annotated[list[Any], Bound(min_length=1)]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    eval_resources: EvalResources | None = None  # evaluation jobs; keys left out: defaults
    pack: Pos = 1  # trials per cluster submission
    plateau: Plateau = field(default_factory=Plateau)
    eval: Eval = field(default_factory=Eval)

    def __post_init__(self) -> None:
        if self.pack > 1 and self.resources.gpu > 1:
            raise ValueError(
                f"pack: {self.pack} packs trials onto one GPU, but resources.gpu asks for more "
                "than one per trial (DDP): use pack: 1 or gpu: 1"
            )


class Compare(Block, kw_only=True):
    kind: Literal["experiments", "optimizers", "precision"] = "experiments"
    experiments: Annotated[list[str], Bound(min_length=1)]
    a: str = "adam"  # kind optimizers: the pair compared
    b: str = "adamw"


class Config(Block, kw_only=True):
    datasets: Annotated[dict[Name, Dataset], Bound(min_length=1)]
    experiments: Annotated[dict[ExpName, Experiment], Bound(min_length=1)]
    compare: dict[Name, Compare] = field(default_factory=dict)


# -- plain dicts <-> dataclasses ---------------------------------------------------------------
def near(word: Any, choices: Any) -> str:
    hit = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"did you mean {hit[0]!r}? " if hit else ""


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """`cls` from a plain dict that seqlab.config_load validated (a trial's config.json, a
    resolved block), each nested block its dataclass, defaults filled. Keys are checked here,
    values at load (with pydantic, which the library does not import)."""
    if isinstance(data, cls):
        return data
    hints, known = typing.get_type_hints(cls), [f.name for f in dataclasses.fields(cls)]
    if unknown := [k for k in data if k not in known]:
        hint = near(unknown[0], known)
        raise SeqlabError(
            f"{where}.{unknown[0]}: unknown key; {hint}valid keys: {', '.join(known)}"
        )
    try:
        return cls(**{k: _block(hints[k], v, f"{where}.{k}") for k, v in data.items()})
    except (TypeError, ValueError) as e:  # a required key missing, a __post_init__ check
        raise SeqlabError(f"{where}: {e}") from None


def _block(ann: Any, value: Any, where: str) -> Any:
    """`value` as the dataclass that `ann` names (a tagged union's: by `arch` or `kind`)."""
    members = [a for a in typing.get_args(ann) or (ann,) if dataclasses.is_dataclass(a)]
    if not isinstance(value, dict) or not members:
        return value
    tag = value.get("arch", value.get("kind"))
    for m in members:
        if len(members) == 1 or tag == getattr(m, "arch", getattr(m, "kind", None)):
            return from_dict(m, value, where)
    raise SeqlabError(f"{where}: {value!r} is none of {[m.__name__ for m in members]}")
