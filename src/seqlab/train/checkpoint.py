"""Checkpoints: plain PyTorch files, atomic, self-checking, loaded with weights_only=True.

A checkpoint file is a `torch.save` of the state itself, so `torch.load(path,
weights_only=True)` in a notebook or a conversion script gives `{"model": {name: tensor},
"model_config": ..., "step": ...}` (model.pt) or the resumable state (ckpt/*.pt) directly.
One extra key, `integrity`, holds a sha256 of everything else in the file (every tensor's
name, dtype, shape and bytes, every other value), computed at save and verified by
`load_checkpoint`: torch's zip container already refuses a truncated file, and the hash
catches a flipped byte inside a tensor, so a damaged file is recognised instead of resumed
or published. Files of earlier seqlab versions (the state as a byte tensor inside
`{format, size, sha256, payload}`, or no integrity record at all) still load.

The `Checkpointer` of a trial keeps the last two resumable states (`ckpt/last.pt`, then
`ckpt/prev.pt`), falls back to the older one when the newer is corrupt, and keeps the best
weights (`ckpt/best.pt`) together with the step and the metrics they were scored at.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from seqlab.errors import SeqlabError
from seqlab.files import atomic_write, file_sha256, remove_stale_temps

#: the key of a checkpoint file that holds its integrity record
INTEGRITY = "integrity"
FORMAT = "seqlab-checkpoint-2"
#: the earlier envelope: {format, size, sha256, payload: the torch.save bytes as uint8}
ENVELOPE_FORMAT = "seqlab-checkpoint-1"


class CorruptCheckpoint(SeqlabError):
    """A checkpoint that exists but fails its integrity check or cannot be read."""


def content_sha256(obj: Any) -> str:
    """sha256 of a nested state: each tensor's path, dtype, shape and bytes, each other
    value's path and repr, keys in sorted order. For a flat {name: tensor} dict this is the
    hash of the weights: torch.save's files differ byte-wise for the same weights (each save
    records a random id), so the file's own hash cannot say "the same weights"."""
    h = hashlib.sha256()

    def walk(path: str, value: Any) -> None:
        if torch.is_tensor(value):
            t = value.detach().cpu().contiguous()
            h.update(f"{path}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, Mapping):
            for k in sorted(value, key=str):
                walk(f"{path}.{k}" if path else str(k), value[k])
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{path}[{i}]", v)
        else:
            h.update(f"{path}={value!r}".encode())

    walk("", obj)
    return h.hexdigest()


def save_checkpoint(path: str | Path, obj: dict[str, Any], keep_previous: Path | None = None):
    """torch.save `obj` with its integrity record, atomically (see seqlab.files.atomic_write)."""
    record = {**obj, INTEGRITY: {"format": FORMAT, "sha256": content_sha256(obj)}}
    return atomic_write(path, lambda tmp: torch.save(record, tmp), keep_previous=keep_previous)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and verify a checkpoint: tensors, dicts, lists and primitives only."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and INTEGRITY in state:
            state = dict(state)
            record = state.pop(INTEGRITY)
            if content_sha256(state) != record["sha256"]:
                raise ValueError("its contents differ from the sha256 recorded at save")
        elif isinstance(state, dict) and state.get("format") == ENVELOPE_FORMAT:
            state = _open_envelope(state)
        return _to(state, map_location)  # (no integrity record: a file from before them)
    except FileNotFoundError:
        raise SeqlabError(f"{path}: checkpoint not found") from None
    except Exception as e:
        why = (str(e).strip().splitlines() or ["unreadable"])[0]
        raise CorruptCheckpoint(
            f"{path}: corrupt checkpoint ({type(e).__name__}: {why}); "
            "it cannot be used: delete it, or retrain the trial"
        ) from None


def _open_envelope(outer: dict[str, Any]) -> Any:
    payload = outer["payload"].numpy().tobytes()
    if len(payload) != outer["size"] or hashlib.sha256(payload).hexdigest() != outer["sha256"]:
        raise ValueError("size or sha256 differs from the values recorded at save")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def _to(obj: Any, map_location: str | torch.device) -> Any:
    if map_location == "cpu":
        return obj
    if torch.is_tensor(obj):
        return obj.to(map_location)
    if isinstance(obj, dict):
        return {k: _to(v, map_location) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to(v, map_location) for v in obj)
    return obj


class Checkpointer:
    """The checkpoints of one trial directory (rank 0 writes; every rank may read)."""

    def __init__(self, ckpt_dir: Path, writer: bool = True) -> None:
        self.dir, self.writer = Path(ckpt_dir), writer
        self.last, self.prev, self.best = (self.dir / n for n in ("last.pt", "prev.pt", "best.pt"))

    def start(self) -> list[Path]:
        """Remove temp files a killed write left (trial start); returns them."""
        return remove_stale_temps(self.dir) if self.writer else []

    def save_state(self, state: dict[str, Any]) -> None:
        """The resumable state becomes last.pt; the one before it prev.pt."""
        if self.writer:
            save_checkpoint(self.last, state, keep_previous=self.prev)

    def load_state(
        self, accept: Callable[[dict[str, Any]], bool], report: Callable[[str, str], None]
    ) -> tuple[dict[str, Any] | None, bool]:
        """(the newest intact state that `accept` takes, whether checkpoints were discarded).
        A corrupt file is reported (report(path, why)) and removed; a state `accept` refuses
        (another config, or one an uninterrupted trial would not pass through) removes every
        checkpoint: an older one would not match best.pt. No state: start the trial afresh."""
        for path in (self.last, self.prev):
            if not path.exists():
                continue
            try:
                state = load_checkpoint(path)
            except CorruptCheckpoint as e:
                report(str(path), str(e))
                if self.writer:
                    path.unlink(missing_ok=True)
                continue
            if accept(state):
                return state, False
            self.discard()
            return None, True
        return None, False

    def discard(self) -> None:
        if self.writer:
            for old in self.dir.glob("*.pt"):
                old.unlink()

    def save_best(self, weights: dict[str, Any], step: int, scores: dict[str, float]) -> None:
        if self.writer:
            save_checkpoint(self.best, {"model": weights, "step": step, "eval": scores})

    def load_best(self) -> dict[str, Any] | None:
        """best.pt if intact, else None (a corrupt one is removed: it must never be used)."""
        if not self.best.exists():
            return None
        try:
            return load_checkpoint(self.best)
        except CorruptCheckpoint:
            if self.writer:
                self.best.unlink(missing_ok=True)
            return None

    def load_published(self, fingerprint: str) -> dict[str, Any] | None:
        """The trial's model.pt if intact and of this trajectory (its fingerprint): a verified
        copy of the best weights, for when best.pt is lost. The train rule marks model.pt
        `update`, so Snakemake keeps it while the trial reruns."""
        try:
            published = load_checkpoint(self.dir.parent / "model.pt")
        except SeqlabError:  # absent or corrupt
            return None
        if published.get("fingerprint") != fingerprint or published.get("model") is None:
            return None
        return published

    def kept(self, step: int) -> Path:
        """Where train.keep_steps keeps the weights of `step`."""
        return self.dir / f"step{step}.pt"

    def save_weights(self, name: str, weights: dict[str, Any], step: int) -> None:
        if self.writer:
            save_checkpoint(self.dir / name, {"model": weights, "step": step})


def init_weights(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Warm start: load another trial's weights (weights only: optimizer, schedule and step
    start afresh) into a freshly built model; returns their provenance for metrics.json.

    A shorter GPT-2 context keeps the first rows of the learned positions (nanoGPT's
    crop_block_size); any other difference in names or shapes is one line."""
    path = Path(path)
    if not path.is_file():
        raise SeqlabError(
            f"train.init_from: {path} not found; train the trial it names first (keep a step "
            "with train.keep_steps) or fix the path"
        )
    ck = load_checkpoint(path)
    weights = ck.get("model") if isinstance(ck, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise SeqlabError(f"train.init_from: {path} holds no model weights (a skipped trial?)")
    own = model.state_dict()
    weights = dict(weights)
    for k, v in own.items():
        w = weights.get(k)
        if k.endswith("wpe.weight") and w is not None and w.shape[0] > v.shape[0]:
            weights[k] = w[: v.shape[0]]
    misfit = shape_misfit(weights, model)
    if misfit:
        raise SeqlabError(
            f"train.init_from: {path} does not fit this model: {misfit}; use the same "
            "architecture and sizes (a GPT-2 may shorten block_size)"
        )
    model.load_state_dict(weights)
    step = ck.get("step", (ck.get("trainer") or {}).get("step"))  # model.pt / a resumable state
    return {
        "path": str(path),
        "sha256": file_sha256(path),
        "step": step,
        "weights_sha256": weights_sha256(weights),
    }


def shape_misfit(weights: dict[str, torch.Tensor], model: torch.nn.Module) -> str | None:
    """The first parameter whose name or shape differs between `weights` and `model`."""
    theirs = {k: tuple(v.shape) for k, v in weights.items()}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if theirs == ours:
        return None
    k = sorted(set(theirs.items()) ^ set(ours.items()))[0][0]
    return f"{k} is {theirs.get(k, 'absent')} there, {ours.get(k, 'absent')} here"


def weights_sha256(weights: dict[str, torch.Tensor]) -> str:
    """The hash of a model's weights (names, dtypes, shapes, values): see content_sha256."""
    return content_sha256(weights)
