"""Monte Carlo benchmark: 10,000 samples of a frontier scenario (Llama 3 405B, 16,384 H100s).

Run: `python benchmarks/monte_carlo.py`. Prints the seconds for the point estimate and for the
samples (best of 5), and the P10 / P50 / P90 of cost and wall clock.
"""

import time

from timing import best_seconds, print_bands

from simulator import estimate, scenario_from_dict
from simulator.footprint.uncertainty import monte_carlo


def main(n: int = 10_000, repeats: int = 5) -> None:
    sc = scenario_from_dict({"model": {"preset": "llama3-405b"},
                             "training": {"tokens": 15.6e12, "global_batch_tokens": 16 * 2**20},
                             "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 16384}})
    t0 = time.perf_counter()
    est = estimate(sc)
    t_est = time.perf_counter() - t0
    best = best_seconds(lambda: monte_carlo(est.basis, n), repeats)
    s = monte_carlo(est.basis, n).summary()
    print(f"estimate (incl. plan search over {est.plans_evaluated} plans): {t_est:.3f} s")
    print(f"{n} Monte Carlo samples: {best * 1e3:.1f} ms (best of {repeats})")
    print_bands(s, est.values, ("cost_usd", "wall_clock_days", "co2e_t"))


if __name__ == "__main__":
    main()
