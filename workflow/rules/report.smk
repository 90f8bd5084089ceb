# Stage 5: per-experiment summaries, cross-experiment comparisons, the HTML report.


rule summarize:
    input:
        trials=lambda w: trial_files(w.exp, "metrics.json"),
        # final.json names each trial's model.pt and log.jsonl: a deleted one is rebuilt
        products=lambda w: [f for n in TRIAL_OUTPUTS[1:] for f in trial_files(w.exp, n)],
        evals=lambda w: trial_eval_files(w.exp),
        checks=ancient(lambda w: f"{data_dir(w)}/checks.json"),
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
        eval_curve=report(
            "results/{exp}/plots/eval.svg",
            caption="../report/loss_curves.rst",
            category="{exp}",
            labels={"plot": "eval curves"},
        ),
        best=report(
            "results/{exp}/plots/best.svg",
            caption="../report/best.rst",
            category="{exp}",
            labels={"plot": "best per run"},
        ),
    log:
        "results/logs/{exp}/summarize.log",
    conda:
        "../envs/seqlab.yaml"
    params:
        trials=lambda w: [f"results/{w.exp}/runs/{r}/seed{s}" for r, s in trials(w.exp)],
        plateau=lambda w: as_json(EXPERIMENTS[w.exp].get("plateau", {})),
        base=lambda w: as_json(EXPERIMENTS[w.exp]["train"]),
    shell:
        "summarize.py --out results/{wildcards.exp} --checks {input.checks} "
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
    log:
        "results/logs/compare/{name}.log",
    conda:
        "../envs/seqlab.yaml"
    params:
        spec=lambda w: as_json(COMPARE[w.name]),
    shell:
        "compare.py {wildcards.name} {params.spec:q} {output} > {log} 2>&1"


# Precision study: every mode relative to fp32 (tokens/s, memory, loss, diverged, skipped).
localrules:
    precision,


rule precision:
    input:
        "results/{exp}/summary.csv",
    output:
        table=report(
            "results/{exp}/precision.csv",
            caption="../report/precision.rst",
            category="{exp}",
            labels={"table": "precision vs fp32"},
        ),
        plot=report(
            "results/{exp}/plots/precision.svg",
            caption="../report/precision_plot.rst",
            category="{exp}",
            labels={"plot": "precision vs fp32"},
        ),
    log:
        "results/logs/{exp}/precision.log",
    conda:
        "../envs/seqlab.yaml"
    shell:
        "precision.py {input} {output.table} {output.plot} > {log} 2>&1"


rule report:
    input:
        finals=expand("results/{exp}/final.json", exp=EXPERIMENTS),
        compare=expand("results/compare/{name}.csv", name=COMPARE),
        precision=expand("results/{exp}/plots/precision.svg", exp=precision_exps()),
        swuggy=expand("results/{exp}/plots/swuggy.svg", exp=zr_exps("swuggy")),
        sblimp=expand("results/{exp}/plots/sblimp.svg", exp=zr_exps("sblimp")),
    output:
        "results/report.html",
    log:
        "results/logs/report.log",
    conda:
        "../envs/seqlab.yaml"
    params:
        exps=list(EXPERIMENTS),
    shell:
        "report.py --experiments {params.exps} --compare {input.compare} "
        "--out {output} > {log} 2>&1"
