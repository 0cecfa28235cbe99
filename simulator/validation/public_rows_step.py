"""The simulator's step time for a usable published row.

One responsibility: predicting a row's step time with its own plan, precision and software
(`simulator.execution.steptime.step_parts`). No table prints the pipeline schedule, which Megatron-LM, NeMo
and Llama 3's stack tune: a pipelined row is timed under every interleaving the plan rules allow
and the fastest is taken.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hardware_catalog import Accelerator
from simulator.system.perf_params import PerfParams
from simulator.execution.plan import PlanGrid, rule_violations
from simulator.validation.public_rows_build import PublicRow
from simulator.execution.steptime import step_parts

INTERLEAVES = (1, 2, 4, 8)


def row_plans(row: PublicRow) -> PlanGrid:
    """The row's plan; for a pipelined run, every interleaving the plan rules allow (no table prints
    the schedule, which Megatron-LM, NeMo and Llama 3's stack tune; the fastest is taken)."""
    plans = [row.plan]
    if row.plan.pp > 1 and row.plan.interleave == 1:
        plans += [replace(row.plan, interleave=v) for v in INTERLEAVES[1:]]
    grid = PlanGrid.from_plans(plans)
    ok = ~rule_violations(grid, row.spec, int(row.global_batch_seqs)).any(axis=1)
    ok[0] = True  # the published plan itself always stays
    return grid.take(np.flatnonzero(ok))


def row_step_time_s(row: PublicRow, acc: Accelerator, params: PerfParams) -> float:
    """The simulator's step time of a usable row: its own plan (fastest schedule), precision and software."""
    parts = step_parts(row.spec, row_plans(row), acc, params, row.precision, int(row.global_batch_seqs),
                       flash=row.flash_attention, overlap=row.overlap_comm, cp_comm=row.cp_comm,
                       stack=row.framework, moe=row.moe)
    return float(np.min(parts.total_s))
