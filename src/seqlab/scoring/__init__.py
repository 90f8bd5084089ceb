"""Scores computed by more than one stage, so they live below all of them: pure functions.

`per`: PER and greedy CTC decoding (training keeps the checkpoint with the lowest PER,
evaluation reports it). `swuggy` and `sblimp`: the official sWUGGY lexical and sBLIMP
syntactic scores (a set's controls are scored by them when it is built, models when they are
evaluated).
"""
