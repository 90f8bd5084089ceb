"""Atomic checkpoints, loaded with weights_only=True (no arbitrary pickles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqlab.io import SeqlabError, atomic_write


def save_checkpoint(path: str | Path, obj: dict[str, Any]) -> Path:
    """torch.save into a temp file, then rename: a kill mid-write leaves the old file intact."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load tensors, dicts, lists and primitives only (weights_only=True)."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise SeqlabError(f"{path}: checkpoint not found") from None
    except Exception as e:
        raise SeqlabError(
            f"{path}: unreadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]}); "
            "delete it to start the trial afresh"
        ) from None
