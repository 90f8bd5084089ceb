"""Evaluations of trained trials: sWUGGY for unit LMs, phoneme error rate for CTC decoders."""
