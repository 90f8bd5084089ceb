"""Load trained models back: one loader for model.pt / ckpt/*.pt (evaluation, notebooks,
`load_latest_model` as the hand-run scripts had it) and the one place where the `auto`
device is chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from seqlab.data.manifest import token_ids
from seqlab.errors import SeqlabError
from seqlab.files import read_json
from seqlab.models import build_model
from seqlab.train.checkpoint import load_checkpoint


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise SeqlabError(f"device {name!r}: use auto, cpu, cuda or cuda:N") from None


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu", spec: dict[str, Any] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode, the checkpoint dict) from a checkpoint file (weights_only).

    model.pt carries the model's full spec (data-given sizes included); a resumable ckpt/*.pt
    does not, so its caller passes `spec`. A trial skipped before training has no weights.
    """
    ck = load_checkpoint(path, map_location=map_location)
    if ck.get("model") is None:
        raise SeqlabError(f"{path}: the trial was skipped ({ck.get('skip_reason', 'no weights')})")
    spec = ck.get("model_config") or spec
    if spec is None:
        raise SeqlabError(f"{path}: holds no model_config; load it through its trial's model.pt")
    model = build_model(spec, spec["vocab_size"])
    model.load_state_dict(ck["model"])
    return model.to(map_location).eval(), ck


def _trial_dirs(results: Path, experiment: str, run: str | None, seed: int | None) -> list[Path]:
    runs = results / experiment / "runs"
    if not runs.is_dir():
        raise SeqlabError(f"{runs}: no trained runs for experiment {experiment!r}")
    pattern = f"{run or '*'}/seed{'*' if seed is None else seed}"
    return sorted(p for p in runs.glob(pattern) if (p / "config.json").exists())


def _spec_of(trial_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The model's shape for weights-only ckpt/*.pt files: from model.pt when the trial has
    finished, else from config.json + the dataset manifest (enough for the LMs)."""
    if (trial_dir / "model.pt").exists():
        return load_checkpoint(trial_dir / "model.pt")["model_config"]
    manifest = read_json(config["data"]["manifest"])
    return {**config["train"]["model"], "vocab_size": token_ids(manifest)}


def load_latest_model(
    experiment: str,
    run: str | None = None,
    seed: int | None = None,
    checkpoint: str | int | None = None,
    results: str | Path = "results",
    which: str = "latest",
    map_location: str | torch.device = "cpu",
) -> tuple[torch.nn.Module, dict[str, Any], Path]:
    """Return `(model, config, path)` for a trained trial, the model in eval mode.

    run/seed None: among the matching trials take the most recently trained one
    (`which="latest"`) or the experiment's best run and seed from final.json (`which="best"`).
    checkpoint None: model.pt (the best checkpoint by the eval metric); "best" / "last":
    the resumable ckpt/best.pt or ckpt/last.pt of a trial that may still be running; a step
    N: the weights kept at that step (ckpt/stepN.pt, the trial's `train.keep_steps`).
    """
    results = Path(results)
    if which == "best" and run is None:
        final = read_json(results / experiment / "final.json")
        run, seed = final["best_run"], final["best_seed"] if seed is None else seed
    names = {None: "model.pt", "best": "ckpt/best.pt", "last": "ckpt/last.pt"}
    is_step = isinstance(checkpoint, int) and not isinstance(checkpoint, bool)
    if is_step:
        names[checkpoint] = f"ckpt/step{checkpoint}.pt"
    if checkpoint not in names:
        raise SeqlabError(
            f"checkpoint={checkpoint!r}: use None (model.pt), 'best', 'last' or a kept step (int)"
        )
    trials = _trial_dirs(results, experiment, run, seed)
    candidates = [p for p in (d / names[checkpoint] for d in trials) if p.exists()]
    if not candidates:
        kept = sorted({int(p.stem[4:]) for d in trials for p in d.glob("ckpt/step*.pt")})
        hint = f" (kept steps: {kept}; train.keep_steps keeps others)" if is_step else ""
        raise SeqlabError(
            f"no {names[checkpoint]} for experiment={experiment!r} run={run!r} seed={seed!r} "
            f"under {results}{hint}; train it first (snakemake results/{experiment}/final.json)"
        )
    path = max(candidates, key=lambda p: p.stat().st_mtime_ns)
    trial_dir = path.parent if checkpoint is None else path.parent.parent
    config = read_json(trial_dir / "config.json")
    spec = None if checkpoint is None else _spec_of(trial_dir, config)
    model, _ = load_model(path, map_location, spec)
    return model, config, path
