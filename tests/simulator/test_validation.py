"""Validation against published runs: tolerances the current model must hold (sources in the CSV)."""

from statistics import median

import pytest

from hardware_catalog import load_catalog
from simulator.validation.runs import load_runs, run_validation, summary

CHECKS = run_validation(load_catalog(use_env=False))


def by(quantity, method):
    return [c for c in CHECKS if c.quantity == quantity and c.method == method]


def test_packaged_csv_matches_shared_copy_columns():
    runs = load_runs()
    assert {"name", "hardware", "gpu_hours", "reported_energy_mwh", "reported_tco2e"} <= set(runs.columns)
    assert len(runs) >= 30


def test_tdp_convention_reproduces_authors_arithmetic():
    """LLaMA Table 15, BLOOM (Luccioni 2023), LLaMA-paper OPT/BLOOM: GPU-h x TDP (x PUE): within 1%."""
    rows = by("energy_mwh", "tdp convention") + by("co2e_t", "tdp convention")
    assert len(rows) >= 12
    for c in rows:
        assert abs(c.error_pct) < 1.0, (c.run, c.quantity, c.error_pct)


def test_flop_convention_against_reported_throughput():
    """Our FLOPs / the run's own MFU or TFLOP/s vs its reported device-hours (Megatron Table 2 within 2%)."""
    rows = by("device_hours", "reported throughput (arithmetic)")
    assert median(abs(c.error_pct) for c in rows) < 2.0
    megatron = [c for c in rows if c.run.startswith("Megatron")]
    assert len(megatron) == 4 and all(abs(c.error_pct) < 2.0 for c in megatron)


def test_measured_energy_default_model_median_within_15pct():
    """Patterson et al. 2021 measured rows (and Gopher's compiled figure): default power model."""
    rows = by("energy_mwh", "default power model")
    patterson = [c for c in rows if c.run.split()[0] in ("GPT-3", "T5-11B", "Meena", "GShard-600B", "Switch")]
    assert len(patterson) == 5
    assert median(abs(c.error_pct) for c in patterson) < 15.0


def test_summary_groups_recomputed_from_the_checks():
    """Each summary row is the count, median and max of its own checks' |error|, recomputed here."""
    rows = summary(CHECKS)
    s = {(r["quantity"], r["method"]): r for r in rows}
    assert sum(r["rows"] for r in rows) == len(CHECKS)
    for (quantity, method), r in s.items():
        errors = [abs(c.error_pct) for c in by(quantity, method)]
        assert r["rows"] == len(errors)
        assert r["median_abs_error_pct"] == pytest.approx(median(errors))
        assert r["max_abs_error_pct"] == pytest.approx(max(errors))


def test_summary_lists_arithmetic_round_trips_after_the_predictions():
    """Reported-throughput and TDP-convention rows redo the authors' arithmetic: they are not
    predictions and must not be read as the model's accuracy (issue 14 item 6)."""
    rows = summary(CHECKS)
    kinds = {(r["quantity"], r["method"]): r["kind"] for r in rows}
    assert kinds[("device_hours", "reported throughput (arithmetic)")] == "round-trip"
    assert kinds[("energy_mwh", "tdp convention")] == "round-trip"
    assert kinds[("co2e_t", "tdp convention")] == "round-trip"
    assert kinds[("device_hours", "default model")] == "prediction"
    assert kinds[("energy_mwh", "default power model")] == "prediction"
    order = [r["kind"] for r in rows]
    assert order == sorted(order, key=lambda k: k == "round-trip")


@pytest.mark.parametrize("name", ["Evolved Transformer NAS (search)", "OLMo-7B (MosaicML A100-40GB run)"])
def test_rows_without_what_we_need_are_skipped_not_faked(name):
    """TPU v2 is not in the catalog; OLMo publishes no duration or device-hours."""
    assert not [c for c in CHECKS if c.run == name]


def test_throughput_rows_within_10pct_median_under_8():
    """Narayanan et al. 2021 Tables 1-2 and BLOOM: per-device TFLOP/s in the papers' convention.

    The A100 priors are fitted to the public tables (llm-foundry, MegaScale; catalog [perf]), so all
    ten rows are held out now (five of them were the fit's own rows before, median 2.5%): every row
    within 10%, median within 8% (measured when written: 5.2%; 4.7% since DP and TP overlap hide at
    most the compute; all but one row low: 2021 software; 6.1%, worst 9.0%, since the fit's prior acts
    on the log of efficiencies, which moved A100's weakly identified attention efficiency 0.104 -> 0.303)."""
    rows = by("tflops_per_device", "parallelism model")
    assert len(rows) == 10 and all("held out" in c.note for c in rows)
    assert median(abs(c.error_pct) for c in rows) < 8.0
    for c in rows:
        assert abs(c.error_pct) < 10.0, (c.run, c.error_pct)


@pytest.mark.xfail(strict=True, reason="issue 12 open: at 8k GPUs the memory model needs recompute (the search takes "
                   "'mlp') for the interleaved schedule (-15%): without it the paper's plan needs 88.0 of 85.9 GB, "
                   "though the paper trained 8K sequences without activation checkpointing, on Meta's own schedule "
                   "(N contiguous micro-batches tunable, fewer than the stages allowed; Megatron-Core requires N >= PP, "
                   "which is what the model charges; the paper gives neither N nor the warm-up); the 131k row is +16% "
                   "(Megatron-Core's attention efficiency; Meta's, fitted in sample, is slower); the 16k row is +5%")
def test_llama3_h100_out_of_sample_rows():
    """Dubey et al. 2024 Table 4 (BF16 MFU 43 / 41 / 38%) with the paper's plan and its all-gather
    context parallelism, predicted with the default (Megatron-Core) stack's H100 priors; the rows are in
    the H100 fit as Meta's own stack ("other"), whose attention efficiency (0.21) the default does not
    use; within 10% each. Measured when written: -17.2%, -13.7% since the search may recompute the
    attention core and the MLP instead of everything (8k GPUs: the memory model needs recompute for
    an interleaved schedule, 88.0 of 85.9 GB without), +6.8%, +16.6% (131k: Megatron's 0.273)."""
    rows = {c.run: c for c in by("mfu_pct", "parallelism model")}
    assert len(rows) == 3
    for name in ("Llama 3 405B (8192 GPUs)", "Llama 3 405B (16384 GPUs)", "Llama 3 405B long context (16384 GPUs)"):
        assert abs(rows[name].error_pct) < 10, (name, rows[name].error_pct)



def test_deepseek_v3_whole_run_throughput_within_15pct():
    """DeepSeek-V3 pre-training on 2,048 H800 (arXiv:2412.19437: 180K H800-hours per trillion tokens,
    1,543 tokens/s per GPU over the whole run), with the report's plan and software (DeepEP dispatch,
    node-limited routing, DualPipe), H800 priors inherited from H100's fit: never fitted to it.
    Measured when written: -9.5% (1,396); -9.6% since DP/TP overlap hides at most the compute. With the
    all-to-all dispatcher and nothing overlapped -65% (the MoE exchange then exceeds the compute), with
    DeepEP alone -42%."""
    (c,) = by("tokens_per_s_per_device", "parallelism model")
    assert c.reported == 1543
    assert abs(c.error_pct) < 15, c.error_pct


def test_mlperf_gpt3_runs_never_fitted():
    """MLPerf Training v3.1-v4.1 gpt3 (rows.csv, derived from the result logs: whole runs, evals
    included; no plan printed, so never fitted), GPT-3 175B on sequences of 2,048 at each run's global
    batch, the searched plan; FP8 on NVIDIA parts, BF16 assumed for MaxText on TPU
    (simulator/validation/mlperf.py). NVIDIA's own v4.x submissions (64 B200, 256-11,616 H100) within
    10% each, Google's MaxText runs (TPU v5p, v6e) within 15%, all 28 within a 10% median. Measured when
    written: median 7.7%; B200 +6.1% (+15.8% while B200 inherited H100's table); H100 v4.x -5.8% to
    +4.6%; v3.1 (NeMo 23.09) +6.7% to +13.1%; v5p 2-14% slow, v6e 7-10% fast; Oracle's 3,072-GPU run
    +17.0%."""
    from simulator.validation.mlperf import METHOD

    rows = by("tokens_per_s_per_device", METHOD)
    assert len(rows) == 28 and median(abs(c.error_pct) for c in rows) < 10
    nvidia = [c for c in rows if c.run.startswith("MLPerf Training v4") and c.run.endswith("(NVIDIA)")]
    assert sorted(int(c.run.split(", ")[1].split()[0].replace(",", "")) for c in nvidia) == [
        64, 256, 512, 512, 10752, 11616, 11616]
    assert all(abs(c.error_pct) < 10 for c in nvidia), [(c.run, c.error_pct) for c in nvidia]
    google = [c for c in rows if c.run.endswith("(Google)")]
    assert len(google) == 11 and all(abs(c.error_pct) < 15 for c in google)
