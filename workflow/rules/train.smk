# Stage 3: one training job per trial (run x seed). Resumable state in ckpt/ is not a
# declared output, so a killed or failed job resumes where it stopped when rerun.


rule trial_config:
    output:
        TRIAL + "/config.json",
    params:
        trial=trial_json,
    log:
        "results/logs/{exp}/{run}/seed{seed}.config.log",
    shell:
        "{PY}/write_json.py {output} {params.trial:q} > {log} 2>&1"


rule train:
    input:
        config=TRIAL + "/config.json",
        manifest=lambda w: f"{data_dir(w)}/manifest.json",
        checks=lambda w: f"{data_dir(w)}/checks.json",
    output:
        metrics=TRIAL + "/metrics.json",
        log=TRIAL + "/log.jsonl",
        model=TRIAL + "/model.pt",
    log:
        TRIAL + "/train.log",
    threads: train_threads
    resources:
        gpu=resource("gpu", 0),
        cpus_per_task=resource("cpus_per_task", 1),
        mem_mb=resource("mem_mb", 4000),
        runtime=resource("runtime", 60),
    shell:
        "{PY}/train.py {input.config} > {log} 2>&1"
