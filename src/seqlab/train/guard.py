"""The stability guard: it observes each step's (loss, grad norm) and answers what to do.

An adaptive LR (cut on a grad-norm spike or repeated non-finite updates) and a roll-back to
the last good checkpoint after a loss spike, as one small state machine the loop consults:

    skip       the update was non-finite: it is not applied (counted; every `max_skips`
               consecutive skips also cut the LR)
    cut        the LR scale is multiplied by `lr_cut` (grad norm over `gnorm_threshold`, or
               repeated skips, or after a roll-back), at most `max_cuts` times and never once
               the effective LR is already at `lr_floor`
    roll back  the loss spiked over `spike_factor` x the recent mean: restore the last good
               checkpoint (at most `max_rollbacks` times; later spikes are only logged)
    diverged   a non-finite loss with the guard off, or 10 x `max_skips` non-finite steps in a row

The guard knows no torch: it sees numbers, so it is tested on planted sequences alone. On CUDA
the loop feeds it at log granularity (the numbers stay on the device until then); the skip
itself is then applied on the device, so only the guard's counting and its LR cuts lag.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from seqlab.config import GuardConfig


@dataclass
class GuardState:
    """What a checkpoint keeps of the guard (plain numbers)."""

    lr_scale: float = 1.0
    n_cuts: int = 0
    n_skipped: int = 0
    consecutive_skips: int = 0
    n_rollbacks: int = 0
    recent: list[float] = field(default_factory=list)


#: guard fields a roll-back keeps: what was decided and counted, not the replayed window
KEPT_ON_ROLLBACK = ("lr_scale", "n_cuts", "n_skipped", "n_rollbacks")


@dataclass
class Verdict:
    """The guard's answer for one step: its events (name, info) in order, and what to do."""

    skip: bool = False
    rollback: bool = False
    diverged: bool = False
    cuts: list[str] = field(default_factory=list)  # why to cut the LR (the loop calls `cut`)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class StabilityGuard:
    def __init__(self, cfg: GuardConfig, scaler_enabled: bool = False) -> None:
        self.cfg = cfg
        self.scaler = scaler_enabled  # GradScaler skips (and counts) non-finite steps itself
        self.state = GuardState()

    def observe(self, loss: float, gnorm: float, can_roll_back: bool = True) -> Verdict:
        """Judge one optimizer step from its loss and (pre-clip) grad norm."""
        g, s, v = self.cfg, self.state, Verdict()
        finite = math.isfinite(loss) and math.isfinite(gnorm)
        s.consecutive_skips = 0 if finite else s.consecutive_skips + 1
        if not math.isfinite(loss) and (not g.enabled or s.consecutive_skips >= 10 * g.max_skips):
            v.diverged = True
            v.events.append(("diverged", {"loss": loss}))
            return v
        if not finite:
            if g.enabled and not self.scaler:
                v.skip = True
                s.n_skipped += 1
                v.events.append(("skip_update", {"loss": loss, "gnorm": gnorm}))
                if s.consecutive_skips % g.max_skips == 0:
                    v.cuts.append(f"{s.consecutive_skips} consecutive non-finite updates")
            return v
        if not g.enabled:
            return v
        if g.gnorm_threshold and gnorm > g.gnorm_threshold:
            v.cuts.append(f"grad norm {gnorm:.2f} > {g.gnorm_threshold}")
        window = s.recent[-g.spike_window :]
        watching = g.spike_factor and len(window) >= max(2, g.spike_window // 2)
        if watching and loss > g.spike_factor * statistics.fmean(window):
            if s.n_rollbacks < g.max_rollbacks and can_roll_back:
                v.rollback = True
                v.cuts.append("loss spike")
                return v  # the spike's loss does not enter the window it is judged against
            v.events.append(("spike", {"loss": loss, "rollbacks_left": 0}))
        s.recent = (s.recent + [loss])[-g.spike_window :]
        return v

    def cut(self, why: str, lr_now: float) -> dict[str, Any] | None:
        """Cut the LR scale unless out of cuts or already at the floor; the event's info."""
        s = self.state
        if s.n_cuts >= self.cfg.max_cuts or lr_now <= self.cfg.lr_floor:
            return None
        s.lr_scale *= self.cfg.lr_cut
        s.n_cuts += 1
        return {"why": why, "lr_scale": round(s.lr_scale, 6), "n_cuts": s.n_cuts}

    def rolled_back(self, saved: dict[str, Any]) -> None:
        """Take the checkpoint's window and streak, keep this run's decisions and counts."""
        kept = {k: getattr(self.state, k) for k in KEPT_ON_ROLLBACK}
        self.state = GuardState(**{**saved, **kept})
        self.state.n_rollbacks += 1

    def state_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.state = GuardState(**d)
