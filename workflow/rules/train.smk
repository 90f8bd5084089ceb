# Stage 3: one training job per trial (run x seed). Resumable state in ckpt/ is not a
# declared output, so a killed or failed job resumes where it stopped when rerun.


rule trial_config:
    output:
        "results/{exp}/runs/{run}/seed{seed}/config.json",
    log:
        "results/logs/{exp}/{run}/seed{seed}.config.log",
    conda:
        "../envs/seqlab.yaml"
    params:
        trial=trial_json,
    shell:
        "write_json.py {output} {params.trial:q} > {log} 2>&1"


rule train:
    input:
        config="results/{exp}/runs/{run}/seed{seed}/config.json",
        manifest=lambda w: f"{data_dir(w)}/manifest.json",
        # ancient: a gate, not data (a retuned check that passes retrains nothing)
        checks=ancient(lambda w: f"{data_dir(w)}/checks.json"),
        init=init_input,
    output:
        metrics="results/{exp}/runs/{run}/seed{seed}/metrics.json",
        log="results/{exp}/runs/{run}/seed{seed}/log.jsonl",
        # update: Snakemake keeps model.pt while the trial reruns (and puts it back if the
        # job fails); it is the verified copy that restores a lost ckpt/best.pt
        model=update("results/{exp}/runs/{run}/seed{seed}/model.pt"),
    log:
        "results/{exp}/runs/{run}/seed{seed}/train.log",
    group:
        pack_group
    conda:
        "../envs/seqlab.yaml"
    threads: train_threads
    resources:
        gpu=train_gpu,
        gres=train_gres,
        cpus_per_task=resource("cpus_per_task", 1),
        mem_mb=resource("mem_mb", 4000),
        runtime=resource("runtime", 60),
        # SLURM only (ignored locally): warn the trainer before the time limit
        slurm_extra=slurm_time_signal,
    params:
        launch=train_launcher,
    shell:
        # stderr (errors, a lost best) goes to the log and to the console; both streams
        # append (Snakemake removes the log before the job), so neither overwrites the other
        "{params.launch}train.py {input.config} >> {log} 2> >(tee -a {log} >&2)"
