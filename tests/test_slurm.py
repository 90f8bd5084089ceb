"""`--profile profiles/slurm` against a real Slurm (scripts/slurm-local.sh): the demo
experiment end to end, a preempted trial that resumes bitwise, the time-limit signal, a
failing job with its logs.

Skipped, with the reason, when no local Slurm is running (`make slurm-up` starts one; CI
does, and sets SEQLAB_REQUIRE_SLURM=1 so that they fail instead). The local Slurm is
self-contained: every Slurm command here reaches it through its own SLURM_CONF (under its
state directory), never a system /etc/slurm. Every Slurm call and every
snakemake run is bounded by a timeout, so a hung status poll fails the test instead of
hanging CI; jobs a test leaves behind are cancelled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import PYTHON, ROOT, TINY_DATASET, TINY_TRAIN
from test_train import assert_same_model, curves

pytestmark = pytest.mark.slurm

PROFILE = ROOT / "profiles" / "slurm"
SCRIPT = ROOT / "scripts" / "slurm-local.sh"
LOCAL_CONF = Path(os.environ.get("SEQLAB_SLURM_STATE", "/var/lib/seqlab-slurm")) / "etc/slurm.conf"
# Poll Slurm every few seconds instead of the profile's 20 s: the tests wait on many jobs.
FAST_POLL = ("--slurm-init-seconds-before-status-checks", "3")

DATASET, TINY = TINY_DATASET, TINY_TRAIN
# ~10 s of training on one core, a checkpoint every 20 steps: long enough to preempt.
LONG = dict(TINY, model=dict(TINY["model"], n_embd=128, hidden=128), max_steps=400,
            batch_size=16, seq_len=64, eval_interval=100, ckpt_interval=20,
            log_interval=20, milestones=[100])  # fmt: skip
_EARLIER_JOBS: set[str] = set()
GPU_JOB = {"gpu": 1, "cpus_per_task": 1, "mem_mb": 1000, "runtime": 10}


def slurm_cmd(*args: str, timeout: float = 20) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def local_slurm_reason() -> str | None:
    """Why the slurm tests cannot run here, or None when the local Slurm answers."""
    if shutil.which("sbatch") is None:
        return "no Slurm client installed (start a local Slurm: make slurm-up)"
    try:
        slurm_cmd("scontrol", "ping", timeout=10)
        parts = slurm_cmd("sinfo", "-h", "-o", "%R %T", timeout=10).split("\n")
    except (AssertionError, subprocess.TimeoutExpired) as e:
        return f"no local Slurm running (make slurm-up): {e}"
    have = {p.split()[0] for p in parts if p.strip() and p.split()[1] in ("idle", "mixed")}
    if not {"main", "urgent"} <= have:
        return f"Slurm partitions main+urgent of scripts/slurm-local.sh not idle: {parts}"
    return None


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One working directory for the module (the dataset is built once, by the first test);
    afterwards every job still queued from it is cancelled. SLURM_CONF defaults to the local
    Slurm's own (scripts/slurm-local.sh env) for every command of the module."""
    with pytest.MonkeyPatch.context() as mp:
        conf = Path(os.environ.get("SLURM_CONF", LOCAL_CONF))
        mp.setenv("SLURM_CONF", str(conf))
        # the srun shim of scripts/slurm-local.sh (the jobstep plugin drops SLURM_CONF)
        mp.setenv("PATH", f"{conf.parent.parent / 'bin'}:{os.environ['PATH']}")
        reason = local_slurm_reason()
        if reason and os.environ.get("SEQLAB_REQUIRE_SLURM"):
            pytest.fail(f"SEQLAB_REQUIRE_SLURM is set but {reason}")
        if reason:
            pytest.skip(reason)
        # jobs of earlier sessions that slurmctld still lists may share this path: ignore them
        _EARLIER_JOBS.update(slurm_cmd("squeue", "--states=all", "-h", "-o", "%i").split())
        work = tmp_path_factory.mktemp("slurm")
        yield work
        ids = [j["id"] for j in jobs_of(work) if j["state"] in ("PENDING", "RUNNING", "REQUEUED")]
        if ids:
            subprocess.run(["scancel", *ids], timeout=20, check=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("slurmd") is None,
                    reason="needs root and slurm-wlm (scripts/slurm-local.sh install)")  # fmt: skip
def test_local_slurm_runs_beside_a_system_slurm() -> None:
    """A second local Slurm (its own state directory, munged and ports) starts although a
    system /etc/slurm/slurm.conf exists (planted here when absent), runs a GPU job and stops,
    leaving the system file as it was. (It runs beside the module's local Slurm, if any.)"""
    system = Path("/etc/slurm/slurm.conf")
    planted = not system.exists()
    if planted:
        system.parent.mkdir(parents=True, exist_ok=True)
        system.write_text("# planted by tests/test_slurm.py\nClusterName=system\n")
    before = system.read_bytes()
    state = Path(tempfile.mkdtemp(prefix="seqlab-slurm-beside-", dir="/tmp"))
    state.chmod(0o755)  # munged runs as user munge and must reach its socket inside
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    env.update(SEQLAB_SLURM_STATE=str(state), SEQLAB_SLURM_PORT="7117", SEQLAB_SLURM_GPUS="1")
    try:
        up = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        conf = state / "etc/slurm.conf"
        assert f"export SLURM_CONF={conf}" in up.stdout, up.stdout
        env.update(SLURM_CONF=str(conf), PATH=f"{state / 'bin'}:{env['PATH']}")
        job = subprocess.run(["sbatch", "--wait", "--gpus=1", "-o", str(state / "job.out"),
                              # srun without SLURM_CONF, as the jobstep plugin runs it
                              "--wrap", "env -u SLURM_CONF srun sh -c 'echo gpu=$SLURM_JOB_GPUS'"],
                             env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        out = (state / "job.out").read_text() if (state / "job.out").exists() else ""
        assert job.returncode == 0, job.stderr + out
        assert out.strip() == "gpu=0", out
        assert system.read_bytes() == before
    finally:
        down = subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        if planted:
            system.unlink()
        shutil.rmtree(state, ignore_errors=True)
    assert down.returncode == 0 and "stopped slurmctld" in down.stdout, down.stdout + down.stderr


def write_config(work: Path, name: str, experiments: dict) -> Path:
    path = work / f"{name}.yaml"
    cfg = {"datasets": {"tiny": DATASET}, "experiments": experiments}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake_cmd(work: Path, config: Path, *args: str, flag: str = "--profile") -> list[str]:
    """The cluster command as users type it (`snakemake --profile profiles/slurm ...`);
    `flag="--workflow-profile"` for the other spelling, which must work as well."""
    where = ["-s", str(ROOT / "Snakefile"), "-d", str(work), "--configfile", str(config)]
    return [PYTHON, "-m", "snakemake", *where, flag, str(PROFILE), *FAST_POLL, *args]


def snakemake(work: Path, config: Path, *args: str, timeout: float = 240, flag: str = "--profile"):
    return subprocess.run(
        snakemake_cmd(work, config, *args, flag=flag),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def jobs_of(work: Path) -> list[dict[str, str]]:
    """This work directory's Slurm jobs that slurmctld still knows (MinJobAge), with their
    start and end times (ISO seconds; end is the time limit while a job runs)."""
    out = slurm_cmd("squeue", "--states=all", "-h", "-o", "%i|%T|%P|%k|%Z|%S|%e")
    keys = ("id", "state", "partition", "comment", "dir", "start", "end")
    jobs = [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines() if line]
    return [j for j in jobs if Path(j["dir"]) == work and j["id"] not in _EARLIER_JOBS]


def job_info(job_id: str) -> str:
    return slurm_cmd("scontrol", "show", "job", job_id)


def wait_until(what: str, cond, timeout: float, step: float = 0.5):
    end = time.time() + timeout
    while time.time() < end:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_demo_experiment_through_profile(work: Path) -> None:
    """`snakemake --profile profiles/slurm results/lstm/final.json`: the lstm experiment
    (tiny) to final.json; its 3 trials ran as one-GPU Slurm jobs, all 3 at once (the node
    has 8 CPUs and 3 GPUs: nothing of the local workflow profile caps a cluster run)."""
    exp = {"dataset": "tiny", "seeds": [0, 1, 2], "resources": GPU_JOB, "train": TINY,
           "plateau": {"milestone": 3}}  # fmt: skip
    cfg = write_config(work, "lstm", {"lstm": exp})
    proc = snakemake(work, cfg, "results/lstm/final.json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    final = json.loads((work / "results/lstm/final.json").read_text())
    assert final["runs"]["base"]["n_seeds"] == 3

    trains = [j for j in jobs_of(work) if j["comment"].startswith("rule_train_")]
    assert len(trains) == 3, jobs_of(work)
    # Slurm's own start and end times: the last trial started before the first one ended
    assert max(j["start"] for j in trains) < min(j["end"] for j in trains), trains
    for j in trains:
        info = job_info(j["id"])
        assert "JobState=COMPLETED" in info and j["partition"] == "main", info
        assert "gres:gpu:1" in info, info  # gpu: 1 became --gpus=1
        assert "MinMemoryNode=1000M" in info and "TimeLimit=00:10:00" in info, info
    # bookkeeping rules stayed local; data preparation and checks were (small) jobs
    comments = {j["comment"].split("_wildcards_")[0] for j in jobs_of(work)}
    assert comments == {"rule_train", "rule_prepare_data", "rule_check_data"}, comments
    # successful jobs' Slurm logs are removed, the rule logs stay
    assert not list((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert "done: max_steps" in (work / "results/lstm/runs/base/seed0/train.log").read_text()


class Trial:
    """One long trial started through the profile by a background snakemake."""

    def __init__(self, work: Path, exp: str) -> None:
        spec = {"dataset": "tiny", "seeds": [0], "resources": GPU_JOB, "train": LONG,
                "plateau": {"milestone": 3}}  # fmt: skip
        cfg = write_config(work, exp, {exp: spec})
        self.dir = work / f"results/{exp}/runs/base/seed0"
        self.log = work / f"{exp}.snakemake.log"
        target = str(self.dir.relative_to(work) / "metrics.json")
        with open(self.log, "w") as f:  # a file, not a pipe: a full pipe would block snakemake
            self.sm = subprocess.Popen(snakemake_cmd(work, cfg, target), stdout=f,
                                       stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.work = work

    def output(self) -> str:
        return self.log.read_text()[-4000:]

    def running_job(self) -> dict[str, str]:
        """Wait for the training job's first checkpoint; its Slurm job, RUNNING in `main`."""

        def first_checkpoint() -> bool:
            if self.sm.poll() is not None:
                raise AssertionError(f"snakemake ended early:\n{self.output()}")
            return (self.dir / "ckpt/last.pt").exists()

        wait_until("the trial's first checkpoint", first_checkpoint, 180, 0.1)
        exp = self.dir.parts[-4]
        job = next(j for j in jobs_of(self.work)
                   if j["comment"].startswith(f"rule_train_wildcards_{exp}_"))  # fmt: skip
        assert job["state"] == "RUNNING" and job["partition"] == "main", job
        return job

    def finish(self, timeout: float = 240) -> None:
        try:
            self.sm.wait(timeout=timeout)
        finally:
            if self.sm.poll() is None:
                self.sm.kill()
                self.sm.wait()
        assert self.sm.returncode == 0, self.output()

    def assert_resumed_like_uninterrupted(self, tmp_path: Path) -> None:
        """Resumed from a checkpoint, and bitwise equal to one uninterrupted run."""
        log = [json.loads(x) for x in (self.dir / "log.jsonl").read_text().splitlines()]
        resumed = [e for e in log if e.get("event") == "resume"]
        assert resumed and 0 < resumed[0]["from_step"] < LONG["max_steps"], resumed
        ref = tmp_path / "ref"
        ref.mkdir()
        shutil.copy(self.dir / "config.json", ref / "config.json")
        # (cwd: the config's data paths are relative to the work directory)
        proc = subprocess.run([PYTHON, str(ROOT / "workflow/scripts/train.py"),
                               str(ref / "config.json")], cwd=self.work, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert curves(self.dir) == curves(ref)
        assert_same_model(self.dir, ref)
        got, want = (json.loads((d / "metrics.json").read_text()) for d in (self.dir, ref))
        for key in ("best", "best_step", "steps", "eval_loss_at", "train_loss_at"):
            assert got[key] == want[key], key


def test_preempted_trial_is_requeued_and_resumes_bitwise(work: Path, tmp_path: Path) -> None:
    """A higher-priority job preempts a running trial; Slurm requeues the same job, which
    resumes from ckpt/last.pt and ends bitwise where an uninterrupted run ends."""
    trial = Trial(work, "preempt")
    try:
        job = trial.running_job()
        # a whole-node job in the higher-tier partition preempts it (PreemptMode=REQUEUE)
        urgent = slurm_cmd("sbatch", "--parsable", "-p", "urgent", "--exclusive",
                           "-o", "/dev/null", "--wrap", "sleep 1").strip()  # fmt: skip
        wait_until("the trial to be requeued",
                   lambda: "Restarts=1" in job_info(job["id"]), 60)  # fmt: skip
        assert not (trial.dir / "metrics.json").exists(), "the trial ended before preemption"
        # a requeued job waits ~2 min (BeginTime); let it start once the preemptor is done
        wait_until("the preemptor to finish",
                   lambda: "JobState=COMPLETED" in job_info(urgent), 60)  # fmt: skip
        slurm_cmd("scontrol", "update", f"jobid={job['id']}", "StartTime=now")
    finally:
        trial.finish()
    info = job_info(job["id"])
    assert "JobState=COMPLETED" in info and "Restarts=1" in info, info
    # one Slurm job did it all: Snakemake submitted no second one
    assert [j["id"] for j in jobs_of(work) if "_preempt_" in j["comment"]] == [job["id"]]
    trial.assert_resumed_like_uninterrupted(tmp_path)


def test_time_limit_signal_checkpoints_and_retry_resumes(work: Path, tmp_path: Path) -> None:
    """The time-limit warning (`--signal=URG@N`, sent to the job step) reaches the trainer
    through sbatch, the jobstep snakemake, srun and the rule's shell; it checkpoints and
    exits 75, and Snakemake's retry resumes the trial, bitwise."""
    trial = Trial(work, "timelimit")
    try:
        job = trial.running_job()
        info = job_info(job["id"])
        # what the profile asked for: the warning 60 s before the (10 min) limit
        assert "TimeLimit=00:10:00" in info, info
        slurm_cmd("scancel", "--signal=URG", job["id"])  # the signal Slurm sends at -60 s
        wait_until("the trial to stop", lambda: "JobState=FAILED" in job_info(job["id"]), 60)
        assert not (trial.dir / "metrics.json").exists(), "the trial ended before the signal"
    finally:
        trial.finish()
    ours = sorted((j for j in jobs_of(work) if "_timelimit_" in j["comment"]),
                  key=lambda j: int(j["id"]))  # fmt: skip
    assert [j["state"] for j in ours] == ["FAILED", "COMPLETED"], ours
    log = [json.loads(x) for x in (trial.dir / "log.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "preempted" for e in log), "no checkpoint on SIGURG"
    trial.assert_resumed_like_uninterrupted(tmp_path)


def test_failing_job_is_reported_with_its_logs(work: Path) -> None:
    """A trial that fails in Slurm fails the run, names the job, and keeps both logs."""
    # valid config, but the data is shorter than one sequence: only the job can know
    bad = dict(TINY, seq_len=1_000_000)
    cfg = write_config(work, "broken", {"broken": {"dataset": "tiny", "seeds": [0],
                       "resources": GPU_JOB, "train": bad}})  # fmt: skip
    # (through `--workflow-profile profiles/slurm`, the other spelling of the cluster command)
    proc = snakemake(
        work,
        cfg,
        "--retries",
        "0",
        "results/broken/runs/base/seed0/metrics.json",
        flag="--workflow-profile",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    job = next(j for j in jobs_of(work) if j["comment"].startswith("rule_train_wildcards_broken_"))
    assert job["state"] == "FAILED", job
    assert f"SLURM-job '{job['id']}' failed" in out, out[-4000:]

    rule_log = work / "results/broken/runs/base/seed0/train.log"
    assert "fewer than one sequence of seq_len 1000000" in rule_log.read_text()
    slurm_logs = list((work / ".snakemake/slurm_logs/rule_train").rglob(f"{job['id']}.log"))
    assert slurm_logs, "the failed job's Slurm log was removed"
    assert str(slurm_logs[0].relative_to(work)) in out or slurm_logs[0].name in out


# The default config's lstm_optim study (2 optimizers x 2 lr x 3 seeds = 12 trials, `pack: 4`)
# on the tiny corpus, shortened to 10 steps, in fp32 (packing is what is tested, and fp32 is
# the fastest LSTM on a CPU without AVX-512). Its `pack:` is the default config's own.
def lstm_optim_study(**changes) -> dict:
    spec = yaml.safe_load((ROOT / "config/config.yaml").read_text())["experiments"]["lstm_optim"]
    spec["train"].update(max_steps=10, eval_interval=5, log_interval=5, eval_batches=2,
                         precision="fp32")  # fmt: skip
    return dict(spec, dataset="tiny", resources=GPU_JOB, **changes)


@pytest.mark.slow
def test_packed_study_shares_one_gpu_per_job_and_matches_unpacked(work: Path) -> None:
    """`snakemake --profile profiles/slurm results/lstm_optim/final.json` on the default
    config's lstm_optim (`pack: 4`): its 12 trials run as 3 Slurm jobs, each asking for ONE
    GPU (not 4: the group's gres is not summed) and 4 x the trial's CPUs and memory, with its
    4 trials running side by side in the job; every trial keeps its own files and ends
    bitwise where the unpacked local run of the same study ends."""
    study = lstm_optim_study()
    assert study["pack"] == 4, "config/config.yaml's lstm_optim declares pack: 4"
    packed_cfg = write_config(work, "packed", {"lstm_optim": study})
    proc = snakemake(
        work,
        packed_cfg,
        "--slurm-keep-successful-logs",
        "results/lstm_optim/final.json",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    targets = [
        str(p.relative_to(work))
        for p in sorted(work.glob("results/lstm_optim/runs/*/seed*/metrics.json"))
    ]
    assert len(targets) == 12, targets

    ours = ("rule_pack-lstm_optim", "rule_train_wildcards_lstm_optim_")
    trains = [j for j in jobs_of(work) if j["comment"].startswith(ours)]
    assert len(trains) == 3, trains  # 12 trials, 3 submissions
    for j in trains:
        assert j["comment"].startswith(ours[0]), j  # a group job, not a single trial
        info = job_info(j["id"])
        assert "JobState=COMPLETED" in info, info
        assert "TresPerNode=gres:gpu:1" in info, info  # one GPU for four trials
        assert "NumCPUs=4" in info and "MinMemoryNode=4000M" in info, info
        assert "TimeLimit=00:10:00" in info, info  # side by side: one trial's runtime
        # inside the job Snakemake runs the group's trials side by side, as many as the CPUs
        # it sees (`--cores all`: the job's 4 on a cluster, this machine's 2 here)
        log = next((work / ".snakemake/slurm_logs").rglob(f"{j['id']}.log")).read_text()
        cores = int(re.search(r"Provided cores: (\d+)", log).group(1))
        assert cores >= 2 and f"Execute {min(4, cores)} jobs..." in log, log[-3000:]

    # the same study unpacked, locally: every trial bitwise equal
    ref = work / "unpacked"
    ref.mkdir()
    shutil.copytree(work / "results/data", ref / "results/data")
    ref_cfg = write_config(ref, "unpacked", {"lstm_optim": lstm_optim_study(pack=1)})
    local = subprocess.run([PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d",
                            str(ref), "--configfile", str(ref_cfg), "--cores", "2", *targets],
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert local.returncode == 0, local.stderr[-4000:]
    timing = {"ms_per_iter", "tokens_per_s", "wall_s", "peak_mem_mb"}
    for target in targets:
        a, b = (Path(d) / target for d in (work, ref))
        got, want = (json.loads(p.read_text()) for p in (a, b))
        assert {k: v for k, v in got.items() if k not in timing} == {
            k: v for k, v in want.items() if k not in timing}, target  # fmt: skip
        assert curves(a.parent) == curves(b.parent), target
        assert_same_model(a.parent, b.parent)
