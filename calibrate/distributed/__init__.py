"""Multi-device calibration under torchrun: the worker that runs DDP / FSDP2 training windows.

`calibrate.launch.launch(N, args)` runs `python -m torch.distributed.run --standalone
--nproc_per_node N -m calibrate.distributed ARGS`; every worker runs `worker_main`, which

1. joins the process group (NCCL on CUDA, gloo on CPU) and pins its GPU from LOCAL_RANK;
2. builds the calibration workload (`calibrate.workload.build`) and wraps it with DDP
   (`DistributedDataParallel`) or FSDP2 (`fully_shard` on every transformer block, then the root);
3. runs the bench protocol of `calibrate.bench.run_config` (warm-up, then timed windows of at
   least `window_s` seconds and `min_steps` steps, device-synchronised at the edges). All ranks run
   the same number of steps per window: the steps are planned from the warm-up step time and
   extended in chunks until the window time, the MAX over ranks (all_reduce), reaches `window_s`;
4. measures energy per window with one meter per measured unit (see `metering`), summed over
   ranks with an all_reduce SUM (measurement.md sec. 6: MAX for time, SUM for energy);
5. runs `calibrate.collective_probe.collective_probe` (all_reduce, all_gather, reduce_scatter,
   all_to_all: time, algbw and busbw per the nccl-tests doc/PERFORMANCE.md conventions);
6. rank 0 appends ONE `RunRecord` (parallel "ddp"|"fsdp", world_size, windows, collectives;
   tokens_per_step and model_flops_per_step are per rank) to the `--output` runs folder, also
   when a rank fails (an `oom`/`error` record naming the rank; see `worker` and `failures`).

The package's modules, one job each:

- `args`: the worker's command line;
- `worker`: the torchrun entry point (`__main__` runs it): device, process group, failures, exit;
- `measure`: the run proper on one rank: warm-up, the timed windows, the probe;
- `metering`: which rank opens which meter, and a window's energy combined over the ranks;
- `recording`: rank 0's one record per run (its `Recorder` and watchdog), traces;
- `failures`: one-line messages, the failure board in the rendezvous store, the test hook;
- `wrap`: DDP and FSDP2 wrapping;
- `job`: what every step shares about the rank (`Job`).

Re-exported here: `worker_main`, `parse_args` and `combine_window` from the modules above,
`collective_probe`, `OPS`, `busbw_factor`, `bus_bandwidth` and `fit_alpha_beta` from
`calibrate.collective_probe`, and `launch` from `calibrate.launch`.
"""

from __future__ import annotations

from calibrate.collective_probe import OPS, bus_bandwidth, busbw_factor, collective_probe, fit_alpha_beta
from calibrate.distributed.args import parse_args
from calibrate.distributed.metering import combine_window
from calibrate.distributed.worker import worker_main
from calibrate.launch import launch

__all__ = ["OPS", "bus_bandwidth", "busbw_factor", "collective_probe", "combine_window", "fit_alpha_beta", "launch",
           "parse_args", "worker_main"]
