"""Serving benchmark: the TP x batch search and 10,000 Monte Carlo samples for Llama 3 405B served
on 256 H100s (50 requests/s, 2,000 prompt + 500 output tokens, fp8).

Run: `python benchmarks/serving.py`. Prints the seconds for the estimate (every TP group that holds
the model x every batch size, evaluated with numpy) and for the samples (best of 5).
"""

from timing import best_seconds, print_bands

from simulator import estimate, scenario_from_dict
from simulator.footprint.uncertainty import monte_carlo


def main(n: int = 10_000, repeats: int = 5) -> None:
    sc = scenario_from_dict({"model": {"preset": "llama3-405b"},
                             "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 256},
                             "serving": {"prompt_tokens": 2000, "output_tokens": 500, "requests_per_s": 50,
                                         "dtype": "fp8", "kv_dtype": "fp8", "min_tokens_per_s_per_user": 20}})
    estimate(sc)  # warm imports and the catalog
    t_est = best_seconds(lambda: estimate(sc), repeats)
    est = estimate(sc)
    v = est.values
    t_mc = best_seconds(lambda: monte_carlo(est.basis, n), repeats)
    s = monte_carlo(est.basis, n).summary()
    print(f"estimate: {v['plans_evaluated']} (TP, batch) options in {t_est * 1e3:.1f} ms (best of {repeats}); "
          f"tp {v['tp']}, batch {v['batch']}, {v['tokens_per_s_per_device']:.0f} tokens/s per device, "
          f"{v['devices_needed']} devices needed, ${v['usd_per_mtok']:.2f} per million tokens")
    print(f"{n} Monte Carlo samples: {t_mc * 1e3:.1f} ms (best of {repeats})")
    print_bands(s, v, ("cost_usd", "energy_mwh", "co2e_t"))


if __name__ == "__main__":
    main()
