"""`seqlab status`: trial states read from files, on planted trials and in a real snakemake run."""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import PYTHON, ROOT, TINY_DATASET, TINY_TRAIN

from seqlab.report.status import last_error, load_config, study_status

STATUS = [PYTHON, "-m", "seqlab.commands", "status"]
ENV = {**os.environ, "COLUMNS": "200"}


def write_config(work: Path, max_steps: int = 6, seeds: list[int] | None = None) -> Path:
    cfg = {
        "datasets": {"tiny": TINY_DATASET},
        "experiments": {
            "s": {
                "dataset": "tiny",
                "seeds": seeds or [0, 1],
                "grid": {"optim.lr": [0.01, 0.003]},
                "train": {**TINY_TRAIN, "max_steps": max_steps},
                "plateau": {"milestone": 3},
            },
        },
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def status(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [*STATUS, "--config", str(work / "config.yaml"), "--results", str(work / "results")]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=ENV, timeout=120)


def trial_dir(work: Path, lr: str, seed: int) -> Path:
    d = work / "results" / "s" / "runs" / f"optim.lr~{lr}" / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    return d


TRACEBACK = """step 2 | loss 4.1000 | tok/s 3k | lr 1.00e-02 | gnorm 0.83
Traceback (most recent call last):
  File "workflow/scripts/train.py", line 37, in main
    metrics = train(
RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB
"""


def plant(work: Path) -> None:
    """done, running (live log.jsonl), failed (traceback), pending."""
    done = trial_dir(work, "0.01", 0)
    metrics = {"steps": 6, "max_steps": 6, "stop_reason": "max_steps", "best_eval_loss": 4.1234,
               "best_step": 6, "select_metric": "eval_loss", "tokens_per_s": 3000.0}  # fmt: skip
    (done / "metrics.json").write_text(json.dumps(metrics))
    running = trial_dir(work, "0.01", 1)
    (running / "config.json").write_text(json.dumps({"train": {**TINY_TRAIN, "max_steps": 100}}))
    (running / "train.log").write_text("")
    now = time.time()
    recs = [{"kind": "train", "step": s, "loss": 5.0 - s / 100, "lr": 0.01, "gnorm": 1.0,
             "tok_s": 1280.0, "time": now - 40 + s} for s in (10, 20, 30, 40)]  # fmt: skip
    recs.insert(2, {"kind": "eval", "step": 20, "time": now - 20, "eval_loss": 4.9})
    lines = "".join(json.dumps(r) + "\n" for r in recs) + '{"kind": "tra'  # torn last line
    (running / "log.jsonl").write_text(lines)
    failed = trial_dir(work, "0.003", 0)
    (failed / "train.log").write_text(TRACEBACK)


def test_planted_states_and_exit_code(tmp_path: Path) -> None:
    write_config(tmp_path)
    plant(tmp_path)
    st = {(t.run, t.seed): t for t in study_status(load_config(tmp_path / "config.yaml"), ["s"],
                                                   tmp_path / "results")["s"]}  # fmt: skip
    assert {k: t.state for k, t in st.items()} == {
        ("optim.lr~0.01", 0): "done",
        ("optim.lr~0.01", 1): "running",
        ("optim.lr~0.003", 0): "failed",
        ("optim.lr~0.003", 1): "pending",
    }
    done, run, bad = st["optim.lr~0.01", 0], st["optim.lr~0.01", 1], st["optim.lr~0.003", 0]
    assert (done.loss, done.detail) == (4.1234, "max_steps; best eval_loss @ 6")
    assert (run.step, run.max_steps, run.loss) == (40, 100, 4.6)
    assert run.eta_s == pytest.approx(60.0)  # 1 step/s from the records' times, 60 steps left
    assert bad.detail == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    proc = status(tmp_path)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "s: 4 trials — 1 done, 1 running, 1 failed, 1 pending" in out
    assert "RuntimeError: CUDA out of memory" in out and "40/100" in out and "1m00s" in out


def test_stalled_is_not_failed_and_errors_are_one_line(tmp_path: Path) -> None:
    write_config(tmp_path)
    d = trial_dir(tmp_path, "0.01", 0)
    (d / "train.log").write_text("step 2 | loss 4.1000 | tok/s 3k | lr 1.00e-02\n")
    old = time.time() - 3 * 3600
    os.utime(d / "train.log", (old, old))
    proc = status(tmp_path, "s")
    assert (
        proc.returncode == 0 and "stalled?" in proc.stdout and "no write for 180 min" in proc.stdout
    )
    cfg = load_config(tmp_path / "config.yaml")
    (t,) = [t for t in study_status(cfg, ["s"], tmp_path / "results")["s"] if t.state != "pending"]
    assert (t.step, t.loss, t.tok_s) == (2, 4.1, 3000.0)  # the trainer's line, no log.jsonl
    bad = status(tmp_path, "nope")  # usage errors: exit 2, one line
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: no experiment nope")
    missing = subprocess.run(
        [*STATUS, "--config", str(tmp_path / "x.yaml")], capture_output=True, text=True, env=ENV
    )
    assert missing.returncode == 2 and "x.yaml: no such config" in missing.stderr
    (d / "train.log").write_text("error: config.json: train.max_steps must be > 0\n")
    assert last_error(d / "train.log") == "error: config.json: train.max_steps must be > 0"
    (d / "metrics.json").write_text('{"steps": 6, "best_ev')  # a torn copy: one row says so
    proc = status(tmp_path, "s")
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stderr
    assert "metrics.json: not valid JSON" in proc.stdout and "delete it and rerun" in proc.stdout


def test_console_script_is_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"seqlab": "seqlab.commands:main"}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = subprocess.run(
        [PYTHON, "-m", "seqlab.commands", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"seqlab {version}", proc


def test_status_finds_an_experiment_run_from_another_configfile(tmp_path: Path) -> None:
    """`snakemake --configfile my.yaml ...`, then `seqlab status s` without --config: the
    experiment is not in the default config (nor is there one), so its trials are read from
    their config.json files under results/, and show as done."""
    write_config(tmp_path, seeds=[0])
    where = ["-s", str(ROOT / "Snakefile"), "-d", str(tmp_path)]
    my = ["--configfile", str(tmp_path / "config.yaml")]
    cmd = [PYTHON, "-m", "snakemake", *where, *my, "--cores", "2", "results/s/final.json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = ["--results", str(tmp_path / "results")]

    def status_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*STATUS, *args, *results],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )

    for cwd in (ROOT, tmp_path):  # beside the default config (no `s` in it), and with none
        found = status_in(cwd, "s")
        assert found.returncode == 0, found.stderr
        assert "s: 2 trials — 2 done" in found.stdout, found.stdout
        assert found.stdout.count("max_steps; best eval_loss @ 6") == 2, found.stdout
    # with no experiment named, what ran is listed too (here the only one: no default config)
    every = status_in(tmp_path)
    assert every.returncode == 0 and "s: 2 trials — 2 done" in every.stdout, every


@pytest.mark.slow
def test_status_during_a_real_snakemake_run(tmp_path: Path) -> None:
    """Running with its step while snakemake trains (log.jsonl appended live), done after."""
    write_config(tmp_path, max_steps=400, seeds=[0])
    cmd = [
        PYTHON,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(tmp_path),
        "--configfile",
        str(tmp_path / "config.yaml"),
        "--cores",
        "1",
        "results/s/final.json",
    ]
    snake = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cfg = load_config(tmp_path / "config.yaml")
    running, stepping = [], []
    try:
        deadline = time.time() + 600
        while time.time() < deadline and snake.poll() is None and not stepping:
            trials = study_status(cfg, ["s"], tmp_path / "results")["s"]
            running += [t for t in trials if t.state == "running"]
            stepping += [t for t in running if t.step is not None]
            time.sleep(0.1)
        if stepping:  # the table a person sees at that moment
            seen = status(tmp_path, "s")
    finally:
        out, _ = snake.communicate(timeout=900)
    assert snake.returncode == 0, out[-3000:]
    assert running, "no trial was ever seen running"
    assert stepping, "a running trial never showed its step (is log.jsonl appended live?)"
    t = stepping[0]  # the live log.jsonl gives the step, loss and tokens/s while it runs
    assert t.max_steps == 400 and 0 < t.step <= 400 and t.loss > 0 and t.tok_s > 0
    assert seen.returncode == 0 and " running " in seen.stdout and "/400" in seen.stdout
    after = status(tmp_path, "s")
    assert after.returncode == 0, after.stdout
    assert "s: 2 trials — 2 done" in after.stdout
    assert after.stdout.count("max_steps; best eval_loss") == 2 and "400/400" in after.stdout


def test_watch_refreshes_until_every_trial_has_ended(tmp_path: Path) -> None:
    """--watch keeps refreshing while a trial is pending and returns once all have ended."""
    write_config(tmp_path)
    plant(tmp_path)
    metrics = (trial_dir(tmp_path, "0.01", 0) / "metrics.json").read_text()
    watch = subprocess.Popen([*STATUS, "--config", str(tmp_path / "config.yaml"), "--results",
                              str(tmp_path / "results"), "--watch", "--interval", "0.2"],
                             stdout=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    time.sleep(2.0)
    assert watch.poll() is None  # a trial is running and one pending: still watching
    for lr, seed in (("0.01", 1), ("0.003", 1)):
        (trial_dir(tmp_path, lr, seed) / "metrics.json").write_text(metrics)
    out, _ = watch.communicate(timeout=60)
    assert watch.returncode == 1  # the failed trial
    assert "3 done, 1 failed" in out
