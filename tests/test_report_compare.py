"""Cross-experiment comparisons and the tables that carry them: computed verdicts, short
hashes, the one precision table (trial directories from test_report's builders)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from test_report import (
    BASE_TRAIN,
    BASELINE,
    converging,
    lstm_final,
    lstm_trials,
    make_trial,
    plateauing,
)

from seqlab.report import compare, html, ledger, overview, plots, precision_study, summary, tables

__all__ = ["lstm_trials"]  # the fixture, imported for pytest


def adam_vs_adamw(tmp_path: Path, eps: float = 0.0) -> pd.DataFrame:
    """Ablation trials: AdamW(wd=0) vs Adam on the same seeds; `eps` perturbs AdamW's curve."""
    dirs = []
    for seed in range(2):
        for name, shift in (("adam", 0.0), ("adamw", eps)):
            dirs.append(
                make_trial(
                    tmp_path,
                    "ablation",
                    f"optim.name~{name}",
                    seed,
                    {"optim.name": name},
                    lambda s, k, d=shift: converging(s, k) + d,
                )
            )
    return summary.load_trials(dirs)


def test_compare_optimizers_reports_what_the_data_shows(tmp_path: Path) -> None:
    same = compare.compare_optimizers(adam_vs_adamw(tmp_path / "a"))
    assert len(same) == 2 and set(same["verdict"]) == {"identical"}
    assert (same["max |diff| train loss"] == 0).all() and (same["steps_compared"] == 60).all()
    near = compare.compare_optimizers(adam_vs_adamw(tmp_path / "b", 1e-6))
    assert set(near["verdict"]) == {"within 0.0001"}
    far = compare.compare_optimizers(adam_vs_adamw(tmp_path / "c", 0.3))
    assert set(far["verdict"]) == {"differs"}
    assert far["final_eval_loss |diff|"].to_numpy() == pytest.approx([0.3, 0.3])


def gpt2_final(tmp_path: Path) -> dict:
    gpt2 = {**BASE_TRAIN, "model": {"arch": "gpt2", "n_embd": 256, "n_layer": 2, "n_head": 4}}
    gpt2["optim"] = {"name": "adamw", "lr": 0.0005, "betas": [0.9, 0.98], "weight_decay": 0.01}
    dirs = [make_trial(tmp_path, "gpt2", "base", s, {}, plateauing, base=gpt2) for s in range(3)]
    return summary.make_final(summary.load_trials(dirs), {"unigram_entropy_nats": BASELINE})


def test_compare_experiments_table(lstm_trials: list[Path], tmp_path: Path) -> None:
    finals = {"lstm": lstm_final(lstm_trials), "gpt2": gpt2_final(tmp_path)}
    table = compare.compare_experiments(finals)
    assert list(zip(table["experiment"], table["run"], strict=True)) == [
        ("lstm", "optim.lr~0.0005"),
        ("lstm", "optim.lr~0.01"),
        ("gpt2", "base"),
    ]
    row = table.set_index("run").loc["base"]
    assert (row["model.arch"], row["optim.lr"], row["plateau_rate"]) == ("gpt2", 0.0005, 1.0)
    assert " ± " in row["eval_loss@40"] and row["tokens_per_s mean"] == pytest.approx(1010.0)
    out = compare.write_compare_csv(table, tmp_path / "compare" / "lstm_vs_gpt2.csv")
    assert len(pd.read_csv(out)) == 3


def test_report_is_self_contained(lstm_trials: list[Path], tmp_path: Path) -> None:
    res = tmp_path / "results"
    experiments = {}
    for name, final, trials in (
        ("lstm", lstm_final(lstm_trials), lstm_trials),
        ("gpt2", gpt2_final(tmp_path / "g"), None),
    ):
        exp_dir = res / name
        df = summary.load_trials(trials or final["generated_from"])
        svgs = [
            plots.plot_loss_curves(df, exp_dir / "plots" / "train_loss.svg", baseline=BASELINE),
            plots.plot_seed_points(final, "best_eval_loss", exp_dir / "plots" / "best.svg"),
        ]
        summary.write_final(final, exp_dir / "final.json")
        experiments[name] = {
            "final": exp_dir / "final.json",
            "summary_csv": summary.write_summary_csv(df, exp_dir / "summary.csv"),
            "ledger": ledger.write_ledger(name, final, BASE_TRAIN, exp_dir / "ledger.md"),
            "plots": svgs,
            "trial_dirs": final["generated_from"],
        }
    table = compare.compare_experiments(
        {n: json.loads(Path(e["final"]).read_text()) for n, e in experiments.items()}
    )
    csv = compare.write_compare_csv(table, res / "compare" / "lstm_vs_gpt2.csv")
    out = html.build_report(experiments, [csv], res / "report.html")
    page = out.read_text()
    for sid in (
        "exp-lstm",
        "exp-gpt2",
        "compare",
        "compare-lstm_vs_gpt2",
        "exp-lstm-curves",
        "exp-lstm-runs",
        "overview",
        "overview-experiments",
        "exp-lstm-factors",
        "exp-lstm-plateau",
        "exp-lstm-ledger",
        "exp-lstm-trials",
    ):
        assert f'id="{sid}"' in page, sid
    assert page.count("<svg") == 4
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "<link" not in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "inlined SVG ids must not collide"
    assert "optim.lr: 0.01 → 0.0005" in page
    # human captions (with a link to the file), the answers before the details
    assert "<figcaption>Training loss of each run over steps" in page
    assert "<figcaption>train" not in page and 'href="lstm/plots/train_loss.svg"' in page
    assert page.index('id="overview"') < page.index('id="exp-lstm"')
    assert "optim.lr decides the plateau: 5e-4 plateaus on 3/3 seeds" in page
    # trial outputs are linked relative to the page
    assert 'href="../lstm/runs/optim.lr~0.01/seed0/metrics.json"' in page
    html.build_report(experiments, [csv], res / "report2.html")
    assert (res / "report2.html").read_bytes() == out.read_bytes()


def test_comparison_verdicts_are_computed(lstm_trials: list[Path], tmp_path: Path) -> None:
    same = compare.compare_optimizers(adam_vs_adamw(tmp_path / "a"))
    assert overview.compare_verdict(same) == (
        "adamw (weight_decay 0) equals adam on all 2 seeds (2 pairs with every other setting "
        "equal): identical loss curves"
    )
    far = overview.compare_verdict(compare.compare_optimizers(adam_vs_adamw(tmp_path / "b", 0.3)))
    assert far.startswith("adamw (weight_decay 0) vs adam: the same within tolerance on 0/2")
    finals = {"lstm": lstm_final(lstm_trials), "gpt2": gpt2_final(tmp_path / "g")}
    text = overview.compare_verdict(compare.compare_experiments(finals))
    assert text.startswith("lowest eval_loss@40: lstm (") and "; gpt2 " in text
    assert text.endswith("plateau rate of each best run: lstm 0%, gpt2 100%")
    shown = overview.display_table(compare.compare_experiments(finals))
    assert "eval_loss@40 mean" not in shown and " ± " in shown["eval_loss@40"].iloc[0]
    prec = pd.DataFrame({"precision": ["fp32", "amp_bf16", "fp16_naive"],
                         "throughput_ratio": [1.0, 0.49, 1.1], "loss_delta": [0.0, 4e-4, None],
                         "diverged": [False, False, True], "skipped": [False] * 3})  # fmt: skip
    assert overview.compare_verdict(prec) == (
        "tokens/s vs fp32: amp_bf16 0.49×; final loss within 0.0004 nats of fp32; "
        "diverged: fp16_naive"
    )


def test_tables_shorten_hashes_and_wrap_ids() -> None:
    page = tables.html_table(["run", "sha", "n"], [["a~1__b~2", "f" * 64, 1234567]], "t")
    assert f'title="{"f" * 64}">ffffffffff…</span>' in page
    assert "a~1__<wbr>b~2" in page and '<td class="num">1,234,567</td>' in page
    assert "<h3>Run</h3>" in html.md_to_html("# Run\n\n| a |\n| --- |\n| `x` |\n")
    assert "<code>x</code>" in html.md_to_html("| a |\n| --- |\n| `x` |\n")


def test_one_precision_table_for_every_printer() -> None:
    """benchmarks/precision.py and lm.py print what the pipeline writes: one table, one format."""
    df = pd.DataFrame({
        "experiment": ["e", "e"], "overrides": ['{"precision": "fp32"}', '{"precision": "x"}'],
        "cfg.precision": ["fp32", "amp_bf16"], "stop_reason": ["max_steps", "diverged"],
        "tokens_per_s": [100.0, 50.0], "ms_per_iter": [10.0, 20.0], "peak_mem_mb": [300.0, 150.0],
        "peak_mem_kind": ["cpu_peak_rss"] * 2, "final_eval_loss": [2.0, float("nan")],
    })  # fmt: skip
    table = precision_study.precision_table(df)
    text = precision_study.format_precision_table(table)
    head, fp32, bf16 = text.splitlines()
    assert head.split()[:3] == ["precision", "n_seeds", "tokens_per_s"] and "mfu" not in head
    assert bf16.split()[:3] == ["amp_bf16", "1", "50"] and "0.5" in bf16 and "True" in bf16
    rec = precision_study.table_records(table)
    assert rec[1]["loss_delta"] is None and rec[0]["throughput_ratio"] == 1.0
    assert json.dumps(rec, allow_nan=False)  # strict JSON: NaN became null
