"""Workloads: training (pre-training and fine-tuning), serving, RLHF, and projects of several stages."""
