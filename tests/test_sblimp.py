"""sBLIMP: the official syntactic rules on a planted set, the official layout's round trip,
both scoring conventions, and the synthetic set built from the world."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.data.checks import run_checks
from seqlab.data.ingest import read_units_text, write_units_text
from seqlab.data.prepare import prepare_dataset
from seqlab.data.sblimp_files import read_gold, toolkit_pairing_agrees
from seqlab.data.swuggy_files import read_submission, write_submission
from seqlab.errors import SeqlabError
from seqlab.eval.zr import evaluate_trial
from seqlab.files import read_json
from seqlab.models import build_model
from seqlab.scoring.sblimp import syntactic_scores, syntactic_scores_seen_heldout

# (type, subtype, id): {voice: (correct score, incorrect score)}; id scores in the comments
PLANTED = {
    ("agr", "noun", 1): {"A": (-2.0, -3.0), "B": (-4.0, -3.0)},  # 1, 0 -> 0.5
    ("agr", "noun", 2): {"A": (-1.0, -1.0), "B": (-1.0, -2.0)},  # tie 0.5, 1 -> 0.75
    ("agr", "verb", 3): {"A": (0.0, -5.0), "B": (-1.0, -9.0)},  # 1, 1 -> 1.0
    ("island", "wh", 4): {"A": (-7.0, -6.0), "B": (-7.0, -6.5)},  # 0, 0 -> 0.0
    ("island", "wh", 5): {"A": (-3.0, -3.0), "B": (-3.0, -3.0)},  # tie, tie -> 0.5
}


def planted() -> tuple[pd.DataFrame, dict[str, float]]:
    """Official-order gold (each pair's rows together) and the planted scores."""
    rows, scores = [], {}
    for (t, sub, i), voices in PLANTED.items():
        for v, pair in voices.items():
            for correct, s in zip((1, 0), pair, strict=True):
                name = f"s{i}{v}{correct}"
                words = f"sentence {i}" if correct else f"{i} sentence"
                rows.append(
                    {
                        "id": i,
                        "filename": name,
                        "voice": v,
                        "type": t,
                        "subtype": sub,
                        "correct": correct,
                        "transcription": words,
                    }
                )
                scores[name] = s
    return pd.DataFrame(rows), scores


def test_planted_set_scores_exactly() -> None:
    gold, scores = planted()
    res = syntactic_scores(gold, scores)
    # mean over ids of the voice-averaged pair scores: (0.5 + 0.75 + 1 + 0 + 0.5) / 5
    assert res["syntactic_all"] == pytest.approx(2.75 / 5, abs=1e-15)
    assert res["by_type"]["agr"] == {"n": 3, "score": 0.75, "std": pytest.approx(0.25)}
    assert res["by_type"]["island"] == {"n": 2, "score": 0.25, "std": pytest.approx(0.3535534)}
    assert res["n_ids"] == 5 and res["n_pairs"] == 10 and res["n_unpaired"] == 0
    # row order does not matter to seqlab's pairing (by key), only to the toolkit's
    shuffled = gold.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert syntactic_scores(shuffled, scores) == res
    assert toolkit_pairing_agrees(gold) == [] and toolkit_pairing_agrees(shuffled) != []
    split = syntactic_scores_seen_heldout(gold, scores, heldout=["B"])
    assert split["seen"]["syntactic_all"] == pytest.approx((1 + 0.5 + 1 + 0 + 0.5) / 5)
    assert split["heldout"] == {
        "syntactic_all": pytest.approx((0 + 1 + 1 + 0 + 0.5) / 5),
        "n_pairs": 5,
    }


def test_ids_are_per_type_and_subtype() -> None:
    """The toolkit groups by (type, subtype, id): one id in two subtypes is two items."""
    gold, scores = planted()
    gold.loc[gold["id"] == 3, "id"] = 1  # agr/verb/1 beside agr/noun/1
    res = syntactic_scores(gold, scores)
    assert res["n_ids"] == 5 and res["syntactic_all"] == pytest.approx(2.75 / 5)


def write_official(root: Path, gold: pd.DataFrame, units: dict[str, list[int]]) -> None:
    """syntactic/dev/gold.csv (official column order) + units in the ZeroSpeech text format."""
    (root / "syntactic" / "dev").mkdir(parents=True)
    cols = ["id", "filename", "voice", "type", "subtype", "correct", "transcription"]
    gold[cols].to_csv(root / "syntactic" / "dev" / "gold.csv", index=False)
    items = [(f"{f}.wav", np.array(u, np.uint16)) for f, u in units.items()]
    write_units_text(root / "units.txt", items, "space")


def test_official_layout_round_trips(tmp_path: Path) -> None:
    gold, scores = planted()
    scores["s1A1"] = 1 / 3  # a float that only survives an exact write
    units = {f: [k % 7, 3, 1 + k % 5] for k, f in enumerate(gold["filename"])}
    write_official(tmp_path, gold, units)
    cfg = {
        "kind": "sblimp_zerospeech",
        "gold": str(tmp_path / "syntactic/dev"),
        "units": str(tmp_path / "units.txt"),
        "vocab_size": 8,
    }
    man = prepare_dataset("real", cfg, tmp_path / "set")
    assert man["kind"] == "sblimp_zerospeech" and man["n_ids"] == 5
    assert run_checks(tmp_path / "set" / "manifest.json")["passed"]
    back = read_gold(tmp_path / "set")
    assert back.equals(read_gold(tmp_path / "syntactic/dev/gold.csv"))
    assert {n: u.tolist() for n, u in read_units_text(tmp_path / "set/units.txt")} == units
    sub = tmp_path / "submission" / "syntactic" / "dev.txt"
    write_submission(sub, scores)
    assert read_submission(sub) == scores
    assert syntactic_scores(back, read_submission(sub)) == syntactic_scores(gold, scores)


def test_bad_official_files_fail_with_one_line(tmp_path: Path) -> None:
    gold, scores = planted()
    gold.drop(columns=["subtype"]).to_csv(tmp_path / "gold.csv", index=False)
    with pytest.raises(SeqlabError, match=r"missing columns \['subtype'\]"):
        read_gold(tmp_path / "gold.csv")
    del scores["s4B0"]
    with pytest.raises(SeqlabError, match="1 gold filenames have no score .*s4B0"):
        syntactic_scores(gold, scores)
    shuffled = tmp_path / "shuffled"
    moved = pd.concat([gold.iloc[[0]], gold.iloc[2:], gold.iloc[[1]]])  # s1A0 last
    write_official(shuffled, moved, {f: [1, 2] for f in gold["filename"]})
    cfg = {
        "kind": "sblimp_zerospeech",
        "gold": str(shuffled / "syntactic/dev/gold.csv"),
        "units": str(shuffled / "units.txt"),
        "vocab_size": 8,
    }
    prepare_dataset("rev", cfg, tmp_path / "rev")
    fails = run_checks(tmp_path / "rev" / "manifest.json")["failures"]
    assert fails and fails[0].startswith("check toolkit_pairing failed:")


def trial(tmp_path: Path, model_cfg: dict, vocab: int) -> Path:
    """A trial directory holding model.pt, as training writes it."""
    torch.manual_seed(0)
    model = build_model(model_cfg, vocab)
    out = tmp_path / "trial"
    out.mkdir()
    spec = {**model_cfg, "vocab_size": vocab}
    torch.save(
        {"model": model.state_dict(), "model_config": spec, "vocab_size": vocab, "step": 5},
        out / "model.pt",
    )
    return out


@pytest.mark.parametrize("arch", ["lstm", "gpt2"])
def test_both_conventions_from_one_pass(tmp_path: Path, arch: str) -> None:
    gold, _ = planted()
    units = {f: [1] * (1 + k % 3) + [k % 8] for k, f in enumerate(gold["filename"])}
    write_official(tmp_path, gold, units)
    cfg = {
        "kind": "sblimp_zerospeech",
        "gold": str(tmp_path / "syntactic/dev"),
        "units": str(tmp_path / "units.txt"),
        "vocab_size": 8,
    }
    prepare_dataset("real", cfg, tmp_path / "set")
    model_cfg = {"arch": arch, "n_embd": 8, "n_layer": 1}
    model_cfg |= {"hidden": 8} if arch == "lstm" else {"n_head": 2, "block_size": 8}
    t = trial(tmp_path, model_cfg, 10)
    res = evaluate_trial(
        "sblimp", t, tmp_path / "set/manifest.json", t / "sblimp.json", t / "sblimp"
    )
    assert res["convention"] == "sum_logprob" and res["step"] == 5
    sums = read_submission(t / "sblimp/syntactic/dev.txt")
    means = read_submission(t / "sblimp/mean_logprob/syntactic/dev.txt")
    for f, u in units.items():  # mean = sum / predicted tokens (units + EOS)
        assert means[f] == pytest.approx(sums[f] / (len(u) + 1), rel=1e-12)
    assert res["syntactic_all"] == syntactic_scores(gold, sums)["syntactic_all"]
    other = syntactic_scores(gold, means)["syntactic_all"]
    assert res["mean_logprob"]["syntactic_all"] == other
    flipped = evaluate_trial(
        "sblimp",
        t,
        tmp_path / "set/manifest.json",
        t / "b.json",
        t / "b",
        {"length_normalised": True},
    )
    assert flipped["convention"] == "mean_logprob"
    assert flipped["syntactic_all"] == other
    assert flipped["sum_logprob"]["syntactic_all"] == res["syntactic_all"]
    assert read_json(t / "b.json")["sum_logprob"]["submission"].endswith(
        "b/sum_logprob/syntactic/dev.txt"
    )


WORLD = {
    "kind": "synthetic_units",
    "seed": 1,
    "lexicon_size": 300,
    "n_train_utterances": 1500,
    "n_eval_utterances": 50,
}
SET = {
    "kind": "sblimp_synthetic",
    "world": "w",
    "n_per_type": 30,
    "min_pair_count": 3,
    "n_seen_voices": 2,
    "n_heldout_voices": 2,
}


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sblimp")
    prepare_dataset("w", WORLD, root / "w")
    prepare_dataset("s", SET, root / "s")
    return root / "s"


def test_synthetic_set_layout_and_pairs(synth_set: Path) -> None:
    man = read_json(synth_set / "manifest.json")
    gold = read_gold(synth_set)
    units = dict(read_units_text(synth_set / "units.txt"))
    assert set(units) == set(gold["filename"]) and len(gold) == 60 * 4 * 2
    assert man["ids_per_type"] == {"collocation_swap": 30, "follower_replaced": 30}
    assert {v["heldout"] for v in man["voices"]} == {True, False}
    assert toolkit_pairing_agrees(gold) == []
    for (t, _, _, _), pair in gold.groupby(["type", "subtype", "id", "voice"]):
        good, bad = (pair[pair["correct"] == c].iloc[0] for c in (1, 0))
        assert len(units[good["filename"]]) == len(units[bad["filename"]])  # matched lengths
        g, b = good["transcription"].split(), bad["transcription"].split()
        assert len(g) == len(b) and g != b
        if t == "collocation_swap":
            assert sorted(g) == sorted(b)  # same words, two adjacent ones swapped
        else:
            assert sum(x != y for x, y in zip(g, b, strict=True)) == 1
    report = run_checks(synth_set / "manifest.json")
    assert report["passed"] and "matched_lengths" in report["checks"]


def test_synthetic_controls_near_chance_topline_high(synth_set: Path) -> None:
    man = read_json(synth_set / "manifest.json")
    controls = read_json(synth_set / "controls.json")
    assert set(man["controls"]) == {"unit_unigram", "word_unigram"}
    assert controls["word_unigram"]["by_type"]["collocation_swap"]["score"] == 0.5  # all ties
    assert controls["word_unigram"]["syntactic_all"] == pytest.approx(0.5, abs=0.05)
    assert controls["unit_unigram"]["syntactic_all"] == pytest.approx(0.5, abs=0.1)
    assert man["toplines"]["word_bigram"]["syntactic_all"] > 0.85
    gold = read_gold(synth_set)
    again = syntactic_scores(gold, read_submission(synth_set / "controls/unit_unigram.txt"))
    assert again["syntactic_all"] == controls["unit_unigram"]["syntactic_all"]


def test_another_world_gives_another_set(synth_set: Path, tmp_path: Path) -> None:
    prepare_dataset("w", {**WORLD, "seed": 2}, tmp_path / "w")
    prepare_dataset("s", SET, tmp_path / "s")
    a = read_gold(synth_set)["transcription"]
    b = read_gold(tmp_path / "s")["transcription"]
    assert len(a) == len(b) and (a != b).mean() > 0.9


def test_too_many_items_fail_with_one_line(synth_set: Path) -> None:
    with pytest.raises(SeqlabError, match="dataset 'big': only .* collocation_swap items found"):
        prepare_dataset("big", {**SET, "n_per_type": 5000}, synth_set.parent / "big")
    assert not (synth_set.parent / "big" / "manifest.json").exists()
