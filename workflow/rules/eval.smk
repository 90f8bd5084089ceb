# Stage 4: evaluation of trained trials (sWUGGY and sBLIMP for unit LMs, PER for CTC
# decoders).
# Each evaluation writes one JSON beside the trial's metrics.json; summaries read them
# (seqlab.report.summary.EVAL_FILES) and trial_eval_files() lists them as inputs.
# Their cluster resources are the experiment's `eval_resources:` (eval_resource in common.smk:
# by default one GPU if training had any, 30 minutes), not the training's.

# --- sWUGGY and sBLIMP ---
# A synthetic set is drawn from the world of its synthetic_units dataset (and reads that
# dataset's train units for the unit-unigram control), so it waits for that manifest; real
# sets (swuggy_zerospeech, sblimp_zerospeech) go through prepare_data like any ingest.


rule prepare_zr_set:
    input:
        zr_world_manifest,
    output:
        "results/data/{dataset}/manifest.json",
    log:
        "results/logs/data/{dataset}.prepare.log",
    wildcard_constraints:
        dataset="|".join(ZR_SYNTH_SETS) or "NONE",
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


ruleorder: prepare_zr_set > prepare_data


rule swuggy:
    input:
        model="results/{exp}/runs/{run}/seed{seed}/model.pt",
        metrics="results/{exp}/runs/{run}/seed{seed}/metrics.json",
        set=lambda w: f"results/data/{zr_set('swuggy')(w)}/manifest.json",
        checks=ancient(lambda w: f"results/data/{zr_set('swuggy')(w)}/checks.json"),
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
        opts=zr_opts("swuggy"),
        trial=lambda w: f"results/{w.exp}/runs/{w.run}/seed{w.seed}",
    shell:
        "zr_score.py swuggy {params.trial} --set {input.set} --out {output.json} "
        "--submission {output.submission} --params {params.opts:q} > {log} 2>&1"


rule sblimp:
    input:
        model="results/{exp}/runs/{run}/seed{seed}/model.pt",
        metrics="results/{exp}/runs/{run}/seed{seed}/metrics.json",
        set=lambda w: f"results/data/{zr_set('sblimp')(w)}/manifest.json",
        checks=ancient(lambda w: f"results/data/{zr_set('sblimp')(w)}/checks.json"),
    output:
        json="results/{exp}/runs/{run}/seed{seed}/sblimp.json",
        submission=directory("results/{exp}/runs/{run}/seed{seed}/sblimp"),
    log:
        "results/{exp}/runs/{run}/seed{seed}/sblimp.log",
    conda:
        "../envs/seqlab.yaml"
    threads: train_threads
    resources:
        gpu=eval_resource("gpu"),
        cpus_per_task=eval_resource("cpus_per_task"),
        mem_mb=eval_resource("mem_mb"),
        runtime=eval_resource("runtime"),
    params:
        opts=zr_opts("sblimp"),
        trial=lambda w: f"results/{w.exp}/runs/{w.run}/seed{w.seed}",
    shell:
        "zr_score.py sblimp {params.trial} --set {input.set} --out {output.json} "
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
        "plot_zr.py swuggy {input} {output} > {log} 2>&1"


rule plot_sblimp:
    input:
        "results/{exp}/summary.csv",
    output:
        report(
            "results/{exp}/plots/sblimp.svg",
            caption="../report/sblimp.rst",
            category="{exp}",
            labels={"plot": "sBLIMP"},
        ),
    log:
        "results/logs/{exp}/plot_sblimp.log",
    conda:
        "../envs/seqlab.yaml"
    shell:
        "plot_zr.py sblimp {input} {output} > {log} 2>&1"


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
