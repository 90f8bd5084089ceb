# Helpers shared by every stage: experiments, runs, trials, paths and input functions.
# Rules know paths and wildcards; the logic of grids and run ids lives in seqlab.grid.

import json
import os
import re
import sys

from seqlab.data.sources import source_files
from seqlab.grid import expand_runs, resolve_trial

# Read and validated once by the Snakefile (seqlab.config_load), every default filled.
EXPERIMENTS = config["experiments"]
DATASETS = config["datasets"]

RUNS = {name: expand_runs(name, exp) for name, exp in EXPERIMENTS.items()}

#: every declared output of a trial (the train rule's); `all` asks for each, so deleting one
#: reruns its trial
TRIAL_OUTPUTS = ("metrics.json", "model.pt", "log.jsonl")

# Scripts are run by name: the project's venv (the interpreter running Snakemake) and
# workflow/scripts come first on PATH for every job. Not a rule param, so moving the checkout
# or the venv reruns nothing; `set -euo pipefail` is Snakemake's own default prefix.
shell.prefix(
    f'set -euo pipefail; export PATH="{workflow.basedir}/workflow/scripts:'
    f'{os.path.dirname(sys.executable)}:$PATH"; '
)


def train_launcher(wildcards):
    """'' for one process; torchrun with one process per GPU when a trial asks for > 1."""
    gpus = EXPERIMENTS[wildcards.exp].get("resources", {}).get("gpu", 0)
    if gpus <= 1:
        return ""
    return f"torchrun --standalone --nproc_per_node={gpus} --no-python "


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


def init_input(wildcards):
    """What a warm-started trial (train.init_from) waits for: the trial whose weights it
    names (its metrics.json: kept steps and ckpt/ files are no declared outputs), else the
    file itself. A retrained parent then retrains its branches."""
    init = json.loads(trial_json(wildcards))["train"].get("init_from")
    if not init:
        return []
    rel = os.path.relpath(init) if os.path.isabs(init) else os.path.normpath(init)
    parent = re.match(r"(results/[^/]+/runs/[^/]+/seed\d+)/", rel)
    return [f"{parent[1]}/metrics.json"] if parent else [rel]


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


def dataset_sources(wildcards):
    """The files a dataset reads (units files, shards, token bins, a pickle): inputs of its
    preparation, so that Snakemake rebuilds the dataset and what depends on it when one is
    newer (modification times: nothing is read). A missing one was named when the config
    loaded (seqlab.data.sources.require_source_files).
    """
    return source_files(DATASETS[wildcards.dataset])


def prepare_params(dataset):
    """A dataset's block minus its `checks:` thresholds (those are the checks rule's)."""
    return {k: v for k, v in DATASETS[dataset].items() if k != "checks"}


COMPARE = config["compare"]


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


# --- cluster execution (SLURM profile) -------------------------------------------------
# Bookkeeping rules run on the submit host under any executor: a cluster job that writes a
# JSON file or a table costs a queue round trip and a status-poll interval for nothing.
localrules:
    trial_config,
    summarize,
    compare,
    report,
    precision,
    plot_swuggy,
    plot_sblimp,


def slurm_time_signal(wildcards):
    """`--signal=URG@N` for sbatch: SIGURG N seconds before the trial's time limit.

    SIGURG (no `B:` prefix) goes to the job step, where the shells in between ignore it and
    the trainer checkpoints and exits 75; Snakemake's retry (profile `retries`) resubmits and
    the trial resumes. (`B:USR1` would hit the batch shell, which dies of it.) N is a tenth
    of the runtime, 60..300 s: Slurm may send the signal up to a minute early.
    """
    runtime_s = 60 * int(resource("runtime", 60)(wildcards))
    return f"--signal=URG@{min(300, max(60, runtime_s // 10))}"


# --- precision study -------------------------------------------------------------------
def precision_exps():
    """Experiments whose grid varies `precision`: each gets results/{exp}/precision.csv."""
    return [e for e, x in EXPERIMENTS.items() if "precision" in (x.get("grid") or {})]


# --- sWUGGY and sBLIMP (ZeroSpeech 2021 lexical and syntactic) -------------------------
#: eval.<benchmark> -> the dataset kinds its set may be
ZR_KINDS = {
    "swuggy": ("swuggy_synthetic", "swuggy_zerospeech"),
    "sblimp": ("sblimp_synthetic", "sblimp_zerospeech"),
}
ZR_SYNTH_SETS = [
    n
    for n, d in DATASETS.items()
    if d.get("kind") in ("swuggy_synthetic", "sblimp_synthetic")
]


def zr_cfg(exp, bench):
    """The experiment's `eval.swuggy` or `eval.sblimp` block, or None."""
    return (EXPERIMENTS[exp].get("eval") or {}).get(bench)


def zr_exps(bench):
    """Experiments scored on a benchmark: each gets results/{exp}/plots/{bench}.svg."""
    return [e for e in EXPERIMENTS if zr_cfg(e, bench)]


def zr_set(bench):
    return lambda wildcards: zr_cfg(wildcards.exp, bench)["set"]


def zr_opts(bench):
    """eval.<bench> minus `set`, as JSON; torch threads default to the training threads."""

    def get(wildcards):
        opts = {k: v for k, v in zr_cfg(wildcards.exp, bench).items() if k != "set"}
        opts.setdefault("threads", train_threads(wildcards))
        return as_json(opts)

    return get


def zr_world_manifest(wildcards):
    return f"results/data/{DATASETS[wildcards.dataset]['world']}/manifest.json"


for _bench in ZR_KINDS:
    EVAL_OUTPUTS.append(
        lambda name, exp, b=_bench: [f"{b}.json"] if zr_cfg(name, b) else []
    )


EVAL_OUTPUTS.append(lambda name, exp: ["per.json"] if exp.get("task") == "ctc" else [])


# === cluster packing and evaluation resources (slurm engineer's block) =====================
# `pack: K` (experiment key, default 1): K trials of the experiment share one cluster job
# through Snakemake's own group jobs: every trial keeps its rule, files, resume and incremental
# reruns; only the submission is shared. Snakemake ignores groups in local runs.
def pack_size(exp):
    return int(EXPERIMENTS[exp].get("pack", 1))


def pack_group(wildcards):
    """The group of a packed experiment's train jobs (None: one job per trial).

    Each trial is its own connected component of the group id; --group-components K merges
    up to K of them into one job. The command line's group settings replace the workflow's
    only after the Snakefile is read, so K is registered here, when the DAG asks for the
    group (a --group-components value given for the id wins)."""
    k = pack_size(wildcards.exp)
    if k <= 1:
        return None
    gid, settings = f"pack-{wildcards.exp}", workflow.group_settings
    if gid not in settings.group_components:
        settings.group_components = {**settings.group_components, gid: k}
    return gid


def train_gpu(wildcards):
    """`gpu` of a train job: the experiment's, but 0 when packed (`train_gres` asks instead):
    Snakemake sums an integer resource over a group's parallel jobs (K trials would ask for K
    GPUs), while a string resource equal in every job is the group's as it is."""
    return 0 if pack_size(wildcards.exp) > 1 else resource("gpu", 0)(wildcards)


def train_gres(wildcards):
    """`gres` of a train job: 'gpu:1' for a packed experiment with a GPU (one GPU for the
    whole group, which its trials share), else '' (no --gres)."""
    if pack_size(wildcards.exp) > 1 and resource("gpu", 0)(wildcards) > 0:
        return "gpu:1"
    return ""


# `eval_resources:` (experiment key): what an evaluation job (sWUGGY, sBLIMP, PER) asks for, sized for
# scoring on one device, never the training's (3 GPUs, 64 GB, 12 h for the cluster LSTM).
def eval_resource(key):
    """An evaluation job's resource: `eval_resources.<key>`, else 1 GPU if the training had
    any, the training's threads, 4000 MB and 30 minutes."""

    def get(wildcards):
        exp = EXPERIMENTS[wildcards.exp]
        defaults = {
            "gpu": min(1, exp.get("resources", {}).get("gpu", 0)),
            "cpus_per_task": train_threads(wildcards),
            "mem_mb": 4000,
            "runtime": 30,
        }
        value = (exp.get("eval_resources") or {}).get(key)
        return defaults[key] if value is None else value

    return get
