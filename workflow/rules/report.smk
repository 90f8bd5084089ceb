# Stage 5: per-experiment summaries, cross-experiment comparisons, the HTML report.


rule summarize:
    input:
        trials=lambda w: trial_files(w.exp, "metrics.json"),
        checks=lambda w: f"{data_dir(w)}/checks.json",
    output:
        final="results/{exp}/final.json",
        summary=report(
            "results/{exp}/summary.csv",
            caption="../report/summary.rst",
            category="{exp}",
            labels={"table": "summary"},
        ),
        ledger="results/{exp}/ledger.md",
        train_loss=report(
            "results/{exp}/plots/train_loss.svg",
            caption="../report/loss_curves.rst",
            category="{exp}",
            labels={"plot": "train loss"},
        ),
        eval_loss=report(
            "results/{exp}/plots/eval_loss.svg",
            caption="../report/loss_curves.rst",
            category="{exp}",
            labels={"plot": "eval loss"},
        ),
        best=report(
            "results/{exp}/plots/best_eval_loss.svg",
            caption="../report/best_eval_loss.rst",
            category="{exp}",
            labels={"plot": "best eval loss"},
        ),
    params:
        trials=lambda w: [f"results/{w.exp}/runs/{r}/seed{s}" for r, s in trials(w.exp)],
        plateau=lambda w: as_json(EXPERIMENTS[w.exp].get("plateau", {})),
        base=lambda w: as_json(EXPERIMENTS[w.exp]["train"]),
    log:
        "results/logs/{exp}/summarize.log",
    shell:
        "{PY}/summarize.py --out results/{wildcards.exp} --checks {input.checks} "
        "--plateau {params.plateau:q} --base-train {params.base:q} {params.trials} "
        "> {log} 2>&1"


rule compare:
    input:
        compare_inputs,
    output:
        report(
            "results/compare/{name}.csv",
            caption="../report/compare.rst",
            category="comparisons",
            labels={"table": "{name}"},
        ),
    params:
        spec=lambda w: as_json(COMPARE[w.name]),
    log:
        "results/logs/compare/{name}.log",
    shell:
        "{PY}/compare.py {wildcards.name} {params.spec:q} {output} > {log} 2>&1"


rule report:
    input:
        finals=expand("results/{exp}/final.json", exp=EXPERIMENTS),
        compare=expand("results/compare/{name}.csv", name=COMPARE),
    output:
        "results/report.html",
    params:
        exps=list(EXPERIMENTS),
    log:
        "results/logs/report.log",
    shell:
        "{PY}/report.py --experiments {params.exps} --compare {input.compare} "
        "--out {output} > {log} 2>&1"
