"""Published-fit benchmark: `calibrate.published.fit_published` for one accelerator, its fit and
held-out refits in one process and in one process per CPU (the default).

Run: `python benchmarks/published_fit.py [ACCELERATOR]` (default google-tpu-v5p: 17 rows, 9 fits).
Prints the seconds of each (one run each: a fit takes seconds to minutes), their ratio, and
whether the two gave the same numbers (they must).
"""

import os
import sys
import time

from calibrate.published import fit_published
from hardware_catalog import load_catalog
from simulator.validation.public_rows import load_kernel_rows, load_public_rows


def main(acc: str = "google-tpu-v5p") -> None:
    catalog = load_catalog()
    rows, kernels = load_public_rows(catalog=catalog), load_kernel_rows()
    seconds, fits = {}, {}
    for workers in (1, None):
        t0 = time.perf_counter()
        fits[workers] = fit_published((acc,), rows, catalog, kernels, workers=workers)
        seconds[workers] = time.perf_counter() - t0
    same = fits[1].params == fits[None].params and fits[1].held_out_pct == fits[None].held_out_pct
    print(f"{acc}: {len(fits[1].rows)} rows; CPUs {os.cpu_count()}")
    print(f"one process: {seconds[1]:.1f} s; one per CPU: {seconds[None]:.1f} s; "
          f"speed-up {seconds[1] / seconds[None]:.2f}x; same numbers: {same}")


if __name__ == "__main__":
    main(*sys.argv[1:])
