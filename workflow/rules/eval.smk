# Stage 4: evaluation of trained trials (sWUGGY for unit LMs, PER for CTC decoders).
# Each evaluation writes one JSON beside the trial's metrics.json; summaries read them
# (seqlab.report.summary.EVAL_FILES) and trial_eval_files() lists them as inputs.

# --- sWUGGY ---

# --- PER ---
