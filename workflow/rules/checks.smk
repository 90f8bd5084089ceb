# Stage 2: tokenization checks. A failed check fails the rule with one line naming the
# shard, the sample and the check; training depends on checks.json.


rule check_data:
    input:
        "results/data/{dataset}/manifest.json",
    output:
        "results/data/{dataset}/checks.json",
    log:
        "results/logs/data/{dataset}.checks.log",
    conda:
        "../envs/seqlab.yaml"
    params:
        cfg=lambda w: as_json(DATASETS[w.dataset]["checks"]),
    shell:
        "check_data.py {input} {output} " "--params {params.cfg:q} > {log} 2>&1"
