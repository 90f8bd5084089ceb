# seqlab: sequence-model research as one Snakemake workflow.
#   snakemake --cores 2 results/lstm/final.json                 # laptop, embedded data
#   snakemake --profile profiles/slurm results/lstm/final.json  # cluster
#   snakemake --cores 2 report                                  # results/report.html
# The map is the README and docs/architecture.md; every config key is in config/README.md.

import re
import sys

from snakemake.utils import min_version

from seqlab.config_load import load_config
from seqlab.data.sources import require_source_files
from seqlab.errors import ConfigError

min_version("9.0")


# The config is read here, once, before any job: the YAML files by seqlab's loader (invalid
# YAML or a duplicate key is told as file:line), the --config values over them, validated with
# every default filled, the data files it names found; one line per problem and exit 1 (no
# traceback). A --configfile replaces the default config instead of being merged into it
# (Snakemake merges by default, which would add the demo experiments to every cluster config).
CONFIGFILES = [str(f) for f in workflow.config_settings.configfiles] or [
    "config/config.yaml"
]
try:
    config.update(load_config(CONFIGFILES, workflow.config_settings.config))
    require_source_files(config["datasets"])
except ConfigError as e:
    sources = CONFIGFILES + ["--config"] * bool(workflow.config_settings.config)
    sys.exit(f"config error ({', '.join(sources)}):\n{e}")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    exp="|".join(map(re.escape, EXPERIMENTS)) or "NONE",
    dataset="|".join(map(re.escape, DATASETS)) or "NONE",
    run=r"[A-Za-z0-9._+~-]+",
    seed=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/report.smk"


# `all` names every declared file of every trial, not only the summaries: Snakemake does not
# regenerate a deleted intermediate whose consumers are up to date, and a user who deletes one
# trial's metrics.json, model.pt or log.jsonl expects `snakemake` to redo exactly that trial.
rule all:
    default_target: True
    input:
        [f for e in EXPERIMENTS for n in TRIAL_OUTPUTS for f in trial_files(e, n)],
        [f for e in EXPERIMENTS for f in trial_eval_files(e)],
        expand("results/{exp}/final.json", exp=EXPERIMENTS),
        "results/report.html",
