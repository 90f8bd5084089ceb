"""The training loop: seeds fix everything, kills and stop signals resume bitwise."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import PYTHON, ROOT, curves, parse, tiny_trial
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlab.config import TrainConfig
from seqlab.errors import SeqlabError
from seqlab.files import read_json
from seqlab.train.checkpoint import load_checkpoint, save_checkpoint
from seqlab.train.logbook import read_log
from seqlab.train.loop import Preempted, train
from seqlab.train.tasks import TASKS, UnitLMTask

SCRIPT = str(ROOT / "workflow" / "scripts" / "train.py")


def quiet(_line: str) -> None:
    pass


def assert_same_model(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a / "model.pt")["model"], load_checkpoint(b / "model.pt")["model"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_outputs_and_metrics(unit_manifest: Path, tmp_path: Path) -> None:
    m = train(tiny_trial(unit_manifest), tmp_path, echo=quiet)
    assert m["stop_reason"] == "max_steps" and m["steps"] == 12
    assert set(m["eval_loss_at"]) == {"4", "10"} and set(m["train_loss_at"]) == {"4", "10"}
    # the best checkpoint is the minimum of the real eval losses, and model.pt holds it
    evals = {e["step"]: e["eval_loss"] for e in map(json.loads, open(tmp_path / "log.jsonl"))
             if e["kind"] == "eval"}  # fmt: skip
    assert m["best_eval_loss"] == min(evals.values())
    assert m["best_step"] == min(evals, key=evals.get)
    assert load_checkpoint(tmp_path / "model.pt")["step"] == m["best_step"]
    assert m["best_eval_loss"] < evals[0]  # it learned something
    assert read_json(tmp_path / "metrics.json")["params"] == m["params"] > 0


def test_seed_fixes_init_and_data(unit_manifest: Path, tmp_path: Path) -> None:
    train(tiny_trial(unit_manifest, max_steps=6), tmp_path / "a", echo=quiet)
    train(tiny_trial(unit_manifest, max_steps=6), tmp_path / "b", echo=quiet)
    other = tiny_trial(unit_manifest, max_steps=6)
    other["seed"] = 1
    train(other, tmp_path / "c", echo=quiet)
    assert curves(tmp_path / "a") == curves(tmp_path / "b")
    assert_same_model(tmp_path / "a", tmp_path / "b")
    assert curves(tmp_path / "a") != curves(tmp_path / "c")


def test_stop_request_then_resume_is_bitwise(unit_manifest: Path, tmp_path: Path) -> None:
    trial = tiny_trial(unit_manifest)
    train(trial, tmp_path / "full", echo=quiet)
    calls = {"n": 0}

    def stop_at_7() -> bool:  # asked once per step, after the step
        calls["n"] += 1
        return calls["n"] >= 7

    with pytest.raises(Preempted):
        train(trial, tmp_path / "cut", should_stop=stop_at_7, echo=quiet)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    assert load_checkpoint(tmp_path / "cut" / "ckpt" / "last.pt")["trainer"]["step"] == 7
    m = train(trial, tmp_path / "cut", echo=quiet)
    assert m["steps"] == 12
    assert curves(tmp_path / "full") == curves(tmp_path / "cut")
    assert_same_model(tmp_path / "full", tmp_path / "cut")
    full = read_json(tmp_path / "full" / "metrics.json")
    for key in ("final_eval_loss", "best_eval_loss", "best_step", "eval_loss_at", "train_loss_at"):
        assert m[key] == full[key], key


def _run_script(config: Path) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, SCRIPT, str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_killed_process_resumes_bitwise(unit_manifest: Path, tmp_path: Path, how: str) -> None:
    """A real process killed mid-training (or asked to stop) and rerun ends where an
    uninterrupted one does."""
    trial = tiny_trial(unit_manifest, max_steps=150, ckpt_interval=5, eval_interval=25)
    for name in ("full", "cut"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(trial))
    assert _run_script(tmp_path / "full" / "config.json").wait(timeout=120) == 0

    proc = _run_script(tmp_path / "cut" / "config.json")
    ckpt = tmp_path / "cut" / "ckpt" / "last.pt"
    deadline = time.time() + 60
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert ckpt.exists(), "no checkpoint was written"
    proc.send_signal(getattr(signal, how))
    rc = proc.wait(timeout=60)
    if rc == 0:
        pytest.skip("the trial finished before the signal arrived (machine too fast)")
    assert rc == (75 if how == "SIGTERM" else -9), proc.stdout.read()
    assert not (tmp_path / "cut" / "metrics.json").exists()

    rerun = _run_script(tmp_path / "cut" / "config.json")
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out
    assert "event resume" in out
    assert curves(tmp_path / "full") == curves(tmp_path / "cut")
    assert_same_model(tmp_path / "full", tmp_path / "cut")


def test_early_stopping(unit_manifest: Path, tmp_path: Path) -> None:
    m = train(tiny_trial(unit_manifest, max_steps=200, eval_interval=1, patience=2,
                         optim={"name": "sgd", "lr": 1e-9}), tmp_path, echo=quiet)  # fmt: skip
    assert m["stop_reason"] == "early_stop" and m["steps"] < 200


def test_unknown_key_is_one_clear_error(unit_manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(SeqlabError, match=r"train\.max_step: unknown key; did you mean 'max_st"):
        train(tiny_trial(unit_manifest, max_step=3), tmp_path, echo=quiet)
    assert not (tmp_path / "metrics.json").exists()


def test_guard_skips_nonfinite_and_cuts_lr(unit_manifest: Path, tmp_path: Path) -> None:
    """An absurd LR in pure fp16 overflows: the guard skips those updates and cuts the LR
    instead of writing NaNs into the weights; without the guard the trial is 'diverged'."""
    kw = dict(precision="fp16_naive", optim={"name": "sgd", "lr": 1e4}, grad_clip=0.0,
              max_steps=30, guard={"max_skips": 2, "lr_cut": 0.1, "max_cuts": 5})  # fmt: skip
    m = train(tiny_trial(unit_manifest, **kw), tmp_path / "guarded", echo=quiet)
    if m["stop_reason"] == "unsupported":
        pytest.skip(m["skip_reason"])
    log = [json.loads(x) for x in open(tmp_path / "guarded" / "log.jsonl")]
    events = [e["event"] for e in log if e["kind"] == "event"]
    assert m["n_skipped"] > 0 and "skip_update" in events
    assert m["n_lr_cuts"] > 0 and "lr_cut" in events
    kw["guard"] = {"enabled": False}
    m2 = train(tiny_trial(unit_manifest, **kw), tmp_path / "unguarded", echo=quiet)
    assert m2["stop_reason"] == "diverged"


def test_changed_config_discards_the_checkpoint(unit_manifest: Path, tmp_path: Path) -> None:
    """A rerun under another lr must not resume (and republish) the old trajectory."""
    train(tiny_trial(unit_manifest), tmp_path / "t", echo=quiet)
    old = curves(tmp_path / "t")
    m = train(tiny_trial(unit_manifest, optim={"name": "adam", "lr": 3e-3}), tmp_path / "t",
              echo=quiet)  # fmt: skip
    train(tiny_trial(unit_manifest, optim={"name": "adam", "lr": 3e-3}), tmp_path / "fresh",
          echo=quiet)  # fmt: skip
    events = [json.loads(x).get("event") for x in open(tmp_path / "t" / "log.jsonl")]
    assert "ckpt_discarded" in events and "resume" not in events
    assert curves(tmp_path / "t") == curves(tmp_path / "fresh") != old
    assert m["steps"] == 12


def events_of(trial_dir: Path) -> list[dict]:
    return [e for e in map(json.loads, open(trial_dir / "log.jsonl")) if e["kind"] == "event"]


def test_larger_max_steps_continues_the_trial(unit_manifest: Path, tmp_path: Path) -> None:
    """Under a schedule that does not decay to max_steps, a longer rerun resumes and ends
    bitwise where one uninterrupted trial of that length ends."""
    const = {"name": "constant", "warmup": 2}
    train(tiny_trial(unit_manifest, max_steps=8, schedule=const), tmp_path / "t", echo=quiet)
    m = train(tiny_trial(unit_manifest, max_steps=12, schedule=const), tmp_path / "t",
              echo=quiet)  # fmt: skip
    train(tiny_trial(unit_manifest, max_steps=12, schedule=const), tmp_path / "fresh",
          echo=quiet)  # fmt: skip
    assert [e["from_step"] for e in events_of(tmp_path / "t") if e["event"] == "resume"] == [8]
    assert m["steps"] == 12 and curves(tmp_path / "t") == curves(tmp_path / "fresh")
    assert_same_model(tmp_path / "t", tmp_path / "fresh")


def test_max_steps_changes_that_would_mislabel_retrain(unit_manifest: Path, tmp_path: Path) -> None:
    """Cosine decays to max_steps, so a longer cosine trial is another trajectory; a shorter
    one must not publish the longer one's weights under the shorter label."""
    train(tiny_trial(unit_manifest, max_steps=8), tmp_path / "cos", echo=quiet)
    m = train(tiny_trial(unit_manifest), tmp_path / "cos", echo=quiet)
    train(tiny_trial(unit_manifest), tmp_path / "fresh", echo=quiet)
    assert [e["why"] for e in events_of(tmp_path / "cos") if e["event"] == "ckpt_discarded"] == [
        "config or data changed"]  # fmt: skip
    assert m["steps"] == 12 and curves(tmp_path / "cos") == curves(tmp_path / "fresh")

    const = {"name": "constant"}
    train(tiny_trial(unit_manifest, schedule=const), tmp_path / "short", echo=quiet)
    m = train(tiny_trial(unit_manifest, max_steps=8, schedule=const), tmp_path / "short",
              echo=quiet)  # fmt: skip
    train(tiny_trial(unit_manifest, max_steps=8, schedule=const), tmp_path / "fresh8",
          echo=quiet)  # fmt: skip
    why = [e["why"] for e in events_of(tmp_path / "short") if e["event"] == "ckpt_discarded"]
    assert why == ["made at step 12, past max_steps 8"] and m["steps"] == 8
    assert curves(tmp_path / "short") == curves(tmp_path / "fresh8")
    assert_same_model(tmp_path / "short", tmp_path / "fresh8")


@pytest.mark.parametrize(
    "ckpt_interval, why",
    [
        (2, "step 6 was evaluated as the last step; a longer trial would not be"),
        (4, "best.pt is from step 6, which this trial does not evaluate"),
    ],
)
def test_what_only_the_last_step_made_is_not_continued(
    unit_manifest: Path, tmp_path: Path, ckpt_interval: int, why: str
) -> None:
    """Step 6 of a 6-step trial is evaluated (and is the best) only for being the last step,
    which a 12-step trial does not do. Checkpointed at 6, that evaluation is in the state;
    checkpointed at 4, it is in best.pt. Either way the longer rerun retrains, and ends
    bitwise as the uninterrupted 12-step trial (resuming would publish step 6 as its best)."""
    kw = {"schedule": {"name": "constant"}, "ckpt_interval": ckpt_interval}
    m6 = train(tiny_trial(unit_manifest, max_steps=6, **kw), tmp_path / "t", echo=quiet)
    assert m6["best_step"] == 6
    train(tiny_trial(unit_manifest, **kw), tmp_path / "t", echo=quiet)
    train(tiny_trial(unit_manifest, **kw), tmp_path / "fresh", echo=quiet)
    assert [e["why"] for e in events_of(tmp_path / "t") if e["event"] == "ckpt_discarded"] == [
        why]  # fmt: skip
    assert curves(tmp_path / "t") == curves(tmp_path / "fresh")
    assert_same_model(tmp_path / "t", tmp_path / "fresh")


def test_a_keep_step_added_later_is_made(unit_manifest: Path, tmp_path: Path) -> None:
    """keep_steps added after the trial passed that step: the trial is retrained (bitwise the
    same) so that the kept weights exist, instead of silently lacking them."""
    const = {"name": "constant"}
    train(tiny_trial(unit_manifest, max_steps=8, schedule=const), tmp_path / "t", echo=quiet)
    train(tiny_trial(unit_manifest, max_steps=8, schedule=const, keep_steps=[4]),
          tmp_path / "t", echo=quiet)  # fmt: skip
    why = [e["why"] for e in events_of(tmp_path / "t") if e["event"] == "ckpt_discarded"]
    assert why == ["keep_steps asks for step 4, which this checkpoint is past"]
    assert load_checkpoint(tmp_path / "t" / "ckpt" / "step4.pt")["step"] == 4


def test_a_checkpoint_that_does_not_fit_the_model_is_discarded(
    unit_manifest: Path, tmp_path: Path
) -> None:
    """Same fingerprint, other weights (a seqlab upgrade renamed a parameter): the trial
    restarts with a reason in the log instead of failing on every rerun."""
    train(tiny_trial(unit_manifest, max_steps=8), tmp_path / "t", echo=quiet)
    (tmp_path / "t" / "metrics.json").unlink()
    for name in ("last.pt", "prev.pt"):
        state = load_checkpoint(tmp_path / "t" / "ckpt" / name)
        state["model"] = {f"old.{k}": v for k, v in state["model"].items()}
        save_checkpoint(tmp_path / "t" / "ckpt" / name, state)
    m = train(tiny_trial(unit_manifest, max_steps=8), tmp_path / "t", echo=quiet)
    train(tiny_trial(unit_manifest, max_steps=8), tmp_path / "fresh", echo=quiet)
    why = [e["why"] for e in events_of(tmp_path / "t") if e["event"] == "ckpt_discarded"]
    assert len(why) == 1 and why[0].startswith("its weights do not fit the model")
    assert m["steps"] == 8 and curves(tmp_path / "t") == curves(tmp_path / "fresh")


def test_warm_start_from_a_kept_step(unit_manifest: Path, tmp_path: Path) -> None:
    """init_from: another trial's weights at a kept step, with a new LR (as resuming
    from the pre-spike step 1500 with a constant 1e-5 was done by hand): step 0 scores what the
    parent scored there."""
    train(tiny_trial(unit_manifest, keep_steps=[8]), tmp_path / "parent", echo=quiet)
    kept = tmp_path / "parent" / "ckpt" / "step8.pt"
    child = tiny_trial(unit_manifest, init_from=str(kept), schedule={"name": "constant"},
                       optim={"name": "adam", "lr": 1e-3})  # fmt: skip
    m = train(child, tmp_path / "child", echo=quiet)
    parent_evals = {e["step"]: e["eval_loss"] for e in curves(tmp_path / "parent")
                    if e["kind"] == "eval"}  # fmt: skip
    child_evals = [e for e in curves(tmp_path / "child") if e["kind"] == "eval"]
    assert child_evals[0]["step"] == 0 and child_evals[0]["eval_loss"] == parent_evals[8]
    assert m["init_from"]["step"] == 8 and m["init_from"]["path"] == str(kept)
    assert [e["event"] for e in events_of(tmp_path / "child")][0] == "init_from"
    # the same weights saved again (another file: torch.save records a random id) are the
    # same start, so the child resumes; other weights are another start, so it does not
    (tmp_path / "child" / "metrics.json").unlink()
    state = load_checkpoint(kept)
    save_checkpoint(kept, state)
    assert train(child, tmp_path / "child", echo=quiet)["init_from"]["step"] == 8
    assert "ckpt_discarded" not in [e["event"] for e in events_of(tmp_path / "child")]
    (tmp_path / "child" / "metrics.json").unlink()
    state["model"] = {k: v + 1 for k, v in state["model"].items()}
    save_checkpoint(kept, state)
    train(child, tmp_path / "child", echo=quiet)
    why = [e["why"] for e in events_of(tmp_path / "child") if e["event"] == "ckpt_discarded"]
    assert why == ["config or data changed"]
    last = tiny_trial(unit_manifest, init_from=str(tmp_path / "parent" / "ckpt" / "last.pt"))
    assert train(last, tmp_path / "from_last", echo=quiet)["init_from"]["step"] == 12


def test_warm_start_shapes(unit_manifest: Path, tmp_path: Path) -> None:
    """A GPT-2 with a shorter context keeps the first positions (nanoGPT's crop); other
    shape differences and a missing file are one line each, before any step."""
    gpt = {"arch": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "block_size": 32}
    train(tiny_trial(unit_manifest, model=gpt, max_steps=4), tmp_path / "p", echo=quiet)
    parent = load_checkpoint(tmp_path / "p" / "model.pt")["model"]
    short = tiny_trial(unit_manifest, model={**gpt, "block_size": 16}, seq_len=16, max_steps=2,
                       init_from=str(tmp_path / "p" / "model.pt"))  # fmt: skip
    train(short, tmp_path / "short", echo=quiet)
    first = [e for e in curves(tmp_path / "short") if e["kind"] == "eval"][0]
    assert first["step"] == 0
    wide = tiny_trial(unit_manifest, model={**gpt, "n_embd": 32}, max_steps=2,
                      init_from=str(tmp_path / "p" / "model.pt"))  # fmt: skip
    with pytest.raises(SeqlabError, match=r"model\.pt does not fit this model: .* is \(.*\) "
                                          r"there, \(.*\) here; use the same arch"):  # fmt: skip
        train(wide, tmp_path / "wide", echo=quiet)
    gone = tiny_trial(unit_manifest, init_from=str(tmp_path / "nope.pt"))
    with pytest.raises(SeqlabError, match=r"train\.init_from: .*nope\.pt not found; train"):
        train(gone, tmp_path / "gone", echo=quiet)
    assert not (tmp_path / "wide" / "metrics.json").exists()
    assert parent["transformer.wpe.weight"].shape[0] == 32


class SpikyTask(UnitLMTask):
    """Unit LM whose loss is 50x at one batch: a data-borne spike that every replay meets."""

    SPIKE_INDEX = 7

    def train_batch(self, index: int):
        self._index = index
        return super().train_batch(index)

    def loss(self, model, batch):
        loss = super().loss(model, batch)
        return loss * 50 if self._index == self.SPIKE_INDEX else loss


def test_spike_rolls_back_a_bounded_number_of_times(
    unit_manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TASKS, "spiky", "test_train:SpikyTask")
    trial = tiny_trial(unit_manifest, ckpt_interval=2, guard={"spike_factor": 3.0,
                       "spike_window": 4, "max_rollbacks": 2, "lr_cut": 0.5})  # fmt: skip
    trial["task"] = "spiky"
    m = train(trial, tmp_path, echo=quiet)
    events = [e for e in map(json.loads, open(tmp_path / "log.jsonl")) if e["kind"] == "event"]
    rollbacks = [e for e in events if e["event"] == "rollback"]
    assert len(rollbacks) == 2 == m["n_rollbacks"]
    assert all(e["from_step"] == 8 and e["to_step"] == 6 for e in rollbacks)
    assert [e["event"] for e in events].count("spike") == 1  # then it is only logged
    assert m["n_lr_cuts"] == 2 and m["stop_reason"] == "max_steps" and m["steps"] == 12


def test_zero_interval_is_one_clear_error_when_the_config_loads(unit_manifest: Path) -> None:
    """Values are checked once, at load (seqlab.config_load), before any trial starts."""
    with pytest.raises(SeqlabError, match=r"train\.eval_interval: must be >= 1 \(got 0\)"):
        parse(TrainConfig, tiny_trial(unit_manifest, eval_interval=0)["train"], "train")


def test_log_is_on_disk_while_the_trial_runs_and_resume_continues_it(
    unit_manifest: Path, tmp_path: Path
) -> None:
    """log.jsonl grows while a real process trains; after a kill the rerun continues the same
    file: every train record once, in order, no gap, each with its unix time."""
    trial = tiny_trial(unit_manifest, max_steps=400, ckpt_interval=7, eval_interval=50)
    (tmp_path / "config.json").write_text(json.dumps(trial))
    proc = _run_script(tmp_path / "config.json")
    log, seen_running = tmp_path / "log.jsonl", []
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        records = read_log(tmp_path)
        if sum(e["kind"] == "train" for e in records) >= 20:
            seen_running = records
            break
        time.sleep(0.05)
    assert proc.poll() is None and seen_running, "no curve on disk while the trial ran"
    tb = EventAccumulator(str(tmp_path))
    tb.Reload()  # TensorBoard's own reader sees the curve too, flushed at each log interval
    assert len(tb.Scalars("train/loss")) >= 10 and proc.poll() is None
    assert not (tmp_path / "metrics.json").exists()
    assert seen_running[0]["kind"] == "eval" and seen_running[0]["step"] == 0
    assert all(abs(e["time"] - time.time()) < 120 for e in seen_running)
    proc.kill()
    proc.wait(timeout=30)
    killed_at = max(e["step"] for e in read_log(tmp_path))
    rerun = _run_script(tmp_path / "config.json")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    records = [json.loads(x) for x in log.read_text().splitlines()]
    assert [e["step"] for e in records if e["kind"] == "train"] == list(range(2, 401, 2))
    assert [e["step"] for e in records if e["kind"] == "eval"] == sorted(
        {0, 4, 10, *range(50, 401, 50)}
    )
    resumed = [e for e in records if e.get("event") == "resume"]
    # the kill can land after a checkpoint at an odd step, before that step's log record
    # (log_interval 2): the resumed step is at most the one after the last logged
    assert len(resumed) == 1 and resumed[0]["from_step"] <= killed_at + 1
    assert "step 400/400 | loss" in out and "| eta " in out
