"""The stability guard on its own: planted (loss, grad norm) sequences and its answers."""

from __future__ import annotations

import math

from seqlab.config import GuardConfig
from seqlab.train.guard import StabilityGuard

NAN, INF = math.nan, math.inf


def feed(guard: StabilityGuard, seq: list[tuple[float, float]], can_roll_back: bool = True):
    return [guard.observe(loss, gnorm, can_roll_back) for loss, gnorm in seq]


def test_finite_steps_pass_untouched() -> None:
    g = StabilityGuard(GuardConfig(gnorm_threshold=10.0, spike_factor=2.0, spike_window=4))
    verdicts = feed(g, [(2.0, 1.0), (1.9, 1.1), (1.8, 0.9), (1.7, 1.0), (1.6, 1.2)])
    assert not any(v.skip or v.rollback or v.diverged or v.cuts or v.events for v in verdicts)
    assert g.state.recent == [1.9, 1.8, 1.7, 1.6]  # the window keeps spike_window losses


def test_non_finite_updates_are_skipped_and_every_max_skips_cut() -> None:
    g = StabilityGuard(GuardConfig(max_skips=2))
    v = feed(g, [(1.0, 1.0), (1.0, NAN), (INF, 1.0), (1.0, INF), (1.0, 1.0), (1.0, NAN)])
    assert [x.skip for x in v] == [False, True, True, True, False, True]
    assert [bool(x.cuts) for x in v] == [False, False, True, False, False, False]
    assert v[2].cuts == ["2 consecutive non-finite updates"]
    assert g.state.n_skipped == 4 and g.state.consecutive_skips == 1
    assert [name for name, _ in v[1].events] == ["skip_update"]


def test_a_long_non_finite_streak_diverges() -> None:
    g = StabilityGuard(GuardConfig(max_skips=1))
    v = feed(g, [(NAN, NAN)] * 10)
    assert [x.diverged for x in v] == [False] * 9 + [True]
    assert v[-1].events == [("diverged", {"loss": v[-1].events[0][1]["loss"]})]


def test_without_the_guard_a_non_finite_loss_diverges_at_once() -> None:
    g = StabilityGuard(GuardConfig(enabled=False))
    assert feed(g, [(1.0, NAN)])[0].skip is False  # applied (no guard), not diverged
    assert feed(g, [(NAN, 1.0)])[0].diverged


def test_gradscaler_counts_its_own_skips() -> None:
    g = StabilityGuard(GuardConfig(max_skips=1), scaler_enabled=True)
    v = feed(g, [(1.0, INF), (1.0, INF)])
    assert not any(x.skip or x.cuts for x in v) and g.state.n_skipped == 0


def test_grad_norm_over_threshold_asks_a_cut_and_cut_respects_floor_and_max() -> None:
    g = StabilityGuard(GuardConfig(gnorm_threshold=5.0, lr_cut=0.5, lr_floor=0.1, max_cuts=2))
    v = feed(g, [(1.0, 4.0), (1.0, 6.0)])
    assert v[0].cuts == [] and v[1].cuts == ["grad norm 6.00 > 5.0"]
    assert g.cut("x", lr_now=1.0) == {"why": "x", "lr_scale": 0.5, "n_cuts": 1}
    assert g.cut("x", lr_now=0.1) is None  # already at the floor
    assert g.cut("x", lr_now=0.5) is not None and g.cut("x", lr_now=0.25) is None  # max_cuts
    assert g.state.lr_scale == 0.25 and g.state.n_cuts == 2


def test_a_loss_spike_rolls_back_a_bounded_number_of_times() -> None:
    g = StabilityGuard(GuardConfig(spike_factor=3.0, spike_window=4, max_rollbacks=1))
    v = feed(g, [(1.0, 1.0), (1.0, 1.0), (10.0, 1.0)])
    assert v[-1].rollback and v[-1].cuts == ["loss spike"]
    assert g.state.recent == [1.0, 1.0]  # the spike is not part of the window
    saved = {**g.state_dict(), "recent": [1.0], "consecutive_skips": 0}
    g.state.lr_scale = 0.5
    g.rolled_back(saved)
    assert g.state.n_rollbacks == 1 and g.state.lr_scale == 0.5 and g.state.recent == [1.0]
    v = feed(g, [(1.0, 1.0), (10.0, 1.0)])
    assert not v[-1].rollback and v[-1].events == [("spike", {"loss": 10.0, "rollbacks_left": 0})]


def test_no_checkpoint_no_rollback() -> None:
    g = StabilityGuard(GuardConfig(spike_factor=2.0, spike_window=2))
    v = feed(g, [(1.0, 1.0), (1.0, 1.0), (5.0, 1.0)], can_roll_back=False)
    assert not v[-1].rollback and v[-1].events[0][0] == "spike"


def test_state_round_trips() -> None:
    g = StabilityGuard(GuardConfig(max_skips=1))
    feed(g, [(1.0, NAN), (1.0, 2.0)])
    h = StabilityGuard(GuardConfig(max_skips=1))
    h.load_state_dict(g.state_dict())
    assert h.state == g.state
