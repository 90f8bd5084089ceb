"""Real `snakemake` processes on a tiny config: the DAG, its targets and incremental reruns."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PYTHON, ROOT, TINY_DATASET, TINY_TRAIN


def tiny_config() -> dict:
    gpt = dict(TINY_TRAIN, model={"arch": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2,
                                  "block_size": 32})  # fmt: skip
    return {
        "datasets": {"tiny": TINY_DATASET},
        "experiments": {
            "a": {
                "dataset": "tiny",
                "seeds": [0, 1],
                "train": TINY_TRAIN,
                "plateau": {"milestone": 3},
            },  # fmt: skip
            "b": {
                "dataset": "tiny",
                "seeds": [0],
                "train": gpt,
                "grid": {"optim.lr": [0.01, 0.003]},
                "plateau": {"milestone": 3},
            },  # fmt: skip
        },
        "compare": {"a_vs_b": {"kind": "experiments", "experiments": ["a", "b"]}},
    }


def snakemake(work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", "2", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_config(work: Path, cfg: dict) -> None:
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def mtimes(work: Path) -> dict[str, int]:
    return {
        str(p.relative_to(work)): p.stat().st_mtime_ns
        for p in (work / "results").glob("*/runs/*/seed*/metrics.json")
    }


def nothing_to_do(work: Path) -> bool:
    out = snakemake(work, "-n", "all")
    return "Nothing to be done" in out.stdout + out.stderr


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full run of the tiny config (shared by the tests below, which run in order)."""
    work = tmp_path_factory.mktemp("pipeline")
    write_config(work, tiny_config())
    snakemake(work, "all")
    return work


def test_full_run_outputs(work: Path) -> None:
    res = work / "results"
    final = json.loads((res / "a" / "final.json").read_text())
    assert set(final["runs"]) == {"base"} and final["runs"]["base"]["n_seeds"] == 2
    checks = json.loads((res / "data" / "tiny" / "checks.json").read_text())
    assert final["plateau"]["baseline_nats"] == pytest.approx(checks["unigram_entropy_nats"])
    final_b = json.loads((res / "b" / "final.json").read_text())
    assert set(final_b["runs"]) == {"optim.lr~0.01", "optim.lr~0.003"}
    assert (res / "a" / "runs" / "base" / "seed1" / "model.pt").exists()
    assert (res / "b" / "summary.csv").read_text().count("\n") == 3  # header + 2 trials
    assert (res / "compare" / "a_vs_b.csv").exists()
    html = (res / "report.html").read_text()
    assert 'id="exp-a"' in html and 'id="exp-b"' in html and "<svg" in html
    trial = json.loads((res / "a" / "runs" / "base" / "seed0" / "config.json").read_text())
    assert trial["train"]["optim"]["lr"] == 0.01 and trial["seed"] == 0


def test_second_run_has_nothing_to_do(work: Path) -> None:
    assert nothing_to_do(work)


def _rerun_with(work: Path, cfg: dict) -> tuple[set[str], set[str]]:
    """Write cfg, run `all`; return (trials retrained, trials added) by metrics.json."""
    before = mtimes(work)
    write_config(work, cfg)
    snakemake(work, "all")
    after = mtimes(work)
    return {k for k in before if k in after and after[k] != before[k]}, set(after) - set(before)


def test_changing_one_experiment_retrains_only_its_trials(work: Path) -> None:
    cfg = tiny_config()
    cfg["experiments"]["a"]["train"] = dict(TINY_TRAIN, optim={**TINY_TRAIN["optim"], "lr": 0.02})
    final_b = (work / "results/b/final.json").stat().st_mtime_ns
    metrics = work / "results/a/runs/base/seed0/metrics.json"
    loss_before = json.loads(metrics.read_text())["final_train_loss"]
    changed, added = _rerun_with(work, cfg)
    # really retrained under the new lr, not resumed from the old checkpoint
    assert json.loads(metrics.read_text())["final_train_loss"] != loss_before
    assert changed == {f"results/a/runs/base/seed{s}/metrics.json" for s in (0, 1)} and not added
    trial = json.loads((work / "results/a/runs/base/seed0/config.json").read_text())
    assert trial["train"]["optim"]["lr"] == 0.02
    assert (work / "results/b/final.json").stat().st_mtime_ns == final_b
    assert nothing_to_do(work)
    CURRENT.update(cfg)


CURRENT: dict = {}  # the config in force after the previous test (tests run in file order)


def test_adding_a_seed_trains_only_the_new_trial(work: Path) -> None:
    cfg = json.loads(json.dumps(CURRENT))
    cfg["experiments"]["a"]["seeds"] = [0, 1, 2]
    changed, added = _rerun_with(work, cfg)
    assert not changed and added == {"results/a/runs/base/seed2/metrics.json"}
    final = json.loads((work / "results/a/final.json").read_text())
    assert final["runs"]["base"]["n_seeds"] == 3  # the summary was redone
    CURRENT.update(cfg)


def test_changing_one_grid_value_trains_only_that_run(work: Path) -> None:
    cfg = json.loads(json.dumps(CURRENT))
    cfg["experiments"]["b"]["grid"] = {"optim.lr": [0.01, 0.002]}
    changed, added = _rerun_with(work, cfg)
    assert not changed and added == {"results/b/runs/optim.lr~0.002/seed0/metrics.json"}
    final = json.loads((work / "results/b/final.json").read_text())
    assert set(final["runs"]) == {"optim.lr~0.01", "optim.lr~0.002"}
    assert "optim.lr~0.002" in (work / "results/b/ledger.md").read_text()
    CURRENT.update(cfg)


def test_deleting_one_metrics_redoes_only_that_trial(work: Path) -> None:
    victim = work / "results/a/runs/base/seed1/metrics.json"
    before = mtimes(work)
    final = (work / "results/a/final.json").stat().st_mtime_ns
    victim.unlink()
    snakemake(work, "all")
    after = mtimes(work)
    assert {k for k in before if after[k] != before[k]} == {str(victim.relative_to(work))}
    assert (work / "results/a/final.json").stat().st_mtime_ns != final  # summaries redone
    assert nothing_to_do(work)


@pytest.mark.parametrize("name", ["model.pt", "log.jsonl"])
def test_deleting_any_trial_product_redoes_that_trial(work: Path, name: str) -> None:
    """Every declared output of a trial is wanted by `all` and by its summary: a deleted one is
    rebuilt by rerunning the trial, which resumes from ckpt/ at its last step and re-exports
    (the log's records from its copy in ckpt/, since Snakemake removes a job's outputs before
    rerunning it), so nothing is retrained and the curve stays whole."""
    victim = work / f"results/a/runs/base/seed0/{name}"
    metrics = json.loads((victim.parent / "metrics.json").read_text())
    victim.unlink()
    out = snakemake(work, "all")
    ran = out.stdout + out.stderr
    assert "rule train:" in ran and f"Missing output files: {victim.relative_to(work)}" in ran
    assert victim.exists() and victim.stat().st_size > 0
    assert (
        json.loads((victim.parent / "metrics.json").read_text())["final_train_loss"]
        == (metrics["final_train_loss"])
    )
    log = [json.loads(line) for line in (victim.parent / "log.jsonl").read_text().splitlines()]
    assert "resume" in [e.get("event") for e in log]  # re-exported from ckpt/, not retrained
    steps = [e["step"] for e in log if e["kind"] == "train"]  # the whole curve, once each
    assert steps == sorted(set(steps)) and steps[-1] == metrics["steps"]
    assert [e["step"] for e in log if e["kind"] == "eval"][0] == 0
    assert nothing_to_do(work)


def test_target_for_one_trial_runs_only_it_and_its_inputs(tmp_path: Path) -> None:
    write_config(tmp_path, tiny_config())
    out = snakemake(tmp_path, "results/b/runs/optim.lr~0.003/seed0/metrics.json")
    res = tmp_path / "results"
    assert (res / "b/runs/optim.lr~0.003/seed0/model.pt").exists()
    assert sorted(str(p.relative_to(res)) for p in res.glob("*/runs/*/seed*")) == [
        "b/runs/optim.lr~0.003/seed0"
    ]
    assert not (res / "b/final.json").exists() and not (res / "report.html").exists()
    ran = {line.split()[1].rstrip(":") for line in out.stderr.splitlines() + out.stdout.splitlines()
           if line.startswith(("rule ", "localrule "))}  # fmt: skip
    assert ran == {"prepare_data", "check_data", "trial_config", "train"}


def test_a_warm_started_experiment_trains_its_parents_first(tmp_path: Path) -> None:
    """train.init_from names another trial's weights (`{seed}`: each seed its own parent),
    here a kept step, which no rule declares: the parent trial is the input, so one target
    trains the parents first, and metrics.json says which file, with its hash and step, the
    trial started from."""
    cfg = tiny_config()
    del cfg["experiments"]["b"], cfg["compare"]
    cfg["experiments"]["a"]["train"] = dict(TINY_TRAIN, keep_steps=[3])
    parent = "results/a/runs/base/seed{seed}/ckpt/step3.pt"  # no rule's output: a waits
    cfg["experiments"]["ft"] = {
        "dataset": "tiny", "seeds": [0, 1], "plateau": {"milestone": 3},
        "train": dict(TINY_TRAIN, init_from=parent, optim={"name": "adam", "lr": 0.003}),
    }  # fmt: skip
    write_config(tmp_path, cfg)
    snakemake(tmp_path, "results/ft/final.json")
    for seed in (0, 1):
        m = json.loads((tmp_path / f"results/ft/runs/base/seed{seed}/metrics.json").read_text())
        src = tmp_path / parent.format(seed=seed)
        assert m["init_from"]["path"] == parent.format(seed=seed)
        assert m["init_from"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert m["init_from"]["step"] == 3
    assert nothing_to_do_for(tmp_path, "results/ft/final.json")


def nothing_to_do_for(work: Path, target: str) -> bool:
    out = snakemake(work, "-n", target)
    return "Nothing to be done" in out.stdout + out.stderr


def test_bad_override_key_fails_before_any_job(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg["experiments"]["b"]["grid"] = {"optim.lrr": [0.1]}
    write_config(tmp_path, cfg)
    proc = snakemake(tmp_path, "-n", "all", check=False)
    assert proc.returncode == 1
    assert "experiments.b.grid.optim.lrr[0]: unknown key; did you mean 'lr'?" in proc.stderr
    assert not (tmp_path / "results").exists()
