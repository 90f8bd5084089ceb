"""sWUGGY: the official scoring rules on hand-made files, file round trips, LM scores, sets."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqlab.data.checks import run_checks
from seqlab.data.ingest import read_units_text, write_units_text
from seqlab.data.prepare import prepare_dataset
from seqlab.data.swuggy_files import read_gold, read_submission, write_gold, write_submission
from seqlab.errors import SeqlabError
from seqlab.eval.zr import lm_scores
from seqlab.files import read_json
from seqlab.models import build_model
from seqlab.scoring.swuggy import lexical_scores, lexical_scores_seen_heldout

# id: (frequency, length, {voice: (word score, nonword score)}); pair scores in the comments
HAND = {
    1: (0, 3, {"A": (2.0, 1.0), "B": (-1.5, -1.5)}),  # 1, tie 0.5 -> 0.75, band oov
    2: (3, 3, {"A": (-4.0, -3.0), "B": (-2.0, -3.0)}),  # 0, 1 -> 0.5, band 1-5
    3: (5, 4, {"A": (0.0, -1.0), "B": (0.0, -0.1)}),  # 1, 1 -> 1.0, 5 is in 6-20 (right-open)
    4: (150, 4, {"A": (-9.0, -1.0), "B": (-9.0, -1.0)}),  # 0, 0 -> 0.0, band >100
    5: (20, 5, {"A": (-2.0, -2.0), "B": (-1.0, -2.0)}),  # tie, 1 -> 0.75, 20 is in 21-100
    6: (2, 5, {"A": (1.0, 0.0), "B": (1.0, 0.5)}),  # 1, 1 -> 1.0, band 1-5
}


def hand_files() -> tuple[pd.DataFrame, dict[str, float]]:
    """The HAND items as a gold table (rows shuffled: pairing must not rely on order)."""
    rows, scores = [], {}
    for i, (freq, length, voices) in HAND.items():
        for v, pair in voices.items():
            for correct, s in zip((1, 0), pair, strict=True):
                name = f"f{i}{v}{correct}"
                rows.append({"id": i, "filename": name, "voice": v, "frequency": freq,
                             "word": f"w{i}" if correct else f"nw{i}", "phones": "AH B",
                             "length": length, "correct": correct})  # fmt: skip
                scores[name] = s
    gold = pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return gold, scores


def test_official_rules_on_hand_made_scores() -> None:
    gold, scores = hand_files()
    res = lexical_scores(gold, scores)
    assert res["lexical_all"] == pytest.approx((0.75 + 0.5 + 1 + 0 + 0.75 + 1) / 6)
    bands = res["by_frequency"]
    assert {k: b["n"] for k, b in bands.items()} == {
        "oov": 1, "1-5": 2, "6-20": 1, "21-100": 1, ">100": 1}  # fmt: skip
    assert bands["1-5"]["score"] == pytest.approx(0.75)
    assert bands["6-20"]["score"] == 1.0 and bands["21-100"]["score"] == 0.75
    # band means weighted by count, oov out: (2 x 0.75 + 1 + 0.75 + 0) / 5, not their plain mean
    assert res["lexical_invocab"] == pytest.approx(3.25 / 5)
    assert res["by_length"]["3"]["score"] == pytest.approx(0.625)
    assert res["by_length"]["5"] == {"n": 2, "score": 0.875, "std": pytest.approx(0.1767767)}
    assert res["n_ids"] == 6 and res["n_pairs"] == 12 and res["n_unpaired"] == 0


def test_voice_split_and_subsets() -> None:
    gold, scores = hand_files()
    res = lexical_scores_seen_heldout(gold, scores, heldout=["B"])
    assert res["seen"]["lexical_all"] == pytest.approx(3.5 / 6)
    assert res["heldout"]["lexical_all"] == pytest.approx(4.5 / 6)
    assert res["heldout"]["n_pairs"] == 6
    assert "seen" not in lexical_scores_seen_heldout(gold, scores)


def test_files_round_trip_and_score_from_disk(tmp_path: Path) -> None:
    gold, scores = hand_files()
    scores["f1A1"] = 1 / 3  # a float that only survives an exact write
    write_gold(tmp_path / "gold.csv", gold)
    write_submission(tmp_path / "dev.txt", scores)
    back = read_submission(tmp_path / "dev.txt")
    assert back == scores
    gold_back = read_gold(tmp_path)  # a directory holding gold.csv, as in the ZR2021 layout
    assert list(gold_back.columns) == list(gold.columns)
    assert lexical_scores(gold_back, back) == lexical_scores(gold, scores)
    line = (tmp_path / "dev.txt").read_text().splitlines()[0]
    assert len(line.split(" ")) == 2
    items = [("aXb", np.array([3, 0, 255], np.uint16)), ("zz", np.array([7], np.uint16))]
    for fmt in ("tab", "space"):
        write_units_text(tmp_path / f"u.{fmt}", items, fmt)
        got = read_units_text(tmp_path / f"u.{fmt}")
        assert [(n, u.tolist()) for n, u in got] == [(n, u.tolist()) for n, u in items]


def test_bad_files_fail_with_one_line(tmp_path: Path) -> None:
    gold, scores = hand_files()
    del scores["f2B0"]
    with pytest.raises(SeqlabError, match="1 gold filenames have no score .*f2B0"):
        lexical_scores(gold, scores)
    (tmp_path / "bad.txt").write_text("abc 0.5\nabc\n")
    with pytest.raises(SeqlabError, match=r"bad.txt:2: must be '<filename> <score>'"):
        read_submission(tmp_path / "bad.txt")
    gold.drop(columns=["voice"]).to_csv(tmp_path / "gold.csv", index=False)
    with pytest.raises(SeqlabError, match=r"missing columns \['voice'\]"):
        read_gold(tmp_path / "gold.csv")


def test_lm_scores_are_batch_invariant_and_exact() -> None:
    torch.manual_seed(0)
    model = build_model({"arch": "lstm", "n_embd": 8, "hidden": 8, "n_layer": 1}, 12)
    rng = np.random.default_rng(0)
    items = [rng.integers(0, 10, n) for n in (1, 5, 3, 9, 5, 2, 7)]
    one = lm_scores(model, items, bos=10, eos=11, batch_size=1)
    many = lm_scores(model, items, bos=10, eos=11, batch_size=4)
    np.testing.assert_allclose(one, many, rtol=1e-5)
    x = torch.tensor([[10, *items[3]]])
    y = torch.tensor([[*items[3], 11]])
    logp = torch.log_softmax(model(x), -1).gather(-1, y[..., None]).sum().item()
    assert one[3] == pytest.approx(logp, rel=1e-5)
    norm = lm_scores(model, items, bos=10, eos=11, batch_size=3, length_normalised=True)
    np.testing.assert_allclose(norm, one / np.array([len(u) + 1 for u in items]), rtol=1e-5)
    gpt = build_model({"arch": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "block_size": 8},
                      12)  # fmt: skip
    with pytest.raises(SeqlabError, match="block_size 8"):
        lm_scores(gpt, items, bos=10, eos=11)


WORLD = {"kind": "synthetic_units", "seed": 1, "lexicon_size": 300,
         "n_train_utterances": 1500, "n_eval_utterances": 50}  # fmt: skip
SET = {"kind": "swuggy_synthetic", "world": "w", "n_items": 40, "n_seen_voices": 2,
       "n_heldout_voices": 2}  # fmt: skip


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("swuggy")
    prepare_dataset("w", WORLD, root / "w")
    prepare_dataset("s", SET, root / "s")
    return root / "s"


def test_synthetic_set_layout_and_matching(synth_set: Path) -> None:
    man = read_json(synth_set / "manifest.json")
    gold = read_gold(synth_set / "gold.csv")
    units = dict(read_units_text(synth_set / "units.txt"))
    assert set(units) == set(gold["filename"]) and len(gold) == 40 * 4 * 2
    assert gold.groupby(["id", "voice"])["correct"].agg(sorted).map([0, 1].__eq__).all()
    assert {v["heldout"] for v in man["voices"]} == {True, False}
    assert man["ids_per_band"]["oov"] >= 8 and sum(man["ids_per_band"].values()) == 40
    for (_, _), pair in gold.groupby(["id", "voice"]):
        w, nw = (pair[pair["correct"] == c].iloc[0] for c in (1, 0))
        a, b = units[w["filename"]], units[nw["filename"]]
        assert len(a) == len(b) and w["length"] == nw["length"]  # shared durations
        diff = [x != y for x, y in zip(w["phones"].split(), nw["phones"].split(), strict=True)]
        assert 1 <= sum(diff) <= 2
    assert run_checks(synth_set / "manifest.json")["passed"]


def test_controls_near_chance(synth_set: Path) -> None:
    controls = read_json(synth_set / "controls.json")
    assert controls["phoneme_bigram"]["lexical_all"] == pytest.approx(0.5, abs=0.03)
    assert controls["unit_unigram"]["lexical_all"] == pytest.approx(0.5, abs=0.1)
    gold = read_gold(synth_set / "gold.csv")
    sub = read_submission(synth_set / "controls" / "unit_unigram.txt")
    again = lexical_scores(gold, sub)["lexical_all"]
    assert math.isclose(again, controls["unit_unigram"]["lexical_all"])


def test_checks_catch_a_missing_item(synth_set: Path, tmp_path: Path) -> None:
    bad = tmp_path / "s"
    bad.mkdir()
    for f in ("manifest.json", "gold.csv", "controls.json"):
        (bad / f).write_bytes((synth_set / f).read_bytes())
    lines = (synth_set / "units.txt").read_text().splitlines()
    (bad / "units.txt").write_text("\n".join(lines[1:]) + "\n")
    report = run_checks(bad / "manifest.json")
    assert not report["passed"]
    assert report["failures"][0].startswith("check files_match failed:")
    assert lines[0].split("\t")[0] in report["failures"][0]


def test_zerospeech_ingest_checks_names(synth_set: Path, tmp_path: Path) -> None:
    units = tmp_path / "units.txt"
    lines = (synth_set / "units.txt").read_text().splitlines()
    units.write_text("\n".join(lines) + "\n")
    cfg = {"kind": "swuggy_zerospeech", "gold": str(synth_set), "units": str(units)}
    man = prepare_dataset("real", cfg, tmp_path / "real")
    assert man["kind"] == "swuggy_zerospeech" and "unit_unigram" in man["controls"]
    assert run_checks(tmp_path / "real" / "manifest.json")["passed"]
    gz = tmp_path / "units.txt.gz"  # a gzip-compressed units file is read as it is
    gz.write_bytes(gzip.compress(units.read_bytes()))
    prepare_dataset("real_gz", {**cfg, "units": str(gz)}, tmp_path / "real_gz")
    plain, packed = ((tmp_path / d / "units.txt").read_text() for d in ("real", "real_gz"))
    assert packed == plain
    units.write_text("\n".join(lines[:-1]) + "\nextra1\t1,2\n")
    with pytest.raises(SeqlabError, match="1 gold filenames have no units.*1 units names are not"):
        prepare_dataset("real", cfg, tmp_path / "real2")
