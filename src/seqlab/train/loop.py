"""The training loop: one for every task, readable top to bottom.

Input: a resolved trial config (what `config.json` holds). Output, in the trial directory:
`metrics.json`, `log.jsonl` (appended while the trial runs), TensorBoard events and
`model.pt` (the best checkpoint by the task's real eval metric). Resumable state lives in
`ckpt/` (`last.pt`, `prev.pt`, `best.pt`): rerunning a killed trial continues from the newest
intact state and, on CPU, ends bitwise where an uninterrupted run would, because the data
order is a function of (seed, step) and the RNG state is checkpointed.

The parts: `Run` holds what one trial trains (task, model, optimizer, precision) and does one
update; `StabilityGuard` judges each update; `Checkpointer` saves and restores, and
`resume.refusal` says which checkpoint may be continued; `Logbook` records; `effective_lr`
is the LR. On CUDA the steady-state step never waits for the device:
loss and grad norm stay there and are read every `log_interval` steps (and before an
evaluation or a checkpoint), a non-finite update is skipped on the device (the fused
optimizers' found_inf), the next micro-batch is staged while the current one runs. The
guard's counting, cuts and roll-backs then act at log granularity; on CPU at every step.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from seqlab.config import TrainConfig, from_dict
from seqlab.files import remove_stale_temps
from seqlab.models import build_model, count_params, model_spec
from seqlab.train import distributed
from seqlab.train.checkpoint import Checkpointer, init_weights
from seqlab.train.guard import StabilityGuard
from seqlab.train.logbook import Logbook, write_metrics
from seqlab.train.optim import apply_update, build_optimizer, effective_lr, set_lr
from seqlab.train.precision_modes import (
    Precision,
    optim_state_dtypes,
    resolve,
    set_tf32,
    unsupported_reason,
)
from seqlab.train.resume import refusal, trajectory_fingerprint
from seqlab.train.tasks import Task, build_task


class Preempted(Exception):
    """Raised after a stop request (SIGTERM, Slurm's warning signal) once the state is saved."""


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


class Run:
    """One trial's moving parts and the update they make together."""

    def __init__(
        self,
        trial: dict[str, Any],
        cfg: TrainConfig,
        dd: distributed.Dist,
        device: torch.device,
        out: Path,
        echo: Callable[[str], None],
    ) -> None:
        self.cfg, self.dd, self.device, self.out = cfg, dd, device, out
        torch.manual_seed(int(trial["seed"]))  # fixes the initialisation; the task the data
        self.task: Task = build_task(trial, cfg, device)
        self.prec = Precision(cfg.precision, device.type)
        sizes = getattr(self.task, "model_sizes", {})  # data-given sizes (CTC: days, features)
        self.raw = build_model(replace(cfg.model, **sizes), self.task.vocab_size).to(
            device, self.prec.param_dtype
        )
        self.init = init_weights(self.raw, cfg.init_from) if cfg.init_from else None
        model = torch.compile(self.raw) if cfg.compile else self.raw
        if dd.enabled:
            model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.model = model
        self.opt = build_optimizer(self.raw, cfg.optim)
        self.scaler = self.prec.scaler()
        self.guard = StabilityGuard(cfg.guard, self.scaler.is_enabled())
        self.ckpt = Checkpointer(out / "ckpt", writer=dd.main)
        self.log = Logbook(out, cfg.max_steps, echo, writer=dd.main)
        self.st = TrainerState()
        self.fingerprint = trajectory_fingerprint(trial, self.task.data_info(), dd.world, self.init)
        self.cuda = device.type == "cuda"
        # a non-finite update is skipped on the device (no sync) where the optimizer is fused
        self.skip_on_device = self.cuda and getattr(self.opt, "_step_supports_amp_scaling", 0)
        self._staged: tuple[int, Any] | None = None
        self.best_lost: dict[str, Any] | None = None  # both copies of the best weights gone
        self.t_last, self.steps_since = time.perf_counter(), 0

    def lr(self) -> float:
        c, s = self.cfg, self.guard.state
        base = c.optim.lr
        return effective_lr(
            self.st.step, c.schedule, base, c.max_steps, s.lr_scale, c.guard.lr_floor
        )

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

    def update(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over `grad_accum` micro-batches; (loss, grad norm) on device."""
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
        gnorm_t = apply_update(
            self.opt,
            self.scaler,
            self.raw.parameters(),
            loss_t,
            self.cfg.grad_clip,
            self.cfg.guard.enabled,
        )
        return loss_t, gnorm_t

    def evaluate(self) -> None:
        st, cfg = self.st, self.cfg
        self.model.eval()
        with self.prec.autocast():
            res = self.task.evaluate(self.raw if self.dd.enabled else self.model)
        self.model.train()
        st.last_eval, st.last_eval_step = res, st.step
        self.log.eval(st.step, res)
        if math.isfinite(res.get("eval_loss", math.nan)):
            st.best_eval_loss = (
                min(res["eval_loss"], st.best_eval_loss)
                if math.isfinite(st.best_eval_loss)
                else res["eval_loss"]
            )
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

    def save(self) -> None:
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

    def restore(self, ck: dict[str, Any]) -> None:
        """ck loaded on the CPU: RNG states stay CPU tensors; load_state_dict moves weights
        and optimizer state to their parameters' device."""
        self.raw.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optim"])
        self.scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng"][min(self.dd.rank, len(ck["rng"]) - 1)])
        if ck["cuda_rng"]:
            torch.cuda.set_rng_state_all(ck["cuda_rng"])
        self.st = TrainerState(**ck["trainer"])
        self._staged = None

    def start(self) -> None:
        """Resume from the newest intact checkpoint of this trajectory, or start afresh (and
        evaluate step 0, the start of every curve). Says in the log what it found."""
        if self.dd.main:
            remove_stale_temps(self.out)
        self.ckpt.start()
        corrupt: list[tuple[str, str]] = []
        # a resumed log continues the earlier records: without any (log.jsonl and its copy in
        # ckpt/ both deleted) the curve would start mid-way, so the trial is retrained whole
        log_kept = self.log.has_records()
        best = self.ckpt.load_best()  # read once: it may be newer than the checkpoint
        refused: list[str] = []

        def accept(s: dict[str, Any]) -> bool:
            why = refusal(
                s,
                self.fingerprint,
                self.cfg,
                self.raw,
                self.ckpt,
                log_kept,
                None if best is None else best["step"],
            )
            refused.extend([why] if why else [])
            return why is None

        state, discarded = self.ckpt.load_state(accept, lambda p, why: corrupt.append((p, why)))
        if state is not None:
            self.restore(state)
            self.guard.load_state_dict(state["guard"])
        self.log.open(self.st.step if state is not None else None)
        for path, why in corrupt:
            self.log.event(
                self.st.step,
                "ckpt_corrupt",
                path=path,
                why=why,
                then="resume" if state is not None else "restart",
            )
        if state is None:
            if discarded:  # resuming would publish results this config does not produce
                self.log.event(0, "ckpt_discarded", why=refused[0])
            if self.init is not None:
                i = self.init
                self.log.event(
                    0, "init_from", path=i["path"], sha256=i["sha256"], weights_step=i["step"]
                )
            self.evaluate()
            return
        if self.st.best_step >= 0 and best is None:  # every rank agrees
            self.recover_best()
        self.log.event(self.st.step, "resume", from_step=self.st.step)

    def recover_best(self) -> None:
        """best.pt is lost: model.pt, a verified copy of the best weights, restores it; only
        when both are gone is the best forgotten (the selection restarts, and metrics.json
        says so in `best_lost`)."""
        st = self.st
        published = self.ckpt.load_published(self.fingerprint)
        if published is not None and published["step"] == st.best_step:
            self.ckpt.save_best(published["model"], st.best_step, published["eval"])
            self.log.event(st.step, "best_restored", best_step=st.best_step, source="model.pt")
            return
        self.log.event(st.step, "best_lost", best_step=st.best_step)
        self.best_lost = {"best_step": st.best_step, "then": f"selection restarts at {st.step}"}
        st.best, st.best_step, st.bad_evals = math.inf, -1, 0

    def judge(self, pending: list[tuple[int, float, torch.Tensor, torch.Tensor]]) -> bool:
        """Read the pending steps' numbers (one device sync) and let the guard judge them in
        order; log at the log interval. False: the trial rolled back (or diverged)."""
        values = torch.stack([torch.stack((lo, g.double())) for _, _, lo, g in pending]).tolist()
        st, cfg = self.st, self.cfg
        for (step, lr, _, _), (loss, gnorm) in zip(pending, values, strict=True):
            v = self.guard.observe(loss, gnorm, self.ckpt.last.exists() or self.ckpt.prev.exists())
            for name, info in v.events:
                self.log.event(step, name, **info)
            if v.diverged:
                st.stop_reason = "diverged"
                return False
            if v.rollback:
                self.roll_back(step, loss)
            for why in v.cuts:
                cut = self.guard.cut(why, self.lr())
                if cut is not None:
                    self.log.event(st.step if v.rollback else step, "lr_cut", **cut)
            if v.rollback:
                return False
            if step in cfg.milestones:
                st.train_loss_at[str(step)] = loss
            if step % cfg.log_interval == 0 or step == cfg.max_steps:
                st.final_train_loss = loss
                self.log.train(step, loss, lr, gnorm, self.tok_s(step))
        return True

    def roll_back(self, step: int, loss: float) -> None:
        """Weights, optimizer, RNG, step and replayed records go back; decisions stay."""
        kept = {k: getattr(self.st, k) for k in ROLLBACK_KEEPS}
        state, _ = self.ckpt.load_state(lambda s: True, lambda path, why: None)
        assert state is not None  # the guard rolls back only where a checkpoint exists
        self.restore(state)
        self.st.__dict__.update(kept)
        self.guard.rolled_back(state["guard"])
        self.log.rewind(self.st.step)
        self.log.event(self.st.step, "rollback", loss=loss, from_step=step, to_step=self.st.step)

    def tok_s(self, step: int) -> float:
        """Tokens/s over the steps since the last log line (eval/ckpt time left out)."""
        dt = time.perf_counter() - self.t_last
        n = max(self.steps_since, 1)
        tok_s = n * self.cfg.grad_accum * self.dd.world * self.task.tokens_per_batch / dt
        if step > self.cfg.log_interval:  # the first interval is warm-up, kept out of medians
            self.st.tok_s.append(tok_s)
            self.st.ms_iter.append(1000 * dt / n)
        self.t_last, self.steps_since = time.perf_counter(), 0
        return tok_s


def train(
    trial: dict[str, Any],
    out_dir: str | Path,
    should_stop: Callable[[], bool] = lambda: False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one trial to completion (or resume it) and write its outputs; returns metrics."""
    cfg = from_dict(TrainConfig, trial["train"], "train")
    out, t_start = Path(out_dir), time.time()
    torch.set_num_threads(cfg.threads)
    dd, device = distributed.setup(cfg.device)
    if cfg.precision == "auto":  # the mode that runs is the one fingerprinted and recorded
        mode = resolve(cfg.precision, device)
        trial = {**trial, "train": {**trial["train"], "precision": mode}, "precision_asked": "auto"}
        cfg = replace(cfg, precision=trial["train"]["precision"])
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
        return write_metrics(
            out, trial, cfg, None, st, {}, device, t_start, extra={"skip_reason": reason}
        )

    run = Run(trial, cfg, dd, device, out, echo)
    try:
        run.start()
        run.model.train()
        # CUDA: the loss and grad norm stay on the device until the log interval (or side work)
        read_every = cfg.log_interval if device.type == "cuda" else 1
        pending: list[tuple[int, float, torch.Tensor, torch.Tensor]] = []
        run.t_last = time.perf_counter()
        while run.st.step < cfg.max_steps and not run.st.stop_reason:
            lr = run.lr()
            set_lr(run.opt, lr)
            loss, gnorm = run.update()
            run.st.step += 1
            run.steps_since += 1
            step = run.st.step
            evaluate = step % cfg.eval_interval == 0 or step in cfg.milestones
            checkpoint = step % cfg.ckpt_interval == 0
            pending.append((step, lr, loss, gnorm))
            due = step % read_every == 0 or evaluate or checkpoint or step == cfg.max_steps
            stop_now = _stop_requested(dd, should_stop, due) and step < cfg.max_steps
            if due or stop_now:
                judged, pending = run.judge(pending), []
                if not judged:
                    continue  # rolled back (replay from the checkpoint) or diverged
            t_side = time.perf_counter()  # eval and checkpoint time stay out of tok/s
            if evaluate or step == cfg.max_steps:
                run.evaluate()
            if step in cfg.keep_steps:  # weights only, for evaluations over steps
                run.ckpt.save_weights(run.ckpt.kept(step).name, run.raw.state_dict(), step)
            if stop_now:
                run.log.event(step, "preempted")
            if checkpoint or stop_now:
                run.save()
            run.t_last += time.perf_counter() - t_side
            if stop_now:
                raise Preempted(f"stopped at step {step}; checkpoint saved, rerun to resume")

        st = run.st
        if st.last_eval_step != st.step:
            run.evaluate()
        st.stop_reason = st.stop_reason or "max_steps"
        dd.barrier()
    finally:
        run.log.close()
        dd.close()
    if not dd.main:  # rank 0 alone writes the outputs
        return {"steps": st.step, "stop_reason": st.stop_reason, "rank": dd.rank}
    return _publish(run, trial, tf32, t_start)


def _stop_requested(dd: distributed.Dist, should_stop: Callable[[], bool], due: bool) -> bool:
    """The stop flag, every step in one process; under DDP only at read points, where all
    ranks agree on it by one collective."""
    if not dd.enabled:
        return should_stop()
    return dd.any(should_stop()) if due else False


def _publish(run: Run, trial: dict[str, Any], tf32: dict[str, str], t_start: float):
    """model.pt from the intact best checkpoint, so its weights always match its step and
    metrics. When every copy of the best weights is lost, the final weights are published
    under their own step and scores instead, and the log, the console and metrics.json's
    `best_lost` say so."""
    st, task, dd = run.st, run.task, run.dd
    best = run.ckpt.load_best()
    if best is not None and best["step"] != st.best_step:  # never another step's weights
        best = None
    if best is None and (st.best_step >= 0 or run.best_lost):
        lost_step = run.best_lost["best_step"] if run.best_lost else st.best_step
        then = f"final weights published as the best, step {st.step}"
        run.best_lost = {"best_step": lost_step, "then": then}
        run.log.open(st.step)
        run.log.event(st.step, "best_lost", best_step=lost_step, then=then)
        run.log.close()
        st.best, st.best_step = st.last_eval[task.select], st.step
    if best is None:
        best = {"model": run.raw.state_dict(), "step": st.best_step, "eval": st.last_eval}
    model_file = {
        "model": best["model"],
        "model_config": model_spec(run.raw),
        "vocab_size": task.vocab_size,
        "step": best["step"],
        "eval": best.get("eval", {}),
        "trial": trial,
        "fingerprint": run.fingerprint,  # whose best weights these are (see recover_best)
    }
    extra = {
        "world_size": dd.world,
        "tf32": tf32,
        "guard": run.guard.state_dict(),
        "optim_state_dtypes": optim_state_dtypes(run.opt),
        "param_dtype": str(run.prec.param_dtype).removeprefix("torch."),
        "init_from": run.init,
        "best_lost": run.best_lost,
    }
    if hasattr(task, "perf_metrics"):  # optional Task hook: MFU for text_lm, per device
        tok_s = statistics.median(st.tok_s) if st.tok_s else math.nan
        extra.update(task.perf_metrics(tok_s / dd.world, run.device))
    return write_metrics(
        run.out,
        trial,
        run.cfg,
        task,
        st,
        model_file,
        run.device,
        t_start,
        count_params(run.raw),
        extra=extra,
    )
