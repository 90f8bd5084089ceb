"""Reports: per-experiment summaries and verdicts, comparisons, run ledgers, plots and HTML."""
