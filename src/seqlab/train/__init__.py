"""Training: the one loop shared by every task, optimizers and LR schedules, checkpoints."""
