# Helpers shared by every stage: experiments, runs, trials, paths and input functions.
# Rules know paths and wildcards; the logic of grids and run ids lives in seqlab.grid.

import json
import sys

from seqlab.grid import expand_runs, resolve_trial

EXPERIMENTS = config["experiments"]
DATASETS = config["datasets"]

RUNS = {name: expand_runs(name, exp) for name, exp in EXPERIMENTS.items()}

for _name, _exp in EXPERIMENTS.items():
    if _exp["dataset"] not in DATASETS:
        raise ValueError(
            f"experiments.{_name}.dataset: {_exp['dataset']!r} is not under datasets: "
            f"(have {sorted(DATASETS)})"
        )

# Scripts run with the interpreter that runs Snakemake (the project's venv) from any cwd.
PY = f"{sys.executable} {workflow.basedir}/workflow/scripts"


def trials(exp):
    """(run, seed) of every trial of an experiment."""
    return [
        (run, seed) for run in RUNS[exp] for seed in EXPERIMENTS[exp].get("seeds", [0])
    ]


def trial_files(exp, name):
    return [f"results/{exp}/runs/{run}/seed{seed}/{name}" for run, seed in trials(exp)]


def dataset_of(wildcards):
    return EXPERIMENTS[wildcards.exp]["dataset"]


def data_dir(wildcards):
    return f"results/data/{dataset_of(wildcards)}"


def trial_json(wildcards):
    """The resolved trial config as JSON: a params value, so editing it reruns the trial."""
    exp = EXPERIMENTS[wildcards.exp]
    d = data_dir(wildcards)
    data = {
        "dataset": exp["dataset"],
        "manifest": f"{d}/manifest.json",
        "checks": f"{d}/checks.json",
    }
    trial = resolve_trial(wildcards.exp, exp, wildcards.run, int(wildcards.seed), data)
    return json.dumps(trial, sort_keys=True)


def resource(key, default):
    """A training resource from the experiment's `resources:` block (SLURM profile maps it)."""
    return (
        lambda wildcards: EXPERIMENTS[wildcards.exp]
        .get("resources", {})
        .get(key, default)
    )


def train_threads(wildcards):
    return EXPERIMENTS[wildcards.exp]["train"].get("threads", 1)


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


COMPARE = config.get("compare", {})


def compare_inputs(wildcards):
    """final.json of each experiment (summary.csv for the optimizer pairing)."""
    spec = COMPARE[wildcards.name]
    name = (
        "final.json"
        if spec.get("kind", "experiments") == "experiments"
        else "summary.csv"
    )
    return [f"results/{e}/{name}" for e in spec["experiments"]]


#: experiment -> extra per-trial files its summary needs (evaluations), by file name.
#: Evaluations register a function (exp name, exp config) -> list of file names here.
EVAL_OUTPUTS = []


def trial_eval_files(exp):
    names = [n for f in EVAL_OUTPUTS for n in f(exp, EXPERIMENTS[exp])]
    return [p for n in names for p in trial_files(exp, n)]
