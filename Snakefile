# seqlab: sequence-model research as one Snakemake workflow.
#   snakemake --cores 2 results/lstm/final.json                   # laptop, embedded data
#   snakemake --profile profiles/slurm results/lstm/final.json    # cluster
#   snakemake report                                              # results/report.html
# The map is the README (and DESIGN.md); every config key is in config/README.md.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        expand("results/{exp}/final.json", exp=EXPERIMENTS),
        "results/report.html",
