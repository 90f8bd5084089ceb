"""What sWUGGY and sBLIMP sets share: the set directory, the world they are drawn from, names
and the units of a real set.

A set directory holds `gold.csv` (the task's columns), `units.txt` (`filename<TAB>u1,u2,...`,
the ZeroSpeech quantized format), `controls.json` (+ `controls/*.txt` submission files) and
`manifest.json` (kind, vocab, voices, controls), so a model is scored the same way on an
embedded set and on real ZR2021 files. A `ZrTask` names what differs between the tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqlab.config_datasets import SyntheticUnits
from seqlab.data import sblimp_files, swuggy_files
from seqlab.data.ingest import read_units_text, write_units_text
from seqlab.data.manifest import Manifest, write_dataset_manifest
from seqlab.data.synthetic_units import split_sentences
from seqlab.data.vocab import bos_id, eos_id, n_token_ids
from seqlab.data.world import World, stream_rng
from seqlab.errors import SeqlabError
from seqlab.files import read_json, write_json
from seqlab.scoring.sblimp import syntactic_scores_seen_heldout
from seqlab.scoring.swuggy import lexical_scores_seen_heldout, unigram_scores


@dataclass(frozen=True)
class ZrTask:
    """One ZR2021 task: its gold files, official scorer and headline keys."""

    name: str  # lexical or syntactic: the submission's directory
    read_gold: Callable[[str | Path], pd.DataFrame]
    write_gold: Callable[[str | Path, pd.DataFrame], Path]
    evaluate: Callable[..., dict[str, Any]]  # (gold, scores, heldout voices) -> results
    keys: tuple[str, ...]  # headline first: reported per checkpoint and per control


LEXICAL = ZrTask(
    "lexical",
    swuggy_files.read_gold,
    swuggy_files.write_gold,
    lexical_scores_seen_heldout,
    ("lexical_all", "lexical_invocab"),
)
SYNTACTIC = ZrTask(
    "syntactic",
    sblimp_files.read_gold,
    sblimp_files.write_gold,
    syntactic_scores_seen_heldout,
    ("syntactic_all",),
)
#: dataset kind -> task
TASKS = {
    "swuggy_synthetic": LEXICAL,
    "swuggy_zerospeech": LEXICAL,
    "sblimp_synthetic": SYNTACTIC,
    "sblimp_zerospeech": SYNTACTIC,
}


def synthetic_world(
    p: Any, out_dir: Path, kind: str
) -> tuple[Path, SyntheticUnits, World, list[tuple[int, ...]]]:
    """The synthetic_units dataset that set params `p` (`world`, `world_manifest`) draw from:
    its manifest's path, its params, its world, and the sentences of its train text."""
    path = Path(p.world_manifest or out_dir.parent / p.world / "manifest.json")
    man = read_json(path)
    if man.get("kind") != "synthetic_units":
        raise SeqlabError(
            f"{path}: world {p.world!r} is a {man.get('kind')!r} dataset; "
            f"a {kind} set needs a synthetic_units dataset"
        )
    world_params = SyntheticUnits(**man["params"])
    world = World(world_params.world_params())
    train, _ = split_sentences(world, world_params)
    return path, world_params, world, train


def speaking_voices(p: Any, world_params: SyntheticUnits, stream: str) -> list[int]:
    """The voices that speak every id of set params `p`: `n_seen_voices` training voices
    drawn by the set's seed, then its `n_heldout_voices` held-out ones."""
    n_train = world_params.n_voices
    rng = stream_rng(p.seed, stream)
    seen = sorted(rng.choice(n_train, min(p.n_seen_voices, n_train), replace=False).tolist())
    n_held = min(p.n_heldout_voices, world_params.n_heldout_voices)
    return seen + list(range(n_train, n_train + n_held))


def random_names(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct random 11-letter filenames (ZR2021 style: the name says nothing)."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    out: dict[str, None] = {}
    while len(out) < n:
        out.update(dict.fromkeys("".join(r) for r in rng.choice(letters, (n - len(out), 11))))
    return list(out)


def train_unit_counts(world_manifest: Path, vocab: int) -> np.ndarray:
    """Unit counts of the world dataset's train split (the unit-unigram control's model)."""
    counts = np.zeros(vocab, np.int64)
    for u in Manifest(world_manifest).iter_split("train"):
        counts += np.bincount(np.asarray(u.units, np.int64), minlength=vocab)[:vocab]
    return counts


def units_of_gold(
    name: str, gold: pd.DataFrame, gold_path: str, units_path: str, vocab: int
) -> dict[str, np.ndarray]:
    """The user's quantized units of every gold filename (a `.wav` suffix is dropped); a name
    missing on either side fails naming both files."""
    units = {}
    for n, u in read_units_text(units_path, vocab):
        units[n[:-4] if n.endswith(".wav") else n] = u
    lack = [f for f in gold["filename"] if f not in units]
    extra = sorted(set(units) - set(gold["filename"]))
    if lack or extra:
        msg = f"{len(lack)} gold filenames have no units (e.g. {lack[0]!r})" if lack else ""
        msg += "; " if lack and extra else ""
        msg += f"{len(extra)} units names are not in gold (e.g. {extra[0]!r})" if extra else ""
        raise SeqlabError(
            f"dataset {name!r}: {units_path} does not match {gold_path}: {msg}; "
            "quantize exactly the files of that gold.csv"
        )
    return units


def all_unit_counts(units: dict[str, np.ndarray], vocab: int) -> np.ndarray:
    """Unit counts over a real set's own files (its unit-unigram control's model)."""
    return np.bincount(np.concatenate(list(units.values())).astype(np.int64), minlength=vocab)


def write_set(
    out: Path,
    task: ZrTask,
    gold: pd.DataFrame,
    units: dict[str, np.ndarray],
    controls: dict[str, Any],
    info: dict[str, Any],
) -> dict:
    """gold.csv, units.txt, controls, manifest.json (last; `info` + counts). A control is a
    score per filename or a unit count vector (the unigram model). `info["toplines"]`, when
    given, names controls that show the set can be solved (reported, never a baseline)."""
    task.write_gold(out / "gold.csv", gold)
    write_units_text(out / "units.txt", ((f, units[f]) for f in gold["filename"]), "tab")
    held = [v["id"] for v in info["voices"] if v["heldout"]]
    files, results = list(gold["filename"]), {}
    for cname, model in controls.items():
        if not isinstance(model, dict):  # unit counts -> unigram scores of every item
            model = dict(zip(files, unigram_scores([units[f] for f in files], model), strict=True))
        swuggy_files.write_submission(out / "controls" / f"{cname}.txt", model)
        results[cname] = task.evaluate(gold, model, held)
    write_json(out / "controls.json", results)
    head = task.keys[0]
    summary = {
        c: {k: r.get(k) for k in task.keys}
        | {f"{g}.{head}": r[g][head] for g in ("seen", "heldout") if g in r}
        for c, r in results.items()
    }
    tops = set(info.get("toplines", ()))
    fields = {k: v for k, v in info.items() if k not in ("dataset", "kind", "params", "toplines")}
    V = info["vocab_size"]
    splits = {
        info["split"]: {"n_samples": len(gold), "n_units": int(sum(len(u) for u in units.values()))}
    }
    return write_dataset_manifest(
        out / "manifest.json",
        info["dataset"],
        info["kind"],
        splits,
        info["params"],
        **fields,
        bos=bos_id(V),
        eos=eos_id(V),
        n_token_ids=n_token_ids(V),
        n_ids=int(
            gold[["type", "subtype", "id"] if task is SYNTACTIC else "id"]
            .drop_duplicates()
            .shape[0]
        ),
        controls={c: s for c, s in summary.items() if c not in tops},
        **({"toplines": {c: s for c, s in summary.items() if c in tops}} if tops else {}),
        files={"gold": "gold.csv", "units": "units.txt", "controls": "controls.json"},
    )
