"""seqlab: sequence-model research as a pipeline. The library knows nothing of Snakemake."""

__version__ = "0.1.0"
