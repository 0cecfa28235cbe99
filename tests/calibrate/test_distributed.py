"""Multi-process calibration (calibrate.distributed): busbw conventions, the collective probe, and real
torchrun runs with 2 CPU processes on gloo (DDP, FSDP2, a crashed rank, usage errors).

Each torchrun launch costs a few seconds (torch imported by the agent and by each worker, rank 0's
device description and matmul peak probe), so the launches are module-scoped fixtures shared by
the assertions. All use the "tiny" workload in fp32 (bf16 matmuls on this CPU take ~1 min each).
"""

from __future__ import annotations

import math
import sys
import types

import pytest

from calibrate import distributed as dd
from calibrate.distributed.failures import fail_if_asked, is_oom
from calibrate.distributed.wrap import _fully_shard
from calibrate.errors import MeasurementError
from calibrate.records import RECORDS_FILE, load_records
from calibrate.workload import SIZES, model_flops_per_step

BATCH, SEQ = 4, 64
PROBE = "4096,262144,1048576"


def run_args(runs, parallel="ddp", meter="none", window_s="0.2", extra=()):
    return ["--output", str(runs), "--size", "tiny", "--batch", str(BATCH), "--seq", str(SEQ), "--dtype", "fp32",
            "--parallel", parallel, "--warmup", "2", "--windows", "2", "--window-s", window_s, "--min-steps", "2",
            "--meter", meter, "--probe-sizes", PROBE, "--probe-iters", "3", "--probe-warmup", "1", *extra]


# --- busbw conventions as pure functions -----------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 4, 8, 64])
def test_busbw_factors_follow_nccl_tests(n):
    assert dd.busbw_factor("all_reduce", n) == pytest.approx(2 * (n - 1) / n)
    for op in ("all_gather", "reduce_scatter", "all_to_all"):
        assert dd.busbw_factor(op, n) == pytest.approx((n - 1) / n)


def test_bus_bandwidth_by_hand():
    # 1 GB all_reduce in 10 ms on 8 ranks: algbw 100 GB/s, busbw 100 * 2 * 7 / 8 = 175 GB/s.
    algbw, busbw = dd.bus_bandwidth("all_reduce", 1e9, 0.01, 8)
    assert algbw == pytest.approx(100e9) and busbw == pytest.approx(175e9)
    # all_gather: S is the gathered size; 4 ranks -> factor 3/4.
    assert dd.bus_bandwidth("all_gather", 4e8, 0.01, 4)[1] == pytest.approx(30e9)
    assert dd.bus_bandwidth("all_to_all", 4e8, 0.01, 1) == (pytest.approx(40e9), 0.0)  # n = 1: nothing crosses a link
    with pytest.raises(MeasurementError, match="unknown"):
        dd.busbw_factor("broadcast_tree", 2)
    with pytest.raises(MeasurementError, match="> 0"):
        dd.bus_bandwidth("all_reduce", 1e6, 0.0, 2)
    with pytest.raises(MeasurementError, match=">= 1"):
        dd.busbw_factor("all_reduce", 0)


def test_alpha_beta_fit_recovers_synthetic_timings():
    alpha, bw = 20e-6, 50e9  # 20 us latency, 50 GB/s algbw
    rows = [{"op": "all_reduce", "world_size": 4, "size_bytes": s, "time_s": alpha + s / bw}
            for s in (1 << 10, 1 << 16, 1 << 20, 1 << 24, 1 << 27)]
    rows.append({"op": "all_gather", "world_size": 4, "size_bytes": 1 << 20, "error": "not supported by gloo"})
    fit = dd.fit_alpha_beta(rows, "all_reduce")
    assert fit["n_points"] == 3 and fit["min_size_bytes"] == 1 << 20  # the larger half of the sizes
    assert fit["alpha_s"] == pytest.approx(alpha, rel=1e-6)
    assert fit["algbw_gb_per_s"] == pytest.approx(50.0, rel=1e-6)
    assert fit["busbw_gb_per_s"] == pytest.approx(50.0 * 2 * 3 / 4, rel=1e-6)
    with pytest.raises(MeasurementError, match="no successful all_gather"):
        dd.fit_alpha_beta(rows, "all_gather")
    with pytest.raises(MeasurementError, match="two sizes"):
        dd.fit_alpha_beta(rows[:1], "all_reduce")


def test_combine_window_sums_meters_and_flags_missing():
    ranks = [{"rank": 0, "local_rank": 0, "duration_s": 1.0, "measuring": True, "energy_j": 300.0, "meter": "nvml",
              "flags": ["few_samples"]},
             {"rank": 1, "local_rank": 1, "duration_s": 1.2, "measuring": True, "energy_j": 360.0, "meter": "nvml",
              "flags": []},
             {"rank": 2, "local_rank": 2, "duration_s": 1.1, "measuring": False, "energy_j": None, "meter": "none"}]
    w = dd.combine_window(ranks, duration_s=1.2, steps=10)
    assert w["energy_j"] == 660.0 and w["mean_power_w"] == pytest.approx(550.0)
    assert w["meter"] == "nvml" and w["flags"] == ["few_samples"] and w["details"]["n_meters"] == 2
    ranks[1]["energy_j"] = None
    w = dd.combine_window(ranks, duration_s=1.2, steps=10)
    assert w["energy_j"] is None and "energy_missing_on_some_ranks" in w["flags"]
    w = dd.combine_window([dict(ranks[2])], duration_s=1.0, steps=3)
    assert w["energy_j"] is None and w["meter"] == "none" and w["details"]["n_meters"] == 0


# --- the probe in a single-process gloo group ---------------------------------------------------------------
@pytest.fixture
def gloo_world1(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield dist
    finally:
        dist.destroy_process_group()


def test_collective_probe_world_size_one(gloo_world1):
    out = dd.collective_probe([1000, 65536], iters=2, warmup=1)
    assert [(r["op"], r["size_bytes"]) for r in out] == [(op, s) for op in dd.OPS for s in (1000, 65536)]
    for r in out:
        assert "error" not in r and r["world_size"] == 1 and r["backend"] == "gloo" and r["device"] == "cpu"
        assert r["time_s"] > 0 and r["iters"] == 2 and r["time_min_s"] <= r["time_s"]
        assert r["algbw_gb_per_s"] == pytest.approx(r["size_bytes"] / r["time_s"] / 1e9)
        assert r["busbw_gb_per_s"] == 0.0 and r["busbw_factor"] == 0.0  # by definition for n = 1


def test_collective_probe_records_unsupported_ops(gloo_world1, monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError("ProcessGroupGloo does not support alltoall_base")

    monkeypatch.setattr(gloo_world1, "all_to_all_single", unsupported)
    out = dd.collective_probe([4096, 8192], ops=("all_reduce", "all_to_all"), iters=1, warmup=0)
    assert [r["op"] for r in out] == ["all_reduce", "all_reduce", "all_to_all"]  # the op's other sizes skipped
    assert out[-1]["error"] == "not supported by gloo" and "alltoall" in out[-1]["detail"]
    with pytest.raises(MeasurementError, match="unknown"):
        dd.collective_probe([4096], ops=("gather",))
    with pytest.raises(MeasurementError, match="positive"):
        dd.collective_probe([0])


def test_collective_probe_needs_a_group():
    import torch.distributed as dist

    assert not dist.is_initialized()
    with pytest.raises(MeasurementError, match="initialised process group"):
        dd.collective_probe([4096])


# --- command line, guards ---------------------------------------------------------------------------------
def test_parse_args_builds_the_config():
    ns, config = dd.parse_args(["--output", "runs", "--size", "tiny", "--seq", "64", "--dtype", "fp32",
                                "--probe-sizes", "1024,1e6"])
    assert config.name == f"tiny-b{SIZES['tiny'].batch_size}-s64" and config.seq_len == 64 and config.dtype == "fp32"
    assert ns.parallel == "ddp" and ns.probe_sizes == [1024, 1_000_000] and ns.meter == "auto"
    assert dd.parse_args(["--output", "r", "--size", "tiny", "--probe-sizes", "none"])[0].probe_sizes == []
    for bad in (["--size", "huge"], ["--size", "tiny", "--batch", "0"], ["--size", "tiny", "--probe-sizes", "1,-2"],
                ["--size", "tiny", "--parallel", "tp"], ["--size", "tiny", "--meter", "wattmeter"]):
        with pytest.raises(SystemExit):
            dd.parse_args(["--output", "r", *bad])


def test_fsdp_without_fully_shard_fails_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.distributed.fsdp", types.ModuleType("torch.distributed.fsdp"))
    with pytest.raises(MeasurementError, match="--parallel fsdp needs FSDP2.*use --parallel ddp"):
        _fully_shard()


def test_launch_validates_its_arguments():
    with pytest.raises(MeasurementError, match="nproc_per_node"):
        dd.launch(0, [])
    with pytest.raises(MeasurementError, match="rendezvous endpoint"):
        dd.launch(2, [], nnodes=2)


def test_test_hook_only_fires_on_its_rank_and_stage(monkeypatch):
    monkeypatch.setenv("TRAINSIM_TEST_FAIL_RANK", "1")
    monkeypatch.setenv("TRAINSIM_TEST_FAIL_AT", "build")
    fail_if_asked("build", 0)
    fail_if_asked("warmup", 1)
    with pytest.raises(RuntimeError, match="simulated failure"):
        fail_if_asked("build", 1)
    monkeypatch.setenv("TRAINSIM_TEST_FAIL_KIND", "oom")
    with pytest.raises(RuntimeError, match="out of memory") as info:
        fail_if_asked("build", 1)
    assert is_oom(info.value)


# --- real torchrun runs: 2 CPU processes on gloo --------------------------------------------------------------
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("ddp")
    rc = dd.launch(2, run_args(runs, "ddp"), timeout_s=180)
    return rc, runs


def test_ddp_run_writes_one_record(ddp_run):
    rc, runs = ddp_run
    assert rc == 0
    (rec,) = load_records(runs)
    assert rec.status == "ok" and rec.error is None
    assert rec.parallel == "ddp" and rec.world_size == 2
    assert len(rec.windows) == 2
    for w in rec.windows:
        assert w.duration_s >= 0.2 and w.steps >= 2 and w.energy_j is None and w.meter == "none"
        ranks = w.details["ranks"]
        assert [r["rank"] for r in ranks] == [0, 1]
        assert w.duration_s == pytest.approx(max(r["duration_s"] for r in ranks))  # the MAX over ranks
    assert rec.tokens_per_step == BATCH * SEQ  # per rank; tokens_per_s counts all ranks
    assert rec.tokens_per_s and math.isfinite(rec.tokens_per_s) and rec.tokens_per_s > 0
    assert rec.tokens_per_s == pytest.approx(2 * BATCH * SEQ / rec.step_time_s)
    from calibrate.workload import WorkloadConfig

    assert rec.model_flops_per_step == model_flops_per_step(WorkloadConfig.from_dict(rec.config))
    assert rec.peak_flops and rec.peak_flops > 0 and rec.mfu and rec.mfu > 0
    assert rec.software["distributed"]["backend"] == "gloo" and rec.software["distributed"]["world_size"] == 2


def test_ddp_run_probes_collectives(ddp_run):
    _, runs = ddp_run
    (rec,) = load_records(runs)
    by_op = {}
    for c in rec.collectives:
        assert "error" not in c, c
        assert c["world_size"] == 2 and c["backend"] == "gloo"
        by_op.setdefault(c["op"], []).append(c)
    assert set(by_op) == set(dd.OPS)
    assert [c["size_bytes"] for c in by_op["all_reduce"]] == [4096, 262144, 1048576]
    assert all(c["busbw_gb_per_s"] > 0 for c in by_op["all_reduce"])
    # By hand, n = 2: all_reduce busbw = algbw * 2 (n-1)/n = algbw; the others algbw * (n-1)/n = algbw / 2.
    ar = by_op["all_reduce"][-1]
    assert ar["algbw_gb_per_s"] == pytest.approx(ar["size_bytes"] / ar["time_s"] / 1e9)
    assert ar["busbw_gb_per_s"] == pytest.approx(ar["algbw_gb_per_s"] * 2 * (2 - 1) / 2)
    ag = by_op["all_gather"][-1]
    assert ag["busbw_gb_per_s"] == pytest.approx(ag["size_bytes"] / ag["time_s"] / 1e9 * (2 - 1) / 2)
    fit = dd.fit_alpha_beta(rec.collectives, "all_reduce", min_size_bytes=0)
    assert fit["n_points"] == 3 and fit["world_size"] == 2


def test_resume_skips_a_recorded_config(ddp_run):
    rc, runs = ddp_run
    assert dd.launch(2, run_args(runs, "ddp", extra=["--resume"]), timeout_s=180, echo=False) == 0
    assert len(load_records(runs)) == 1


def test_fsdp2_runs_on_cpu_gloo_and_sums_meters(tmp_path):
    """FSDP2 (fully_shard per block, then the root) works on CPU/gloo in torch 2.13, so --parallel fsdp
    records an ok run. With the fake meter (300 W per device) every rank measures its own device and
    the window energy is the sum over ranks."""
    assert dd.launch(2, run_args(tmp_path, "fsdp", meter="fake", window_s="0.5"), timeout_s=180, echo=False) == 0
    (rec,) = load_records(tmp_path)
    assert rec.status == "ok" and rec.parallel == "fsdp" and rec.world_size == 2
    assert rec.software["parallel_options"]["reshard_after_forward"] is True
    assert rec.meters == ["fake"] and len(rec.windows) == 2
    for w in rec.windows:
        ranks = w.details["ranks"]
        assert w.details["n_meters"] == 2 and all(r["energy_j"] for r in ranks)
        assert w.energy_j == pytest.approx(sum(r["energy_j"] for r in ranks))
        assert w.energy_j == pytest.approx(w.details["energy_sum_j"])  # the all_reduce SUM agrees
        assert w.mean_power_w == pytest.approx(w.energy_j / w.duration_s)
        assert 0.6 * 600 < w.mean_power_w < 1.4 * 600  # two 300 W fake devices (100 ms counter steps)
        assert w.trace_file and (tmp_path / w.trace_file).exists()
    assert len(list((tmp_path / "traces").glob("*-r1.csv.gz"))) == 2  # rank 1's traces, written by rank 0
    assert any(c["op"] == "reduce_scatter" and c["busbw_gb_per_s"] > 0 for c in rec.collectives)


def test_crashed_rank_is_recorded_without_hanging(tmp_path):
    """Rank 1 raises in its 2nd warm-up step while rank 0 waits in DDP's gradient all_reduce: the
    failure goes through the rendezvous store, rank 0 records it, torchrun ends with an error."""
    with pytest.raises(MeasurementError, match=r"exited with code 1[\s\S]*simulated failure"):
        dd.launch(2, run_args(tmp_path, "ddp"), timeout_s=120, echo=False,
                  env={"TRAINSIM_TEST_FAIL_RANK": "1", "TRAINSIM_TEST_FAIL_AT": "warmup"})
    (rec,) = load_records(tmp_path)
    assert rec.status == "error" and rec.parallel == "ddp" and rec.world_size == 2 and not rec.windows
    assert rec.error.startswith("rank 1: RuntimeError: simulated failure (TRAINSIM_TEST_FAIL_RANK=1 at warmup)")
    assert rec.config["name"] == f"tiny-b{BATCH}-s{SEQ}" and rec.tokens_per_step == BATCH * SEQ


def test_usage_errors_write_no_record(tmp_path):
    args = run_args(tmp_path, "ddp")
    args[args.index("tiny")] = "no-such-size"
    with pytest.raises(MeasurementError, match="invalid choice: 'no-such-size'"):
        dd.launch(2, args, timeout_s=120, echo=False)
    assert not (tmp_path / RECORDS_FILE).exists()
