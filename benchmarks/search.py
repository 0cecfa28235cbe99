"""Plan-search benchmark: a 405B dense model on 16,384 H100s, the full plan space.

Run: `python benchmarks/search.py` (single-threaded numpy: OMP/OpenBLAS threads pinned to 1).
Prints plans enumerated, feasible plans, seconds (best of 5) and plans per second.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from timing import best_seconds  # noqa: E402

from hardware_catalog import load_catalog  # noqa: E402
from simulator.system.efficiency import resolve_efficiency  # noqa: E402
from simulator.model.shapes import get_preset  # noqa: E402
from simulator.system.perf_params import PerfParams  # noqa: E402
from simulator.execution.search import search_plans  # noqa: E402


def main(repeats: int = 5) -> None:
    acc = load_catalog().accelerator("nvidia-h100-sxm-80gb")
    model = get_preset("llama3-405b")
    eff = resolve_efficiency(acc)
    batch_seqs = 16 * 1024 * 1024 // model.seq_len  # Llama 3: 16M-token batches
    best = best_seconds(lambda: search_plans(model, acc, 16384, batch_seqs, "bf16", PerfParams(), eff), repeats)
    res = search_plans(model, acc, 16384, batch_seqs, "bf16", PerfParams(), eff)
    i = int(res.order("time")[0])
    print(f"model llama3-405b, 16384 x {acc.id}, batch {batch_seqs} sequences of {model.seq_len}")
    print(f"plans enumerated {res.plans_evaluated}, feasible {len(res)}, "
          f"rejected {res.plans_evaluated - len(res)}; rule breaks (a plan may break several): {res.rejected}")
    print(f"seconds (best of {repeats}) {best:.3f}, plans per second {res.plans_evaluated / best:,.0f}")
    print(f"best plan {res.grid.plan(i)}, step {res.step_time_s[i]:.2f} s")


if __name__ == "__main__":
    main()
