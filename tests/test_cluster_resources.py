"""What cluster jobs ask for, read from real Snakemake dry runs (no Slurm needed): evaluation
jobs sized for scoring (`eval_resources`), and packed training (`pack`) as one GPU per group."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PYTHON, ROOT

# The cluster LSTM of config/examples/spidr_lm.yaml: 3 GPUs (DDP), 64 GB, 12 h per trial.
CLUSTER = {"gpu": 3, "cpus_per_task": 8, "mem_mb": 64000, "runtime": 720}
TRAIN = yaml.safe_load((ROOT / "config/config.yaml").read_text())["experiments"]["lstm"]["train"]


def dry_run(
    tmp_path: Path, lstm: dict, *args: str, flag: str = "--profile"
) -> subprocess.CompletedProcess:
    """`snakemake --profile profiles/slurm -n` (or `flag`) on the default lstm with changes."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    exp = {**cfg["experiments"]["lstm"], "seeds": [0], **lstm}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"datasets": cfg["datasets"], "experiments": {"lstm": exp}}))
    cmd = [PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
           "--configfile", str(path), flag, str(ROOT / "profiles/slurm"), "-n",
           *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def job_blocks(out: str) -> list[list[tuple[str, list[str]]]]:
    """Every job a dry run prints (rule, files, threads, resources): each line's items sorted
    (Snakemake lists a set's items, such as the reason's files, in no fixed order)."""
    blocks = re.findall(r"\n\s*(rule \w+:\n.*?)(?:\n\s*\n|\n\s*\[|\Z)", out, re.S)
    return sorted(
        [(key.strip(), sorted(re.split(r"[:;,] ", value.strip()))) for key, _, value in
         (line.partition(":") for line in block.splitlines())]
        for block in blocks
    )  # fmt: skip


def job_resources(out: str, rule: str) -> list[dict[str, str]]:
    """The `resources:` line of every job of `rule` that a dry run prints."""
    blocks = re.findall(rf"\n\s*rule {rule}:\n(.*?)(?:\n\s*\n|\n\s*\[|\Z)", out, re.S)
    found = []
    for block in blocks:
        line = next(x for x in block.splitlines() if x.strip().startswith("resources:"))
        found.append(dict(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", ")))
    return found


def test_profile_and_workflow_profile_plan_the_same_jobs(tmp_path: Path) -> None:
    """Under `--profile profiles/slurm` Snakemake also reads the workflow profile
    (profiles/default), whose keys win; `--workflow-profile profiles/slurm` replaces it. Both
    plan the same jobs with the same threads and resources: nothing meant for local runs
    reaches a cluster run (a `cores: 2` there capped this 3-thread trial at 2 threads)."""
    lstm = {"seeds": [0, 1], "pack": 2, "train": {**TRAIN, "threads": 3}}
    plans = []
    for flag in ("--profile", "--workflow-profile"):
        work = tmp_path / flag.strip("-")
        work.mkdir()
        proc = dry_run(work, lstm, flag=flag)
        assert proc.returncode == 0, proc.stderr[-3000:]
        plans.append(job_blocks(proc.stdout + proc.stderr))
    assert any(block[0][0] == "rule train" for block in plans[0]), plans[0]
    assert plans[0] == plans[1]


def test_eval_jobs_ask_for_scoring_not_training(tmp_path: Path) -> None:
    proc = dry_run(tmp_path, {"resources": CLUSTER})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    (train,) = job_resources(out, "train")
    assert (train["gpu"], train["mem_mb"], train["runtime"]) == ("3", "64000", "720"), train
    (swuggy,) = job_resources(out, "swuggy")
    assert swuggy["gpu"] == "1" and swuggy["runtime"] == "30", swuggy  # one device, short
    assert swuggy["mem_mb"] == "4000" and swuggy["cpus_per_task"] == "1", swuggy


def test_eval_resources_key_is_used(tmp_path: Path) -> None:
    own = {"gpu": 0, "cpus_per_task": 2, "mem_mb": 3000, "runtime": 5}
    proc = dry_run(tmp_path, {"resources": CLUSTER, "eval_resources": own})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (swuggy,) = job_resources(proc.stdout + proc.stderr, "swuggy")
    assert {k: swuggy[k] for k in own} == {k: str(v) for k, v in own.items()}, swuggy


def test_partial_eval_resources_keep_the_scoring_defaults(tmp_path: Path) -> None:
    proc = dry_run(tmp_path, {"resources": CLUSTER, "eval_resources": {"mem_mb": 9000}})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (swuggy,) = job_resources(proc.stdout + proc.stderr, "swuggy")
    assert (swuggy["mem_mb"], swuggy["gpu"], swuggy["runtime"]) == ("9000", "1", "30"), swuggy


def test_eval_resources_typo_is_one_clear_line(tmp_path: Path) -> None:
    proc = dry_run(tmp_path, {"eval_resources": {"gpus": 1}})
    assert proc.returncode != 0
    assert "experiments.lstm.eval_resources.gpus: unknown key" in proc.stdout + proc.stderr, (
        proc.stdout
    )


@pytest.mark.parametrize("pack", [1, 4])
def test_packed_training_asks_for_one_gpu_per_group(tmp_path: Path, pack: int) -> None:
    """Packed trials ask for the GPU as a string gres (`gpu:1`): Snakemake keeps a string
    resource that is equal in every job of a group as it is, while it would sum `gpu: 1`
    over the group's parallel jobs (K trials -> K GPUs)."""
    proc = dry_run(tmp_path, {"resources": dict(CLUSTER, gpu=1), "pack": pack,
                              "seeds": [0, 1, 2, 3]})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    trains = job_resources(out, "train")
    assert len(trains) == 4
    assert out.count("Group job pack-lstm ") == (pack > 1), out[-3000:]  # 4 trials, 1 group
    want = ("1", "") if pack == 1 else ("0", "gpu:1")
    assert {(t["gpu"], t.get("gres", "")) for t in trains} == {want}, trains


def test_pack_with_ddp_trials_is_refused(tmp_path: Path) -> None:
    proc = dry_run(tmp_path, {"resources": CLUSTER, "pack": 2})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "experiments.lstm.pack: 2 packs trials onto one GPU" in out and "Traceback" not in out, (
        proc.stdout
    )
