# Stage 4: evaluation of trained trials (sWUGGY for unit LMs, PER for CTC decoders).
# Each evaluation writes one JSON beside the trial's metrics.json; summaries read them
# (seqlab.report.summary.EVAL_FILES) and trial_eval_files() lists them as inputs.
# Their cluster resources are the experiment's `eval_resources:` (eval_resource in common.smk:
# by default one GPU if training had any, 30 minutes), not the training's.

# --- sWUGGY ---
# A synthetic set is drawn from the world of its synthetic_units dataset (and reads that
# dataset's train units for the unit-unigram control), so it waits for that manifest; real
# sets (swuggy_zerospeech) go through prepare_data like any ingest.


rule prepare_swuggy_set:
    input:
        swuggy_world_manifest,
    output:
        "results/data/{dataset}/manifest.json",
    log:
        "results/logs/data/{dataset}.prepare.log",
    wildcard_constraints:
        dataset="|".join(SWUGGY_SYNTH_SETS) or "NONE",
    conda:
        "../envs/seqlab.yaml"
    params:
        cfg=lambda w, input: as_json(
            {**DATASETS[w.dataset], "world_manifest": str(input[0])}
        ),
        out=lambda w: f"results/data/{w.dataset}",
    shell:
        "prepare_data.py --name {wildcards.dataset} "
        "--params {params.cfg:q} --out {params.out} > {log} 2>&1"


ruleorder: prepare_swuggy_set > prepare_data


rule swuggy:
    input:
        model="results/{exp}/runs/{run}/seed{seed}/model.pt",
        metrics="results/{exp}/runs/{run}/seed{seed}/metrics.json",
        set=lambda w: f"results/data/{swuggy_set(w)}/manifest.json",
        checks=ancient(lambda w: f"results/data/{swuggy_set(w)}/checks.json"),
    output:
        json="results/{exp}/runs/{run}/seed{seed}/swuggy.json",
        submission=directory("results/{exp}/runs/{run}/seed{seed}/swuggy"),
    log:
        "results/{exp}/runs/{run}/seed{seed}/swuggy.log",
    conda:
        "../envs/seqlab.yaml"
    threads: train_threads
    resources:
        gpu=eval_resource("gpu"),
        cpus_per_task=eval_resource("cpus_per_task"),
        mem_mb=eval_resource("mem_mb"),
        runtime=eval_resource("runtime"),
    params:
        opts=swuggy_opts,
        trial=lambda w: f"results/{w.exp}/runs/{w.run}/seed{w.seed}",
    shell:
        "zr_score.py swuggy {params.trial} --set {input.set} --out {output.json} "
        "--submission {output.submission} --params {params.opts:q} > {log} 2>&1"


rule plot_swuggy:
    input:
        "results/{exp}/summary.csv",
    output:
        report(
            "results/{exp}/plots/swuggy.svg",
            caption="../report/swuggy.rst",
            category="{exp}",
            labels={"plot": "sWUGGY"},
        ),
    log:
        "results/logs/{exp}/plot_swuggy.log",
    conda:
        "../envs/seqlab.yaml"
    shell:
        "plot_swuggy.py {input} {output} > {log} 2>&1"


# --- PER ---


rule per:
    input:
        model="results/{exp}/runs/{run}/seed{seed}/model.pt",
        metrics="results/{exp}/runs/{run}/seed{seed}/metrics.json",
    output:
        "results/{exp}/runs/{run}/seed{seed}/per.json",
    log:
        "results/{exp}/runs/{run}/seed{seed}/per.log",
    conda:
        "../envs/seqlab.yaml"
    resources:
        gpu=eval_resource("gpu"),
        cpus_per_task=eval_resource("cpus_per_task"),
        mem_mb=eval_resource("mem_mb"),
        runtime=eval_resource("runtime"),
    shell:
        "per.py {input.model} {output} > {log} 2>&1"
