# Stage 1: prepare a dataset (synthetic generation or ingest of real data) into its directory:
# the files of its kind (a unit dataset: the packed token store, plus WebDataset shards unless
# it was ingested from text) and manifest.json, written last. Only the keys that shape the data
# reach prepare: the `checks:` thresholds are the checks rule's params, so tuning one never
# rebuilds the data. The files a dataset reads are the rule's inputs: an edited units file or
# shard rebuilds it.


rule prepare_data:
    input:
        dataset_sources,
    output:
        "results/data/{dataset}/manifest.json",
    log:
        "results/logs/data/{dataset}.prepare.log",
    conda:
        "../envs/seqlab.yaml"
    params:
        cfg=lambda w: as_json(prepare_params(w.dataset)),
        out=lambda w: f"results/data/{w.dataset}",
    shell:
        "prepare_data.py --name {wildcards.dataset} "
        "--params {params.cfg:q} --out {params.out} > {log} 2>&1"
