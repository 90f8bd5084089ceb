"""Progress lines for long data jobs: units done, units/s and ETA, at most every few seconds.

Printed to stderr, which the rules' `log:` captures, so a cluster prepare of hours says how
far it is and when it will end.
"""

from __future__ import annotations

import sys
import time


def _si(x: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.1f}{unit}"
    return f"{x:.0f}"


class Progress:
    """`update(n)` adds n units; a line is printed when `every` seconds have passed."""

    def __init__(self, what: str, total: int | None = None, every: float = 10.0):
        self.what, self.total, self.every = what, total, every
        self.t0 = self.last = time.perf_counter()
        self.n = 0
        self.frac: float | None = None

    def update(self, n: int, frac: float | None = None) -> None:
        """Add n units; `frac` (share of the input read) gives the ETA when no total is known."""
        self.n += n
        self.frac = frac
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._print(now)

    def line(self, now: float | None = None) -> str:
        dt = max(1e-9, (now or time.perf_counter()) - self.t0)
        rate = self.n / dt
        out = f"{self.what}: {_si(self.n)} units"
        if self.total:
            left = max(0, self.total - self.n) / max(rate, 1e-9)
            out += f" of {_si(self.total)} ({self.n / self.total:.0%}), ETA {left:.0f} s"
        elif self.frac:
            out += f" ({self.frac:.0%}), ETA {dt * (1 - self.frac) / self.frac:.0f} s"
        return out + f", {_si(rate)} units/s, {dt:.1f} s"

    def _print(self, now: float) -> None:
        print(self.line(now), file=sys.stderr, flush=True)

    def done(self) -> str:
        """Print and return the final line (total units, rate, time)."""
        self._print(time.perf_counter())
        return self.line()
