"""The training loop, one for every task: `train` reads as one step, top to bottom.

A trial is one seed of one run (a run: one grid point of an experiment, named by
seqlab.grid.run_id); its input is its resolved config (`config.json`). It writes `log.jsonl`
and TensorBoard events as it goes (logbook.py), resumable state to `ckpt/`, and at the end
`model.pt` (the best weights by the task's eval metric) and `metrics.json` (publish.py). A
killed trial, rerun, continues from its newest intact state (resume.py says which it may) and,
on CPU, ends bitwise where an uninterrupted one would: the data order is a function of (seed,
step) and the RNG state is checkpointed.

A step, in order: the LR (`Trial.lr`: the schedule, optim.lr_at, times the guard's cuts);
forward, backward, clip, optimizer step (`Trial.update`); the guard's verdict and the log line
(`Trial.judge`); evaluation (`Trial.evaluate`); a checkpoint (`Trial.save`). On CUDA the step
never waits for the device: loss and grad norm stay there until a read point (every
`log_interval` steps, and before an evaluation or a checkpoint), a non-finite update is
skipped on the device, the next micro-batch is staged while this one runs; the guard then acts
at that granularity (on CPU at every step).
"""

from __future__ import annotations

import contextlib
import enum
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from seqlab.config import TrainConfig, from_dict
from seqlab.files import remove_stale_temps
from seqlab.models import build_model
from seqlab.train import distributed
from seqlab.train.checkpoint import Checkpointer, init_weights
from seqlab.train.guard import StabilityGuard
from seqlab.train.logbook import Logbook, Throughput
from seqlab.train.optim import build_optimizer, clip_gradients, effective_lr, optimizer_step, set_lr
from seqlab.train.precision_modes import Precision, resolve, set_tf32, unsupported_reason
from seqlab.train.publish import publish, write_metrics
from seqlab.train.resume import newest_resumable, restore_best, trajectory_fingerprint
from seqlab.train.tasks import Task, build_task


class Preempted(Exception):
    """Raised after a stop request (SIGTERM, Slurm's warning signal) once the state is saved."""


class Judged(enum.Enum):
    """What `Trial.judge` found in the steps it read."""

    OK = "ok"  # every step stands
    ROLLED_BACK = "rolled_back"  # a loss spike: the trial is back at its last checkpoint
    DIVERGED = "diverged"  # the trial stops here (stop_reason "diverged")


@dataclass
class TrainerState:
    """Everything besides weights, optimizer and guard that a resumed trial must get back."""

    step: int = 0
    best: float = math.inf
    best_step: int = -1
    bad_evals: int = 0
    last_eval_step: int = -1
    last_eval: dict[str, float] = field(default_factory=dict)
    eval_at: dict[str, float] = field(default_factory=dict)
    train_loss_at: dict[str, float] = field(default_factory=dict)
    best_eval_loss: float = math.nan
    final_train_loss: float = math.nan
    tok_s: list[float] = field(default_factory=list)
    ms_iter: list[float] = field(default_factory=list)
    stop_reason: str = ""


#: trainer fields a roll-back keeps (the model selection made so far)
ROLLBACK_KEEPS = ("best", "best_step", "bad_evals")


class Trial:
    """One trial's moving parts (task, model, optimizer, precision, guard, checkpoints, log)
    and the step they take together."""

    def __init__(
        self,
        spec: dict[str, Any],
        cfg: TrainConfig,
        dd: distributed.Dist,
        device: torch.device,
        out: Path,
        echo: Callable[[str], None],
    ) -> None:
        self.cfg, self.dd, self.device, self.out = cfg, dd, device, out
        self.cuda = device.type == "cuda"
        torch.manual_seed(int(spec["seed"]))  # fixes the initialisation; the task the data
        self.task: Task = build_task(spec, cfg, device)
        self.prec = Precision(cfg.precision, device.type)
        sizes = getattr(self.task, "model_sizes", {})  # data-given sizes (CTC: days, features)
        raw = build_model(replace(cfg.model, **sizes), self.task.vocab_size)
        self.raw = raw.to(device, self.prec.param_dtype)
        self.init = init_weights(self.raw, cfg.init_from) if cfg.init_from else None
        self.model = torch.compile(self.raw) if cfg.compile else self.raw
        if dd.enabled:
            self.model = DDP(self.model, device_ids=[device.index] if self.cuda else None)
        self.opt = build_optimizer(self.raw, cfg.optim)
        self.scaler = self.prec.scaler()
        self.guard = StabilityGuard(cfg.guard, self.scaler.is_enabled())
        self.ckpt = Checkpointer(out / "ckpt", writer=dd.main)
        self.log = Logbook(out, cfg.max_steps, echo, writer=dd.main)
        self.st = TrainerState()
        self.fingerprint = trajectory_fingerprint(spec, self.task.data_info(), dd.world, self.init)
        # a non-finite update is skipped on the device (no sync) where the optimizer is fused
        self.skip_on_device = self.cuda and getattr(self.opt, "_step_supports_amp_scaling", 0)
        self._staged: tuple[int, Any] | None = None
        #: the steps not judged yet: (step, lr, loss, grad norm), the numbers on the device
        self.pending: list[tuple[int, float, torch.Tensor, torch.Tensor]] = []
        self.best_lost: dict[str, Any] | None = None  # both copies of the best weights gone
        tokens = cfg.grad_accum * dd.world * self.task.tokens_per_batch
        self.speed = Throughput(tokens)  # tokens/s of the steps between two log lines

    def running(self) -> bool:
        return self.st.step < self.cfg.max_steps and not self.st.stop_reason

    def lr(self) -> float:
        """The LR of the next step: the schedule's (optim.lr_at), times the guard's cuts."""
        c = self.cfg
        base, scale = c.optim.lr, self.guard.state.lr_scale
        return effective_lr(self.st.step, c.schedule, base, c.max_steps, scale, c.guard.lr_floor)

    def update(self, lr: float) -> int:
        """The next step, at `lr`: forward and backward over `grad_accum` micro-batches, clip,
        optimizer step; returns its number (its loss and grad norm wait on the device)."""
        set_lr(self.opt, lr)
        accum, dd = self.cfg.grad_accum, self.dd
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for j in range(accum):
            micro = self.st.step * accum + j
            batch = self._batch(micro)
            sync = not dd.enabled or j == accum - 1  # DDP all-reduces on the last only
            with self.prec.autocast(), contextlib.nullcontext() if sync else self.model.no_sync():
                loss = self.task.loss(self.model, batch)
                self.scaler.scale(loss / accum).backward()
            self._stage(micro + 1)
            loss_sum += loss.detach().double()
        loss_t = dd.mean_tensor(loss_sum / accum)  # every rank judges the same number
        gnorm_t = clip_gradients(self.opt, self.scaler, self.raw.parameters(), self.cfg.grad_clip)
        optimizer_step(self.opt, self.scaler, loss_t, gnorm_t, self.cfg.guard.enabled)
        self.st.step += 1
        self.speed.count_step()
        self.pending.append((self.st.step, lr, loss_t, gnorm_t))
        return self.st.step

    def _batch(self, micro: int) -> Any:
        """Micro-batch `micro` of the global sequence; on CUDA the next one is then staged (its
        gather and pinned non_blocking copy overlap the GPU's work on this one)."""
        index = micro * self.dd.world + self.dd.rank
        staged, self._staged = self._staged, None
        return staged[1] if staged and staged[0] == index else self.task.train_batch(index)

    def _stage(self, micro: int) -> None:
        if self.cuda:
            index = micro * self.dd.world + self.dd.rank
            self._staged = (index, self.task.train_batch(index))

    def judge(self) -> Judged:
        """Read the pending steps' numbers (one device sync) and let the guard judge them in
        order; log them at the log interval. Stops at a roll-back or a divergence."""
        pending, self.pending = self.pending, []
        values = torch.stack([torch.stack((lo, g.double())) for _, _, lo, g in pending]).tolist()
        st, cfg = self.st, self.cfg
        for (step, lr, _, _), (loss, gnorm) in zip(pending, values, strict=True):
            v = self.guard.observe(loss, gnorm, self.ckpt.last.exists() or self.ckpt.prev.exists())
            for name, info in v.events:
                self.log.event(step, name, **info)
            if v.diverged:
                st.stop_reason = "diverged"
                return Judged.DIVERGED
            if v.rollback:
                self._roll_back(step, loss)
            for why in v.cuts:
                cut = self.guard.cut(why, self.lr())
                if cut is not None:
                    self.log.event(st.step if v.rollback else step, "lr_cut", **cut)
            if v.rollback:
                return Judged.ROLLED_BACK
            if step in cfg.milestones:
                st.train_loss_at[str(step)] = loss
            if step % cfg.log_interval == 0 or step == cfg.max_steps:
                st.final_train_loss = loss
                tok_s, ms_iter = self.speed.read()
                if step > cfg.log_interval:  # the first interval is warm-up, out of the medians
                    st.tok_s.append(tok_s)
                    st.ms_iter.append(ms_iter)
                self.log.train(step, loss, lr, gnorm, tok_s)
        return Judged.OK

    def _roll_back(self, step: int, loss: float) -> None:
        """Weights, optimizer, RNG, step and replayed records go back; decisions stay."""
        kept = {k: getattr(self.st, k) for k in ROLLBACK_KEEPS}
        state, _ = self.ckpt.load_state(lambda s: True, lambda path, why: None)
        assert state is not None  # the guard rolls back only where a checkpoint exists
        self._restore(state)
        self.st.__dict__.update(kept)
        self.guard.rolled_back(state["guard"])
        self.log.rewind(self.st.step)
        self.log.event(self.st.step, "rollback", loss=loss, from_step=step, to_step=self.st.step)

    @contextlib.contextmanager
    def untimed(self) -> Iterator[None]:
        """Work besides the step (evaluation, checkpoints): left out of tokens/s."""
        with self.speed.untimed():
            yield

    def evaluate(self) -> None:
        """Score the model on the eval split; a better score (the task's `select` metric)
        makes the best checkpoint, `patience` evaluations without one stop the trial."""
        st, cfg = self.st, self.cfg
        self.model.eval()
        with self.prec.autocast():
            res = self.task.evaluate(self.raw if self.dd.enabled else self.model)
        self.model.train()
        st.last_eval, st.last_eval_step = res, st.step
        self.log.eval(st.step, res)
        loss = res.get("eval_loss", math.nan)
        if math.isfinite(loss) and (math.isnan(st.best_eval_loss) or loss < st.best_eval_loss):
            st.best_eval_loss = loss
        if st.step in cfg.milestones:  # eval_loss_at: the loss, whatever picks the best
            st.eval_at[str(st.step)] = res.get("eval_loss", res[self.task.select])
        value = res[self.task.select]
        if math.isfinite(value) and value < st.best - cfg.min_delta:
            st.best, st.best_step, st.bad_evals = value, st.step, 0
            self.ckpt.save_best(self.raw.state_dict(), st.step, res)
        elif st.step > 0:
            st.bad_evals += 1
            if cfg.patience and st.bad_evals >= cfg.patience:
                st.stop_reason = "early_stop"
                self.log.event(st.step, "early_stop", best_step=st.best_step, patience=cfg.patience)

    def keep_weights(self, step: int) -> None:
        """ckpt/step{N}.pt: the weights alone, for evaluations over steps (`keep_steps`)."""
        self.ckpt.save_weights(self.ckpt.kept(step).name, self.raw.state_dict(), step)

    def save(self) -> None:
        """The resumable state: weights, optimizer, scaler, RNG, trainer and guard."""
        rng = self.dd.gather_rng()  # a collective: every rank takes part, rank 0 writes
        self.ckpt.save_state(
            {
                "model": self.raw.state_dict(),
                "optim": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng,
                "cuda_rng": torch.cuda.get_rng_state_all() if self.cuda else [],
                "trainer": asdict(self.st),
                "guard": self.guard.state_dict(),
                "fingerprint": self.fingerprint,
            }
        )
        self.dd.barrier()

    def preempt(self) -> None:
        """A stop was requested: say so in the log and save the state to resume from."""
        self.log.event(self.st.step, "preempted")
        self.save()

    def _restore(self, ck: dict[str, Any]) -> None:
        """A saved state (loaded on the CPU; load_state_dict moves it to the parameters')."""
        self.raw.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optim"])
        self.scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng"][min(self.dd.rank, len(ck["rng"]) - 1)])
        if ck["cuda_rng"]:
            torch.cuda.set_rng_state_all(ck["cuda_rng"])
        self.st = TrainerState(**ck["trainer"])
        self._staged = None

    def start(self) -> None:
        """Resume from the newest checkpoint this trial may continue (resume.py), or start afresh
        and evaluate step 0, the start of every curve; the log says which, and why."""
        if self.dd.main:
            remove_stale_temps(self.out)
        self.ckpt.start()
        log_kept = self.log.has_records()
        found = newest_resumable(self.ckpt, self.fingerprint, self.cfg, self.raw, log_kept)
        if found.state is not None:
            self._restore(found.state)
            self.guard.load_state_dict(found.state["guard"])
        self.log.open(self.st.step if found.state is not None else None)
        then = "resume" if found.state is not None else "restart"
        for path, why in found.corrupt:
            self.log.event(self.st.step, "ckpt_corrupt", path=path, why=why, then=then)
        if found.state is None:
            if found.refused:  # resuming would publish results this config does not produce
                self.log.event(0, "ckpt_discarded", why=found.refused)
            if self.init is not None:
                i = self.init
                self.log.event(
                    0, "init_from", path=i["path"], sha256=i["sha256"], weights_step=i["step"]
                )
            self.evaluate()
        else:
            if self.st.best_step >= 0 and found.best is None:  # every rank agrees
                self._recover_best()
            self.log.event(self.st.step, "resume", from_step=self.st.step)
        self.model.train()
        self.speed.restart()

    def _recover_best(self) -> None:
        """best.pt is lost: model.pt, a verified copy of the best weights, restores it; only
        when both are gone is the best forgotten (the selection restarts, and metrics.json
        says so in `best_lost`)."""
        st = self.st
        if restore_best(self.ckpt, self.fingerprint, st.best_step):
            self.log.event(st.step, "best_restored", best_step=st.best_step, source="model.pt")
            return
        self.log.event(st.step, "best_lost", best_step=st.best_step)
        self.best_lost = {"best_step": st.best_step, "then": f"selection restarts at {st.step}"}
        st.best, st.best_step, st.bad_evals = math.inf, -1, 0

    def finish(self) -> None:
        """The last step is always evaluated; the stop reason is max_steps unless set."""
        if self.st.last_eval_step != self.st.step:
            self.evaluate()
        self.st.stop_reason = self.st.stop_reason or "max_steps"
        self.dd.barrier()

    def close(self) -> None:
        self.log.close()


def train(
    spec: dict[str, Any],
    out_dir: str | Path,
    should_stop: Callable[[], bool] = lambda: False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one trial (`spec`: its resolved config) to completion, or resume it, and write
    its outputs; returns its metrics."""
    cfg = from_dict(TrainConfig, spec["train"], "train")
    out, t_start = Path(out_dir), time.time()
    torch.set_num_threads(cfg.threads)
    dd, device = distributed.setup(cfg.device)
    if cfg.precision == "auto":  # the mode that runs is the one fingerprinted and recorded
        mode = resolve(cfg.precision, device)
        spec = {**spec, "train": {**spec["train"], "precision": mode}, "precision_asked": "auto"}
        cfg = replace(cfg, precision=mode)
        echo(f"precision auto -> {cfg.precision} on {device}")
    echo = echo if dd.main else (lambda _line: None)  # rank 0 speaks
    tf32 = set_tf32(cfg.tf32)  # explicit and recorded: "fp32" means IEEE fp32 unless tf32
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # this trial's peak, not the process's
    reason = unsupported_reason(cfg.precision, device)
    if reason is not None:  # a precision this device cannot run: recorded, not failed
        echo(f"skipping trial: {reason}")
        dd.close()
        if not dd.main:
            return {"stop_reason": "unsupported", "rank": dd.rank}
        st = TrainerState(stop_reason="unsupported")
        extra = {"skip_reason": reason}
        return write_metrics(out, spec, cfg, None, st, {}, device, t_start, extra=extra)

    trial = Trial(spec, cfg, dd, device, out, echo)
    # CUDA: the loss and grad norm stay on the device until a read point (one sync there)
    read_every = cfg.log_interval if device.type == "cuda" else 1
    try:
        trial.start()
        while trial.running():
            lr = trial.lr()
            step = trial.update(lr)  # forward, backward, clip, optimizer step
            last = step == cfg.max_steps
            evaluate = step % cfg.eval_interval == 0 or step in cfg.milestones or last
            checkpoint = step % cfg.ckpt_interval == 0
            due = step % read_every == 0 or evaluate or checkpoint
            stop_now = dd.stop_requested(should_stop, due) and not last
            if due or stop_now:
                judged = trial.judge()  # the guard's verdict on each step, the log lines
                if judged is Judged.ROLLED_BACK:
                    continue  # replay from the checkpoint it went back to
                if judged is Judged.DIVERGED:
                    break
            with trial.untimed():
                if evaluate:
                    trial.evaluate()
                if step in cfg.keep_steps:
                    trial.keep_weights(step)
                if stop_now:
                    trial.preempt()
                elif checkpoint:
                    trial.save()
            if stop_now:
                raise Preempted(f"stopped at step {step}; checkpoint saved, rerun to resume")
        trial.finish()
    finally:
        trial.close()
        dd.close()
    if not dd.main:  # rank 0 alone writes the outputs
        return {"steps": trial.st.step, "stop_reason": trial.st.stop_reason, "rank": dd.rank}
    return publish(trial, spec, tf32, t_start)
