"""sWUGGY (ZeroSpeech 2021 lexical) scoring: file formats, the official rules, LM item scores.

The rules follow the ZR2021 / zrc lexical evaluation exactly, so numbers compare with published
ones: words and nonwords are paired on (id, voice) (an inner join, as the official scorer does);
a pair scores 1 when the word's score is higher, 0.5 on a tie, 0 otherwise; pair scores are
averaged over voices per id and `lexical_all` is the mean over ids. Frequency bands cut the
word's frequency (its count in the training text) at [0, 1, 5, 20, 100, inf), right-open, labelled
oov, 1-5, 6-20, 21-100, >100; `lexical_invocab` is the count-weighted mean of the band scores
without oov. An LM scores an item by the sum of log-probabilities of its units and EOS after
BOS (the ZR2021 LSTM baseline convention), or that sum over the number of predicted tokens
(`length_normalised`, a variant).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqlab.io import SeqlabError, atomic_write, read_json, write_json

GOLD_COLUMNS = ("id", "filename", "voice", "frequency", "word", "phones", "length", "correct")
BAND_EDGES = (0.0, 1.0, 5.0, 20.0, 100.0, math.inf)
BAND_LABELS = ("oov", "1-5", "6-20", "21-100", ">100")


# -- files -----------------------------------------------------------------------------------


def read_gold(path: str | Path) -> pd.DataFrame:
    """gold.csv as a DataFrame; a missing column, bad `correct` or duplicate filename fails."""
    path = Path(path)
    if path.is_dir():
        path = path / "gold.csv"
    if not path.is_file():
        raise SeqlabError(f"{path}: gold file not found; point `gold` at the lexical dev/test dir")
    gold = pd.read_csv(path, header=0, dtype={"filename": str, "voice": str})
    missing = [c for c in GOLD_COLUMNS if c not in gold]
    if missing:
        raise SeqlabError(
            f"{path}: missing columns {missing}; a ZR2021 gold.csv has {GOLD_COLUMNS}"
        )
    bad = gold.index[~gold["correct"].isin([0, 1])]
    if len(bad):
        raise SeqlabError(
            f"{path}: row {bad[0] + 2} has correct={gold['correct'][bad[0]]!r}; "
            "must be 1 (word) or 0 (nonword)"
        )
    dup = gold["filename"][gold["filename"].duplicated()]
    if len(dup):
        raise SeqlabError(f"{path}: filename {dup.iloc[0]!r} appears twice; filenames are unique")
    return gold.astype({"frequency": pd.Int64Dtype()})


def write_gold(path: str | Path, gold: pd.DataFrame) -> Path:
    """Write gold.csv with the ZR2021 column order."""
    return atomic_write(path, lambda tmp: gold[list(GOLD_COLUMNS)].to_csv(tmp, index=False))


def write_submission(path: str | Path, scores: Mapping[str, float]) -> Path:
    """The official submission file: `filename score` per line (repr: exact round trip)."""
    text = "".join(f"{name} {float(s)!r}\n" for name, s in scores.items())
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_submission(path: str | Path) -> dict[str, float]:
    """Parse a submission file; a malformed line or duplicate filename fails naming the line."""
    path = Path(path)
    if not path.is_file():
        raise SeqlabError(f"{path}: submission file not found")
    out: dict[str, float] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.strip().split(" ")
        if len(fields) != 2:
            raise SeqlabError(f"{path}:{lineno}: must be '<filename> <score>', is {line!r}")
        try:
            score = float(fields[1])
        except ValueError:
            raise SeqlabError(f"{path}:{lineno}: score {fields[1]!r} is not a number") from None
        if fields[0] in out:
            raise SeqlabError(f"{path}:{lineno}: duplicate filename {fields[0]!r}")
        out[fields[0]] = score
    return out


# -- the official rules ----------------------------------------------------------------------


def _agg(scores: pd.Series, keys: pd.Series) -> dict[str, dict[str, Any]]:
    """n / mean / std (ddof=1, None below 2) of `scores` per key, keys in their sorted order."""
    out = {}
    for key, s in scores.groupby(keys, observed=True, sort=True):
        n = int(s.count())
        out[str(key)] = {"n": n, "score": float(s.mean()), "std": float(s.std()) if n > 1 else None}
    return out


def by_pair(gold: pd.DataFrame, scores: Mapping[str, float]) -> pd.DataFrame:
    """One row per id: word, nonword, frequency, length, n_voices and the mean pair score."""
    names = set(gold["filename"])
    if names != set(scores):
        extra, lack = sorted(set(scores) - names), sorted(names - set(scores))
        what = f"{len(lack)} gold filenames have no score (e.g. {lack[0]!r})" if lack else ""
        what += "; " if lack and extra else ""
        what += f"{len(extra)} scores are not in gold (e.g. {extra[0]!r})" if extra else ""
        raise SeqlabError(f"mismatch between gold and submission: {what}")
    data = gold.assign(score=gold["filename"].map(scores).astype(float))
    w = data[data["correct"] == 1].add_prefix("w_")
    nw = data[data["correct"] == 0].add_prefix("nw_")
    pairs = w.merge(nw, left_on=["w_id", "w_voice"], right_on=["nw_id", "nw_voice"])
    sw, snw = pairs["w_score"].to_numpy(), pairs["nw_score"].to_numpy()
    pairs["score"] = 0.5 * (sw == snw) + (sw > snw)
    grouped = pairs.groupby("w_id", sort=True)
    return (
        pd.DataFrame(
            {
                "word": grouped["w_word"].first(),
                "non word": grouped["nw_word"].first(),
                "frequency": grouped["w_frequency"].first(),
                "length": grouped["w_length"].first(),
                "n_voices": grouped["score"].size(),
                "score": grouped["score"].mean(),
            }
        )
        .rename_axis("id")
        .reset_index()
    )


def evaluate(
    gold: pd.DataFrame, scores: Mapping[str, float], voices: Collection[str] | None = None
) -> dict[str, Any]:
    """The official lexical scores over the pairs of `voices` (None: every voice)."""
    if voices is not None:
        keep = gold["voice"].isin(list(voices))
        gold = gold[keep]
        scores = {f: scores[f] for f in gold["filename"] if f in scores}
    if gold.empty:
        raise SeqlabError("sWUGGY: no gold items for the chosen voices")
    pairs = by_pair(gold, scores)
    bands = pd.cut(
        pairs["frequency"].astype(float), list(BAND_EDGES), labels=list(BAND_LABELS), right=False
    )
    by_freq = _agg(pairs["score"], bands)
    inv = [b for k, b in by_freq.items() if k != "oov"]
    n_inv = sum(b["n"] for b in inv)
    return {
        "lexical_all": float(pairs["score"].mean()) if len(pairs) else None,
        "lexical_invocab": sum(b["score"] * b["n"] for b in inv) / n_inv if n_inv else None,
        "by_frequency": by_freq,
        "by_length": _agg(pairs["score"], pairs["length"]),
        "n_ids": int(len(pairs)),
        "n_pairs": int(pairs["n_voices"].sum()),
        "n_unpaired": int(len(gold) - 2 * pairs["n_voices"].sum()),
    }


def evaluate_split(
    gold: pd.DataFrame, scores: Mapping[str, float], heldout: Collection[str] = ()
) -> dict[str, Any]:
    """evaluate() on every voice, plus `seen` and `heldout` blocks when voices are held out."""
    res = evaluate(gold, scores)
    held = set(heldout) & set(gold["voice"])
    if held:
        seen = set(gold["voice"]) - held
        for name, vs in (("seen", seen), ("heldout", held)):
            if vs:
                sub = evaluate(gold, scores, vs)
                res[name] = {k: sub[k] for k in ("lexical_all", "lexical_invocab", "n_pairs")}
    return res


# -- LM scores -------------------------------------------------------------------------------


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise SeqlabError(f"device {name!r}: use auto, cpu, cuda or cuda:N") from None


@torch.no_grad()
def lm_scores(
    model: torch.nn.Module,
    items: Sequence[np.ndarray],
    bos: int,
    eos: int,
    batch_size: int = 256,
    length_normalised: bool = False,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """log p(u1..un EOS | BOS) of each item (sum; or mean per predicted token), batched.

    Items are grouped by length (sorted), right-padded and masked; causal models never see the
    padding of a position they predict. The model runs in eval mode under no_grad.
    """
    device = torch.device(device)
    model.eval().to(device)
    limit = getattr(getattr(model, "config", None), "block_size", None)
    lengths = np.array([len(u) + 1 for u in items], np.int64)  # inputs BOS+units, targets +EOS
    if limit is not None and len(items) and lengths.max() > limit:
        i = int(lengths.argmax())
        raise SeqlabError(
            f"sWUGGY item {i} needs {lengths[i]} positions > the model's "
            f"block_size {limit}; train with a larger block_size"
        )
    out = np.zeros(len(items), np.float64)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        T = int(lengths[idx].max())
        x = np.full((len(idx), T), eos, np.int64)
        y = np.full((len(idx), T), eos, np.int64)
        for r, i in enumerate(idx):
            u = np.asarray(items[i], np.int64)
            x[r, 0], x[r, 1 : len(u) + 1] = bos, u
            y[r, : len(u)], y[r, len(u)] = u, eos
        xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        logp = torch.log_softmax(model(xt).float(), dim=-1).gather(-1, yt[..., None])[..., 0]
        mask = (
            torch.arange(T, device=device)[None, :]
            < torch.from_numpy(lengths[idx]).to(device)[:, None]
        )
        total = (logp.double() * mask).sum(1).cpu().numpy()
        out[idx] = total / lengths[idx] if length_normalised else total
    return out


def unigram_scores(items: Sequence[np.ndarray], counts: np.ndarray) -> np.ndarray:
    """The unit-unigram control: sum of log p(unit) (add-one smoothed `counts`) per item."""
    logp = np.log((counts + 1.0) / (counts.sum() + len(counts)))
    return np.array([logp[np.asarray(u, np.int64)].sum() for u in items], np.float64)


# -- one trial -------------------------------------------------------------------------------


@dataclass
class SwuggyEvalParams:
    """The experiment's `eval.swuggy` block (minus `set`, which the rule resolves)."""

    checkpoints: list = field(default_factory=list)  # also score: "best", "last", int N
    length_normalised: bool = False  # mean log-prob per predicted token instead of the sum
    batch_size: int = 256  # items per forward pass
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int = 1  # torch CPU threads


def _checkpoint_path(trial_dir: Path, entry: Any) -> Path:
    if entry in ("best", "last"):
        return trial_dir / "ckpt" / f"{entry}.pt"
    if isinstance(entry, int) and not isinstance(entry, bool):
        return trial_dir / "ckpt" / f"step{entry}.pt"
    raise SeqlabError(f"eval.swuggy.checkpoints: {entry!r} is not 'best', 'last' or a step")


def evaluate_trial(
    trial_dir: str | Path,
    set_manifest: str | Path,
    out_json: str | Path,
    submission_dir: str | Path,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a trial's model.pt (and its listed checkpoints) on a set; write the submission
    file(s) under `submission_dir` and the results to `out_json`."""
    from seqlab.data.ingest import read_units_text
    from seqlab.data.synthetic_units import parse_params
    from seqlab.models import build_model
    from seqlab.train.checkpoint import load_checkpoint

    t0 = time.time()
    p = parse_params(SwuggyEvalParams, dict(params or {}), "eval.swuggy")
    torch.set_num_threads(p.threads)
    trial_dir, set_manifest = Path(trial_dir), Path(set_manifest)
    man = read_json(set_manifest)
    root = set_manifest.parent
    gold = read_gold(root / man["files"]["gold"])
    units = dict(read_units_text(root / man["files"]["units"], man["vocab_size"]))
    items = [units[f] for f in gold["filename"]]
    held = [v["id"] for v in man.get("voices", []) if v.get("heldout")]
    ck = load_checkpoint(trial_dir / "model.pt")
    if ck["vocab_size"] != man["n_tokens"]:
        raise SeqlabError(
            f"{trial_dir}/model.pt predicts {ck['vocab_size']} tokens, set "
            f"{man['dataset']!r} has {man['n_tokens']} (units + BOS + EOS); "
            "score a model trained on the same tokenizer"
        )
    device = pick_device(p.device)
    model = build_model(ck["model_config"], ck["vocab_size"])
    split, sub_dir = man.get("split", "dev"), Path(submission_dir)

    def score(state: dict[str, Any], sub: Path) -> dict[str, Any]:
        model.load_state_dict(state)
        s = lm_scores(
            model, items, man["bos"], man["eos"], p.batch_size, p.length_normalised, device
        )
        scores = dict(zip(gold["filename"], s.tolist(), strict=True))
        write_submission(sub / "lexical" / f"{split}.txt", scores)
        return evaluate_split(gold, scores, held)

    out: dict[str, Any] = {
        "set": man["dataset"],
        "kind": man["kind"],
        "split": split,
        "model": "model.pt",
        "step": ck.get("step"),
        **score(ck["model"], sub_dir),
    }
    out["checkpoints"] = {}
    for entry in p.checkpoints:
        path = _checkpoint_path(trial_dir, entry)
        if not path.exists():
            out["checkpoints"][str(entry)] = {"missing": str(path.relative_to(trial_dir))}
            continue
        c = load_checkpoint(path)
        res = score(c["model"], sub_dir / str(entry))
        step = c.get("step", (c.get("trainer") or {}).get("step"))
        keep = ("lexical_all", "lexical_invocab", "seen", "heldout")
        out["checkpoints"][str(entry)] = {"step": step, **{k: res[k] for k in keep if k in res}}
    out["controls"] = man.get("controls", {})
    out.update(
        length_normalised=p.length_normalised,
        batch_size=p.batch_size,
        device=str(device),
        wall_s=round(time.time() - t0, 3),
        submission=str(sub_dir / "lexical" / f"{split}.txt"),
    )
    write_json(out_json, out)
    return out
