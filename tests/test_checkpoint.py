"""Checkpoints that recover by themselves, and writes that fail with one clear line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import PYTHON, ROOT, curves, tiny_trial
from test_pipeline import snakemake

from seqlab.config import TrainConfig, from_dict
from seqlab.errors import SeqlabError
from seqlab.files import atomic_write, write_json
from seqlab.train.checkpoint import CorruptCheckpoint, load_checkpoint, save_checkpoint
from seqlab.train.logbook import read_log
from seqlab.train.loop import Preempted, train
from seqlab.train.tasks import UnitLMTask

SCRIPT = str(ROOT / "workflow" / "scripts" / "train.py")
root_only = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root"
)


def quiet(_line: str) -> None:
    pass


def stop_at(n: int):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= n

    return should_stop


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_integrity_is_checked_on_load(tmp_path: Path) -> None:
    state = {"w": torch.arange(1000.0), "step": 3}
    save_checkpoint(tmp_path / "a.pt", state)
    assert torch.equal(load_checkpoint(tmp_path / "a.pt")["w"], state["w"])
    size = (tmp_path / "a.pt").stat().st_size
    flip_byte(tmp_path / "a.pt", size // 2)  # inside the payload: the zip still opens
    with pytest.raises(CorruptCheckpoint, match=r"a\.pt: corrupt checkpoint"):
        load_checkpoint(tmp_path / "a.pt")
    save_checkpoint(tmp_path / "b.pt", state)
    (tmp_path / "b.pt").write_bytes((tmp_path / "b.pt").read_bytes()[: size // 3])  # torn
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(tmp_path / "b.pt")
    torch.save(state, tmp_path / "old.pt")  # written before integrity records: still loads
    assert load_checkpoint(tmp_path / "old.pt")["step"] == 3


def test_outputs_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        save_checkpoint(tmp_path / "c.pt", {"a": torch.zeros(2)})
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644


def test_corrupt_last_falls_back_to_the_previous_and_ends_bitwise(
    unit_manifest: Path, tmp_path: Path
) -> None:
    trial = tiny_trial(unit_manifest, ckpt_interval=2)
    train(trial, tmp_path / "full", echo=quiet)
    cut = tmp_path / "cut"
    with pytest.raises(Preempted):
        train(trial, cut, should_stop=stop_at(7), echo=quiet)
    (cut / "ckpt" / ".last.pt.dead.tmp").write_bytes(b"half a checkpoint")  # a killed write
    (cut / ".metrics.json.dead.tmp").write_text("{")
    assert load_checkpoint(cut / "ckpt" / "prev.pt")["trainer"]["step"] == 6
    flip_byte(cut / "ckpt" / "last.pt", 2000)
    train(trial, cut, echo=quiet)
    events = [e for e in read_log(cut) if e["kind"] == "event"]
    corrupt = [e for e in events if e["event"] == "ckpt_corrupt"]
    assert len(corrupt) == 1 and corrupt[0]["then"] == "resume" and "last.pt" in corrupt[0]["path"]
    assert [e["from_step"] for e in events if e["event"] == "resume"] == [6]
    assert curves(tmp_path / "full") == curves(cut)
    assert not list(cut.rglob("*.tmp"))


def test_all_checkpoints_corrupt_restarts_the_trial(unit_manifest: Path, tmp_path: Path) -> None:
    trial = tiny_trial(unit_manifest, ckpt_interval=2)
    with pytest.raises(Preempted):
        train(trial, tmp_path, should_stop=stop_at(5), echo=quiet)
    for name in ("last.pt", "prev.pt"):
        flip_byte(tmp_path / "ckpt" / name, 1500)
    m = train(trial, tmp_path, echo=quiet)
    events = [e for e in read_log(tmp_path) if e["kind"] == "event"]
    assert [e["then"] for e in events if e["event"] == "ckpt_corrupt"] == ["restart"] * 2
    assert "resume" not in [e["event"] for e in events] and m["steps"] == 12


def test_corrupt_best_never_labels_other_weights(unit_manifest: Path, tmp_path: Path) -> None:
    """model.pt's weights score what model.pt says they score, at the step it says."""
    trial = tiny_trial(unit_manifest, max_steps=16)
    with pytest.raises(Preempted):
        train(trial, tmp_path, should_stop=stop_at(9), echo=quiet)
    flip_byte(tmp_path / "ckpt" / "best.pt", 3000)
    m = train(trial, tmp_path, echo=quiet)
    assert "best_lost" in [e.get("event") for e in read_log(tmp_path)]
    ck = load_checkpoint(tmp_path / "model.pt")
    assert ck["step"] == m["best_step"] and ck["eval"]["eval_loss"] == m["best"]
    cfg = from_dict(TrainConfig, trial["train"])
    task = UnitLMTask(trial["data"], cfg, 0, torch.device("cpu"))
    from seqlab.models import build_model

    model = build_model(cfg.model, task.vocab_size)
    model.load_state_dict(ck["model"])
    model.eval()
    assert task.evaluate(model)["eval_loss"] == m["best"]


def test_unwritable_checkpoint_dir_is_one_line(unit_manifest: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(tiny_trial(unit_manifest)))
    (tmp_path / "ckpt").write_text("not a directory")
    proc = subprocess.run([PYTHON, SCRIPT, str(tmp_path / "config.json")], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "ckpt" in err[0] and "cannot write" in err[0], proc.stderr


def _mount_tmpfs(path: Path, size: str = "2m") -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def _fill(path: Path) -> Path:
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


@root_only
def test_full_disk_is_one_line_then_resumes(unit_manifest: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    _mount_tmpfs(disk)
    try:
        with pytest.raises(SeqlabError, match=r"no space left on device"):
            atomic_write(disk / "x.pt", lambda tmp: torch.save(torch.zeros(10**6), tmp))
        assert not list(disk.glob(".*.tmp"))
        trial = tiny_trial(unit_manifest)
        (disk / "config.json").write_text(json.dumps(trial))
        with pytest.raises(Preempted):
            train(trial, disk, should_stop=stop_at(6), echo=quiet)
        before = (disk / "ckpt" / "last.pt").read_bytes()
        filler = _fill(disk)
        proc = subprocess.run([PYTHON, SCRIPT, str(disk / "config.json")], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 1, proc.stdout + proc.stderr
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and "no space left on device" in err[0] and str(disk) in err[0]
        assert (disk / "ckpt" / "last.pt").read_bytes() == before  # the last good one intact
        filler.unlink()
        m = train(trial, disk, echo=quiet)
        assert m["steps"] == 12 and "resume" in [e.get("event") for e in read_log(disk)]
        train(trial, tmp_path / "full", echo=quiet)
        assert curves(disk) == curves(tmp_path / "full")
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@root_only
def test_read_only_results_is_one_line_then_resumes(unit_manifest: Path, tmp_path: Path) -> None:
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, "8m")
    try:
        trial = tiny_trial(unit_manifest)
        (disk / "config.json").write_text(json.dumps(trial))
        with pytest.raises(Preempted):
            train(trial, disk, should_stop=stop_at(6), echo=quiet)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        proc = subprocess.run([PYTHON, SCRIPT, str(disk / "config.json")], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(err) == 1, proc.stderr
        assert "Read-only file system" in err[0] and str(disk) in err[0]
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert train(trial, disk, echo=quiet)["steps"] == 12
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_checkpoint_files_are_plain_state_dicts(unit_manifest: Path, tmp_path: Path) -> None:
    """model.pt and ckpt/*.pt open with plain torch.load: the state at the top level, not an
    envelope; the integrity record beside it still refuses a flipped byte in the weights."""
    m = train(tiny_trial(unit_manifest, keep_steps=[4]), tmp_path, echo=quiet)
    published = torch.load(tmp_path / "model.pt", weights_only=True)
    assert published["step"] == m["best_step"] and published["model_config"]["arch"] == "lstm"
    assert all(torch.is_tensor(v) for v in published["model"].values())
    last = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert last["trainer"]["step"] == m["steps"] and "optim" in last and "model" in last
    for name in ("best.pt", "step4.pt"):
        assert torch.is_tensor(next(iter(torch.load(tmp_path / "ckpt" / name)["model"].values())))
    # a flipped byte inside the largest tensor: torch still loads it, seqlab's loader refuses
    weights = published["model"]
    big = max(weights, key=lambda k: weights[k].numel())
    raw = (tmp_path / "model.pt").read_bytes()
    at = raw.index(weights[big].reshape(-1).view(torch.uint8).numpy().tobytes()[:64]) + 100
    flip_byte(tmp_path / "model.pt", at)
    assert not torch.equal(torch.load(tmp_path / "model.pt")["model"][big], weights[big])
    with pytest.raises(CorruptCheckpoint) as err:
        load_checkpoint(tmp_path / "model.pt")
    assert "model.pt: corrupt checkpoint" in str(err.value) and "\n" not in str(err.value)


def test_envelope_checkpoints_of_earlier_versions_still_load(tmp_path: Path) -> None:
    import hashlib
    import io

    state = {"model": {"w": torch.arange(6.0)}, "step": 5}
    buf = io.BytesIO()
    torch.save(state, buf)
    view = buf.getbuffer()
    envelope = {
        "format": "seqlab-checkpoint-1",
        "size": len(view),
        "sha256": hashlib.sha256(view).hexdigest(),
        "payload": torch.frombuffer(view, dtype=torch.uint8),
    }
    torch.save(envelope, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["step"] == 5
    envelope["sha256"] = "0" * 64
    torch.save(envelope, tmp_path / "bad.pt")
    with pytest.raises(CorruptCheckpoint, match="sha256"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_lost_best_pt_is_restored_from_model_pt(tmp_path: Path) -> None:
    """A finished trial whose best step (9) is before its last (12): truncating ckpt/best.pt
    and deleting metrics.json must not cost the best weights (model.pt is their verified
    copy); only when both are gone are the final weights published, under their own step,
    said on the console and in metrics.json."""
    import yaml
    from conftest import TINY_DATASET, TINY_TRAIN

    train_cfg = dict(TINY_TRAIN, max_steps=12, min_delta=0.05)  # best at 9 on this data
    cfg = {
        "datasets": {"tiny": TINY_DATASET},
        "experiments": {"x": {"dataset": "tiny", "seeds": [0], "train": train_cfg}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    trial = tmp_path / "results/x/runs/base/seed0"
    target = str(trial.relative_to(tmp_path) / "metrics.json")
    snakemake(tmp_path, target)
    before = json.loads((trial / "metrics.json").read_text())
    weights = load_checkpoint(trial / "model.pt")["model"]
    assert 0 < before["best_step"] < before["steps"], before["best_step"]

    best = trial / "ckpt" / "best.pt"
    best.write_bytes(best.read_bytes()[:100])
    (trial / "metrics.json").unlink()
    snakemake(tmp_path, target)
    after = json.loads((trial / "metrics.json").read_text())
    assert after["best_step"] == before["best_step"] and after["best"] == before["best"]
    assert after["best_lost"] is None
    restored = load_checkpoint(trial / "model.pt")["model"]
    assert all(torch.equal(restored[k], weights[k]) for k in weights)
    events = [e["event"] for e in read_log(trial) if e["kind"] == "event"]
    assert "best_restored" in events and "best_lost" not in events

    for gone in (best, trial / "model.pt", trial / "metrics.json"):
        gone.unlink()
    proc = snakemake(tmp_path, target)
    lost = json.loads((trial / "metrics.json").read_text())
    assert lost["best_step"] == lost["steps"] == 12  # the final weights, under their own step
    assert lost["best_lost"]["best_step"] == before["best_step"]
    assert load_checkpoint(trial / "model.pt")["step"] == 12
    assert "WARNING" in proc.stderr and "best weights (step 9) were lost" in proc.stderr
