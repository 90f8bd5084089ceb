# seqlab: sequence-model research as one Snakemake workflow.
#   snakemake --cores 2 results/lstm/final.json                   # laptop, embedded data
#   snakemake --workflow-profile profiles/slurm results/lstm/final.json  # cluster
#   snakemake report                                              # results/report.html
# The map is the README (and DESIGN.md); every config key is in config/README.md.

from snakemake.utils import min_version, validate

min_version("9.0")


# A --configfile replaces the default config instead of being merged into it (Snakemake
# merges by default, which would add the demo experiments to every cluster config).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "NONE",
    dataset="|".join(DATASETS) or "NONE",
    run=r"[A-Za-z0-9._+~-]+",
    seed=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/report.smk"


# `all` names every trial's files, not only the summaries: Snakemake does not regenerate a
# deleted intermediate whose consumers are up to date, and a user who deletes one trial's
# metrics.json expects `snakemake` to redo exactly that trial (and then the summaries).
rule all:
    default_target: True
    input:
        [
            f
            for e in EXPERIMENTS
            for f in trial_files(e, "metrics.json") + trial_eval_files(e)
        ],
        expand("results/{exp}/final.json", exp=EXPERIMENTS),
        "results/report.html",
