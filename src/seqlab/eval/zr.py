"""sWUGGY and sBLIMP (ZeroSpeech 2021 lexical and syntactic) scores of a trained unit LM:
utterance log-probabilities, the official submission files, and swuggy.json / sblimp.json of
a trial.

An LM scores an utterance by one of two conventions, both always computed:
`sum_logprob`, the sum of log-probabilities of its units and EOS after BOS (the ZR2021 LSTM
baseline's convention), or `mean_logprob`, that sum over the number of predicted tokens
(slamkit's default). `length_normalised` picks the headline; the other stands beside it under
its own name, with its own submission file. The set's files are read and scored by the
official rules (`seqlab.data.zr_sets` names each task's reader and scorer, `seqlab.scoring`
holds the rules), the same code that scored the set's controls when it was built.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlab.config import LmEval, from_dict
from seqlab.data.ingest import read_units_text
from seqlab.data.manifest import token_ids
from seqlab.data.swuggy_files import write_submission
from seqlab.data.zr_sets import TASKS, ZrTask
from seqlab.errors import SeqlabError
from seqlab.files import read_json, write_json
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.load import load_model, pick_device
from seqlab.train.logbook import add_scalars

CONVENTIONS = ("sum_logprob", "mean_logprob")


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
            f"item {i} needs {lengths[i]} positions > the model's "
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


# -- one trial -------------------------------------------------------------------------------


def _checkpoint_path(trial_dir: Path, entry: Any, what: str) -> Path:
    if entry in ("best", "last"):
        return trial_dir / "ckpt" / f"{entry}.pt"
    if isinstance(entry, int) and not isinstance(entry, bool):
        return trial_dir / "ckpt" / f"step{entry}.pt"
    raise SeqlabError(f"{what}.checkpoints: {entry!r} is not 'best', 'last' or a step")


def _headline(task: ZrTask, res: Mapping[str, Any]) -> dict[str, Any]:
    """The task's headline keys, with the seen / held-out voices' headline."""
    out = {k: res[k] for k in task.keys}
    for g in ("seen", "heldout"):
        if g in res:
            out[g] = {task.keys[0]: res[g][task.keys[0]]}
    return out


def evaluate_trial(
    benchmark: str,
    trial_dir: str | Path,
    set_manifest: str | Path,
    out_json: str | Path,
    submission_dir: str | Path,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a trial's model.pt (and its listed checkpoints) on a `benchmark` (swuggy or sblimp)
    set; write the submission files under `submission_dir` and the results to `out_json`."""
    t0, what = time.time(), f"eval.{benchmark}"
    p = from_dict(LmEval, dict(params or {}), what)
    torch.set_num_threads(p.threads or 1)
    trial_dir, set_manifest = Path(trial_dir), Path(set_manifest)
    man = read_json(set_manifest)
    task, root = TASKS[man["kind"]], set_manifest.parent
    gold = task.read_gold(root / man["files"]["gold"])
    units = dict(read_units_text(root / man["files"]["units"], man["vocab_size"]))
    items = [units[f] for f in gold["filename"]]
    n_predicted = np.array([len(u) + 1 for u in items], np.float64)
    held = [v["id"] for v in man.get("voices", []) if v.get("heldout")]
    device = pick_device(p.device)
    model, ck = load_model(trial_dir / "model.pt", device)
    if ck["vocab_size"] != token_ids(man):
        raise SeqlabError(
            f"{trial_dir}/model.pt predicts {ck['vocab_size']} tokens, set "
            f"{man['dataset']!r} has {token_ids(man)} (units + BOS + EOS); "
            "score a model trained on the same tokenizer"
        )
    split, sub_dir = man.get("split", "dev"), Path(submission_dir)
    head, other = CONVENTIONS[::-1] if p.length_normalised else CONVENTIONS

    def score(sub: Path) -> dict[str, Any]:
        """Score the model's current weights by both conventions; write their submission files
        (the headline's under `sub`, the other's under `sub/<its name>`)."""
        total = lm_scores(model, items, man["bos"], man["eos"], p.batch_size, device=device)
        values = {"sum_logprob": total, "mean_logprob": total / n_predicted}
        res = {}
        for conv, where in ((head, sub), (other, sub / other)):
            path = where / task.name / f"{split}.txt"
            scores = dict(zip(gold["filename"], values[conv].tolist(), strict=True))
            write_submission(path, scores)
            res[conv] = {**task.evaluate(gold, scores, held), "submission": str(path)}
        return {
            **res[head],
            other: {**_headline(task, res[other]), "submission": res[other]["submission"]},
        }

    out: dict[str, Any] = {
        "set": man["dataset"],
        "kind": man["kind"],
        "split": split,
        "model": "model.pt",
        "step": ck.get("step"),
        "convention": head,
        **score(sub_dir),
    }
    out["checkpoints"] = {}
    for entry in p.checkpoints:
        path = _checkpoint_path(trial_dir, entry, what)
        if not path.exists():
            out["checkpoints"][str(entry)] = {"missing": str(path.relative_to(trial_dir))}
            continue
        c = load_checkpoint(path)
        model.load_state_dict(c["model"])
        res = score(sub_dir / str(entry))
        step = c.get("step", (c.get("trainer") or {}).get("step"))
        keep = (*task.keys, "seen", "heldout", other)
        out["checkpoints"][str(entry)] = {"step": step, **{k: res[k] for k in keep if k in res}}
    out["controls"] = man.get("controls", {})
    if "toplines" in man:
        out["toplines"] = man["toplines"]
    out.update(
        length_normalised=p.length_normalised,
        batch_size=p.batch_size,
        device=str(device),
        wall_s=round(time.time() - t0, 3),
    )
    write_json(out_json, out)
    curve = [(out["step"], out)] + [
        (c["step"], c) for c in out["checkpoints"].values() if "step" in c
    ]
    for step, res in curve:  # beside the training curves in TensorBoard
        add_scalars(
            trial_dir,
            int(step or 0),
            {
                f"{benchmark}/{k}": float(res[k])
                for k in task.keys
                if isinstance(res.get(k), (int, float))
            },
        )
    return out
