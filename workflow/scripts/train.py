#!/usr/bin/env python
"""Train one trial from its resolved config.json; outputs go beside the config.

By hand: `train.py results/lstm/runs/base/seed0/config.json` (reruns resume from ckpt/).
SIGTERM / SIGUSR1 / SIGURG ask for a clean stop: the current step finishes, a checkpoint is
written, and the process exits with status 75 (EX_TEMPFAIL) so a rerun or requeue resumes.
"""

import argparse
import signal
import sys
from pathlib import Path

from seqlab.errors import run_cli
from seqlab.files import read_json
from seqlab.train.loop import Preempted, train

STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGURG")
EXIT_PREEMPTED = 75


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("config", help="the trial's config.json")
    ap.add_argument("--out", help="trial directory (default: the config's directory)")
    args = ap.parse_args()
    stop = {"requested": False}

    def request_stop(signum: int, _frame: object) -> None:
        print(f"received {signal.Signals(signum).name}: checkpointing after this step", flush=True)
        stop["requested"] = True

    for name in STOP_SIGNALS:
        signal.signal(getattr(signal, name), request_stop)
    out = Path(args.out) if args.out else Path(args.config).parent
    try:
        metrics = train(
            read_json(args.config),
            out,
            should_stop=lambda: stop["requested"],
            echo=lambda line: print(line, flush=True),
        )
    except Preempted as e:
        print(f"preempted: {e}", flush=True)
        sys.exit(EXIT_PREEMPTED)
    if "rank" in metrics:  # a DDP rank other than 0: rank 0 reports and writes
        return
    print(
        f"done: {metrics['stop_reason']} after {metrics['steps']} steps, "
        f"best {metrics['select_metric']} {metrics['best']:.4f} at step {metrics['best_step']}"
    )
    if metrics.get("best_lost"):  # on stderr, which the train rule shows on the console too
        lost = metrics["best_lost"]
        print(
            f"WARNING: {args.config}: the best weights (step {lost['best_step']}) were lost "
            f"from ckpt/best.pt and model.pt; {lost['then']}",
            file=sys.stderr,
            flush=True,
        )


if __name__ == "__main__":
    run_cli(main)
