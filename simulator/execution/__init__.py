"""Execution: parallelism plans, memory per device, step time as a sum of named parts, collectives, plan search, inference steps, budgets."""
