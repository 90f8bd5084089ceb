"""Neural features for the CTC phoneme decoder: the baseline's pickle, a safe .npz layout and
its checks (the synthetic generator is seqlab.data.synthetic_neural).

neural_seq_decoder's pickle holds `train` / `test` / `competition` lists, one dict per recording
day: `sentenceDat` (T x 256 float arrays: 128 threshold-crossing + 128 spike-power channels,
20 ms bins), `phonemes` (ids 1..40 zero-padded to 500; 0 = CTC blank), `phoneLens`,
`transcriptions`. Unpickling runs arbitrary code, so it is read only for datasets the config
marks `trusted: true`, and converted once into the safe layout every later stage reads:

    results/data/{dataset}/{split}.features.npy   float32 (sum T, C), all trials' frames
        concatenated: the features store, np.load(mmap_mode="r") so a trial holds only the
        pages its batches touch (the baseline's ~10k sentences x 256 channels are ~5 GB)
    results/data/{dataset}/{split}.npz   (np.load(allow_pickle=False)), the small arrays:
        frame_lens int64 (N,)          frames per trial
        phonemes  int64 (sum L,)       labels 1..40, concatenated, no padding
        phone_lens int64 (N,)          labels per trial
        days      int64 (N,)           day index (into the model's day-specific input layers)
        transcriptions <U (N,)         sentence text
    manifest.json  {dataset, kind: "neural", n_features, n_days, n_classes: 41, splits:
                    {split: {path, features, n_trials, n_frames, n_phonemes}}, source,
                    phonemes, params, seqlab_version}

A `.npz` holding `features` itself (the layout a user's neural_npz directory has) still loads,
in memory; prepare always writes the features store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.config import from_dict
from seqlab.config_datasets import NeuralChecks, NeuralNpz, NeuralPickle, params_of
from seqlab.data.checks_report import checks_report, entropy_nats
from seqlab.data.manifest import write_dataset_manifest
from seqlab.data.phonemes import PHONEMES, ctc_frames
from seqlab.errors import SeqlabError
from seqlab.files import atomic_write, read_json, unpickle_trusted

N_CLASSES = len(PHONEMES) + 1  # 39 ARPAbet + SIL, + the CTC blank (id 0)
ARRAYS = ("features", "frame_lens", "phonemes", "phone_lens", "days", "transcriptions")


@dataclass
class NeuralSplit:
    """One split in memory: concatenated frames and labels plus per-trial lengths and days."""

    features: np.ndarray
    frame_lens: np.ndarray
    phonemes: np.ndarray
    phone_lens: np.ndarray
    days: np.ndarray
    transcriptions: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_lens)

    @property
    def frame_starts(self) -> np.ndarray:
        return np.cumsum(self.frame_lens) - self.frame_lens

    @property
    def phone_starts(self) -> np.ndarray:
        return np.cumsum(self.phone_lens) - self.phone_lens

    def trial(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames T x C, labels L) of trial i."""
        f, p = int(self.frame_starts[i]), int(self.phone_starts[i])
        return (
            self.features[f : f + self.frame_lens[i]],
            self.phonemes[p : p + self.phone_lens[i]],
        )

    @classmethod
    def from_trials(cls, trials: list[tuple[np.ndarray, np.ndarray, int, str]]) -> NeuralSplit:
        """From (frames, labels, day, text) tuples."""
        C = trials[0][0].shape[1] if trials else 256
        return cls(
            features=np.concatenate([t[0] for t in trials] or [np.zeros((0, C))]).astype(
                np.float32
            ),
            frame_lens=np.array([len(t[0]) for t in trials], np.int64),
            phonemes=np.concatenate([t[1] for t in trials] or [np.zeros(0)]).astype(np.int64),
            phone_lens=np.array([len(t[1]) for t in trials], np.int64),
            days=np.array([t[2] for t in trials], np.int64),
            transcriptions=np.array([t[3] for t in trials], dtype=np.str_),
        )

    def save(self, path: Path) -> None:
        """`path` (.npz, the small arrays) and its features store beside it (.features.npy)."""

        def write_npz(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **{k: getattr(self, k) for k in ARRAYS if k != "features"})

        def write_npy(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(self.features, np.float32))

        atomic_write(features_path(path), write_npy)
        atomic_write(path, write_npz)

    @classmethod
    def load(cls, path: str | Path) -> NeuralSplit:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ARRAYS if k in z}
            if "features" not in arrays and features_path(path).exists():
                arrays["features"] = np.load(features_path(path), mmap_mode="r")
            missing = [k for k in ARRAYS if k not in arrays]
            if missing:
                raise SeqlabError(f"{path}: not a neural .npz split, missing {missing}")
            return cls(**arrays)
        except (OSError, ValueError) as e:
            raise SeqlabError(
                f"{path}: unreadable neural split ({e}); rebuild the dataset"
            ) from None


def features_path(npz: str | Path) -> Path:
    """The features store beside a split's .npz: train.npz -> train.features.npy."""
    return Path(npz).with_suffix(".features.npy")


def load_split(manifest_path: str | Path, split: str) -> tuple[NeuralSplit, dict[str, Any]]:
    """A split of a prepared neural dataset and its manifest."""
    man = read_json(manifest_path)
    if man.get("kind") != "neural":
        raise SeqlabError(
            f"{manifest_path}: kind {man.get('kind')!r} is not a neural dataset; "
            "task ctc needs kind neural_synthetic, neural_pickle or neural_npz"
        )
    if split not in man["splits"]:
        raise SeqlabError(f"{manifest_path}: no split {split!r} (has {list(man['splits'])})")
    return NeuralSplit.load(Path(manifest_path).parent / man["splits"][split]["path"]), man


def write_dataset(
    name: str,
    source: str,
    splits: dict[str, NeuralSplit],
    n_days: int,
    params: dict[str, Any],
    out_dir: Path,
) -> dict[str, Any]:
    """Write {split}.npz files and manifest.json (last) into out_dir."""
    entries = {}
    for split, sp in splits.items():
        sp.save(out_dir / f"{split}.npz")
        entries[split] = {
            "path": f"{split}.npz",
            "n_trials": len(sp),
            "n_frames": int(sp.frame_lens.sum()),
            "n_phonemes": int(sp.phone_lens.sum()),
            "features": features_path(f"{split}.npz").name,
        }
    n_features = int(next(iter(splits.values())).features.shape[1])
    return write_dataset_manifest(
        out_dir / "manifest.json",
        name,
        "neural",
        entries,
        params,
        source=source,
        n_features=n_features,
        n_days=n_days,
        n_classes=N_CLASSES,
        phonemes=["BLANK", *PHONEMES],
    )


# -- the baseline's pickle (trusted only) and the npz layout ----------------------------------


def read_pickle(path: str | Path, trusted: bool, where: str = "dataset") -> dict[str, Any]:
    """Unpickle the baseline's file, only when the config says it is trusted."""
    if trusted is not True:
        raise SeqlabError(
            f"{where}: refusing to unpickle {path}: loading a pickle runs any code it contains. "
            "If you made this file yourself (neural_seq_decoder's formatCompetitionData "
            "notebook) or trust its source, set `trusted: true` in this dataset's config; "
            "otherwise convert it to the .npz layout and use kind neural_npz"
        )
    try:
        return unpickle_trusted(path)
    except SeqlabError as e:
        raise SeqlabError(f"{where}: {e}") from None


def pickle_to_splits(
    data: dict[str, Any], competition_days: list[int] | None = None
) -> tuple[dict[str, NeuralSplit], int]:
    """The baseline's dict of day lists -> NeuralSplits; list position = day index (for
    `competition`, `competition_days` maps its positions to days when they differ)."""
    out, n_days = {}, 0
    for split in ("train", "test", "competition"):
        days = data.get(split)
        if days is None:
            continue
        trials = []
        for pos, d in enumerate(days):
            day = competition_days[pos] if split == "competition" and competition_days else pos
            for k, x in enumerate(d["sentenceDat"]):
                n = int(d["phoneLens"][k])
                labels = np.asarray(d["phonemes"][k], np.int64)[:n]
                text = str(d["transcriptions"][k]).strip() if "transcriptions" in d else ""
                trials.append((np.asarray(x, np.float32), labels, day, text))
            n_days = max(n_days, day + 1)
        out[split] = NeuralSplit.from_trials(trials)
    if "train" not in out or "test" not in out:
        raise SeqlabError(f"the pickle needs `train` and `test` lists (has {sorted(data)})")
    return out, n_days


def build_neural_pickle(name: str, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """kind neural_pickle: {path, trusted, competition_days?} -> the npz layout."""
    p = from_dict(NeuralPickle, params, f"datasets.{name}")
    data = read_pickle(p.path, p.trusted, f"dataset {name!r}")
    splits, n_days = pickle_to_splits(data, p.competition_days)
    recorded = {k: v for k, v in params_of(p).items() if v is not None}
    return write_dataset(name, "neural_pickle", splits, n_days, recorded, Path(out_dir))


def build_neural_npz(name: str, params: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """kind neural_npz: {path: a directory with train.npz, test.npz [, competition.npz]}."""
    from_dict(NeuralNpz, params, f"datasets.{name}")
    src = Path(params["path"])
    if not (src / "train.npz").exists() or not (src / "test.npz").exists():
        raise SeqlabError(f"dataset {name!r} (neural_npz): {src} must hold train.npz and test.npz")
    splits = {
        s: NeuralSplit.load(src / f"{s}.npz")
        for s in ("train", "test", "competition")
        if (src / f"{s}.npz").exists()
    }
    n_days = 1 + max(int(sp.days.max()) for sp in splits.values() if len(sp))
    p = {k: v for k, v in params.items() if k != "checks"}
    return write_dataset(name, "neural_npz", splits, n_days, p, Path(out_dir))


# -- checks ------------------------------------------------------------------------------------


def ctc_min_frames(sp: NeuralSplit) -> np.ndarray:
    """Frames CTC needs per trial: labels + one blank between each pair of equal neighbours."""
    same = (sp.phonemes[1:] == sp.phonemes[:-1]).astype(np.int64)
    ends = np.cumsum(sp.phone_lens)
    first = np.zeros(len(sp.phonemes), bool)
    first[(ends - sp.phone_lens)[sp.phone_lens > 0]] = True
    rep = np.concatenate([[0], same * ~first[1:]])  # repeats within a trial only
    return sp.phone_lens + np.add.reduceat(rep, ends - sp.phone_lens) * (sp.phone_lens > 0)


def run_neural_checks(manifest_path: str | Path, params: dict[str, Any] | None = None) -> dict:
    """Shapes, lengths, label range, days and CTC feasibility of every split."""
    p = from_dict(NeuralChecks, dict(params or {}), "checks")
    man = read_json(manifest_path)
    C, n_days, root = man["n_features"], man["n_days"], Path(manifest_path).parent
    results: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def fail(check: str, where: str, idx: np.ndarray, what: str) -> None:
        listed = ", ".join(str(int(i)) for i in idx[: p.max_listed])
        results.setdefault(check, ({}, []))[1].append(
            f"check {check} failed: {where}: {len(idx)} trials ({listed}) {what}"
        )

    label_counts = np.zeros(N_CLASSES, np.int64)
    for split, entry in man["splits"].items():
        where = f"{root / entry['path']}"
        sp = NeuralSplit.load(root / entry["path"])
        for name in ("shapes", "lengths", "label_range", "days", "ctc_feasible"):
            results.setdefault(name, ({}, []))
        ok = (
            sp.features.ndim == 2
            and sp.features.shape[1] == C
            and sp.features.shape[0] == sp.frame_lens.sum()
            and len(sp.phonemes) == sp.phone_lens.sum()
            and len(sp.days) == len(sp.frame_lens) == len(sp.transcriptions)
        )
        if not ok:
            fail(
                "shapes",
                where,
                np.arange(0),
                f"arrays disagree: features {sp.features.shape}, "
                f"n_features {C}, frame_lens sum {sp.frame_lens.sum()}",
            )
            continue
        rows = _nonfinite_rows(sp.features)
        if len(rows):
            fail(
                "shapes",
                where,
                np.searchsorted(np.cumsum(sp.frame_lens), rows, "right"),
                "have non-finite features",
            )
        bad = np.flatnonzero((sp.frame_lens < p.kernel_len) | (sp.phone_lens < 1))
        if len(bad):
            fail("lengths", where, bad, f"have < {p.kernel_len} frames or no phonemes")
        lab_bad = (sp.phonemes < 1) | (sp.phonemes >= N_CLASSES)
        if lab_bad.any():
            trial_of = np.repeat(np.arange(len(sp)), sp.phone_lens)
            fail(
                "label_range",
                where,
                np.unique(trial_of[lab_bad]),
                f"have labels outside 1..{N_CLASSES - 1}",
            )
        bad = np.flatnonzero((sp.days < 0) | (sp.days >= n_days))
        if len(bad):
            fail("days", where, bad, f"have day ids outside 0..{n_days - 1}")
        out = ctc_frames(sp.frame_lens, p.kernel_len, p.stride_len)
        bad = np.flatnonzero(out < ctc_min_frames(sp))
        if len(bad):
            fail(
                "ctc_feasible",
                where,
                bad,
                f"have more phonemes than the {p.kernel_len}/"
                f"{p.stride_len} unfold leaves frames for; lower stride_len or drop them",
            )
        results["lengths"][0][split] = {
            "n_trials": len(sp),
            "frames_mean": float(sp.frame_lens.mean()),
            "phonemes_mean": float(sp.phone_lens.mean()),
            "min_slack": int((out - ctc_min_frames(sp)).min()) if len(sp) else 0,
        }
        if split == "train":
            label_counts += np.bincount(sp.phonemes[~lab_bad], minlength=N_CLASSES)
    return checks_report(
        results,
        asdict(p),
        dataset=man.get("dataset"),
        manifest=str(manifest_path),
        n_days=n_days,
        n_features=C,
        unigram_entropy_nats=entropy_nats(label_counts),  # per-phoneme CTC baseline
    )


def _nonfinite_rows(features: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Frames with a NaN/inf, read in chunks of rows (the store may be larger than memory)."""
    bad = [
        a + np.flatnonzero(~np.isfinite(features[a : a + chunk]).all(1))
        for a in range(0, len(features), chunk)
    ]
    return np.concatenate(bad) if bad else np.zeros(0, np.int64)


def pad_batch(sp: NeuralSplit, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Trials `idx` zero-padded as the baseline's collate: x (B, T, C), y (B, L) (0 = pad),
    frame_lens, phone_lens, days."""
    fs, ps = sp.frame_starts[idx], sp.phone_starts[idx]
    fl, pl = sp.frame_lens[idx], sp.phone_lens[idx]
    x = np.zeros((len(idx), int(fl.max()), sp.features.shape[1]), np.float32)
    y = np.zeros((len(idx), max(int(pl.max()), 1)), np.int64)
    for j in range(len(idx)):
        x[j, : fl[j]] = sp.features[fs[j] : fs[j] + fl[j]]
        y[j, : pl[j]] = sp.phonemes[ps[j] : ps[j] + pl[j]]
    return {"x": x, "y": y, "frame_lens": fl, "phone_lens": pl, "days": sp.days[idx]}
