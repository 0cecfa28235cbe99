"""Power meters: NVML logic on a fake backend and fake clock, replay, RAPL, CodeCarbon offline."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibrate.errors import MeasurementError
from calibrate.meters import (
    CpuMeter,
    FakeClock,
    FakeMeter,
    FakeNvmlBackend,
    MeterReading,
    NullMeter,
    NvmlMeter,
    PowerMeter,
    ReplayMeter,
    make_meter,
    read_trace_csv,
    write_trace_csv,
)
from hardware_catalog.errors import TrainsimError


def window(meter: FakeMeter, seconds: float) -> MeterReading:
    meter.start_window()
    meter.run(seconds)
    return meter.end_window()


# --- NvmlMeter logic on the fake backend --------------------------------------------------------------
def test_constant_power_gives_power_times_time_and_no_flags():
    r = window(FakeMeter(lambda t: 300.0), 10.0)
    assert r.energy_j == pytest.approx(3000.0, rel=0.01)
    assert r.duration_s == pytest.approx(10.0)
    assert r.mean_power_w == pytest.approx(300.0, rel=0.01)
    assert r.flags == []
    assert r.details["energy_source"] == "counter"
    assert r.details["n_counter_updates"] == 100  # 100 ms counter over 10 s
    assert r.meter == "fake" and not r.estimated
    assert {"t_s", "power_w", "energy_j", "clock_mhz", "temp_c", "util_pct", "throttle_reasons"} <= set(r.samples[1])
    json.loads(json.dumps(r.to_dict()))  # details go into JSON run records
    assert "samples" not in r.to_dict() and len(r.to_dict(with_samples=True)["samples"]) == 151


def test_power_step_inside_a_window_not_aligned_with_the_counter():
    clock = FakeClock()
    m = FakeMeter(lambda t: 200.0 if t < 5.0 else 450.0, clock)
    clock.advance(0.037)  # window edges between counter updates
    r = window(m, 10.0)
    truth = 200.0 * (5.0 - 0.037) + 450.0 * (10.037 - 5.0)
    assert r.energy_j == pytest.approx(truth, rel=0.01)
    assert r.details["energy_samples_j"] == pytest.approx(truth, rel=0.01)
    assert r.flags == []
    assert r.samples[0]["t_s"] == 0.0 and r.details["t0_s"] == pytest.approx(0.037)


@pytest.mark.parametrize("fault", [{"counter_reset_at_s": 4.2}, {"counter_wrap_mj": 123_456_789 + 1_500_000}])
def test_counter_reset_or_wrap_falls_back_to_samples(fault):
    r = window(FakeMeter(lambda t: 300.0, **fault), 10.0)
    assert "counter_reset" in r.flags
    assert r.details["energy_source"] == "samples"
    assert r.energy_j == pytest.approx(3000.0, rel=0.01)  # the plain counter difference would be far off
    assert "counter_vs_samples_disagree" not in r.flags


def test_gpu_without_energy_counter_integrates_samples():
    m = FakeMeter(lambda t: 250.0 + 50.0 * math.sin(t), has_counter=False)
    assert m.capabilities["energy_counter"] is False
    r = window(m, 10.0)
    truth = 250.0 * 10.0 + 50.0 * (1.0 - math.cos(10.0))
    assert "no_energy_counter" in r.flags
    assert r.energy_j == pytest.approx(truth, rel=0.01)
    assert all(s["energy_j"] is None for s in r.samples)


def test_sampler_stall_is_flagged():
    r = window(FakeMeter(lambda t: 300.0, stall=[(3.0, 5.0)]), 10.0)
    assert "sampler_stalled" in r.flags
    assert r.details["max_gap_s"] == pytest.approx(2.0, abs=0.1)
    assert r.energy_j == pytest.approx(3000.0, rel=0.01)  # the counter does not care


def test_power_cap_reason_is_flagged():
    r = window(FakeMeter(lambda t: 700.0, throttle_fn=lambda t: 0x4 if t > 2.0 else 0), 10.0)  # SwPowerCap
    assert "power_capped" in r.flags
    assert r.details["frac_power_capped"] == pytest.approx(0.8, abs=0.02)
    brief = window(FakeMeter(lambda t: 700.0, throttle_fn=lambda t: 0x4 if 5.0 < t < 5.5 else 0), 10.0)
    assert "power_capped" not in brief.flags  # 5% of samples: under the 10% threshold


@pytest.mark.parametrize("kw", [{"temp_fn": lambda t: 50 + 2 * t}, {"throttle_fn": lambda t: 0x20 if t > 9 else 0}])
def test_thermal_drift_is_flagged(kw):
    assert "thermal_drift" in window(FakeMeter(lambda t: 300.0, **kw), 10.0).flags


def test_counter_disagreeing_with_samples_is_flagged():
    r = window(FakeMeter(lambda t: 300.0, counter_gain=1.10), 10.0)
    assert "counter_vs_samples_disagree" in r.flags
    assert r.energy_j == pytest.approx(3300.0, rel=0.01)  # the counter stays the primary figure
    assert r.details["energy_samples_j"] == pytest.approx(3000.0, rel=0.01)
    assert window(FakeMeter(lambda t: 300.0, counter_gain=1.03), 10.0).flags == []


def test_short_window_has_few_samples_and_a_coarse_counter():
    r = window(FakeMeter(lambda t: 300.0), 0.35)
    assert "few_samples" in r.flags
    assert "counter_vs_samples_disagree" in r.flags  # 100 ms counter steps over 0.35 s


def test_one_second_average_power_source_still_integrates():
    r = window(FakeMeter(lambda t: 300.0, has_instant_power=False, has_counter=False), 10.0)
    assert r.details["power_source"] == "average_1s"
    assert r.energy_j == pytest.approx(3000.0, rel=0.01)


def test_window_protocol_errors():
    m = FakeMeter()
    with pytest.raises(MeasurementError):
        m.end_window()
    with pytest.raises(MeasurementError):
        m.sample()
    m.start_window()
    with pytest.raises(MeasurementError):
        m.start_window()
    m.close()
    with pytest.raises(MeasurementError):
        NvmlMeter(backend=FakeNvmlBackend(lambda t: 1.0, FakeClock()), sample_hz=0)
    blind = FakeNvmlBackend(lambda t: 1.0, FakeClock(), has_counter=False)
    blind.power_mw = lambda: (_ for _ in ()).throw(RuntimeError("GPU is lost"))
    with pytest.raises(MeasurementError, match="neither the energy counter nor power"):
        NvmlMeter(backend=blind, sampler="manual")
    assert isinstance(MeasurementError("x"), TrainsimError)


def test_thread_sampler_on_real_clock():
    m = FakeMeter(lambda t: 250.0, clock=time.monotonic, sample_hz=20)
    assert m.sampler == "thread" and isinstance(m, PowerMeter)
    m.start_window()
    time.sleep(0.8)
    r = m.end_window()
    assert m._thread is None
    assert 8 <= r.details["n_samples"] <= 25  # about 17 at 20 Hz; lenient for loaded CI machines
    assert r.details["energy_samples_j"] == pytest.approx(250.0 * r.duration_s, rel=1e-6)
    assert abs(r.details["energy_counter_j"] - 250.0 * r.duration_s) <= 250.0 * 0.1 + 1e-6  # one counter step
    m.close()


@settings(max_examples=25, deadline=None)
@given(levels=st.lists(st.floats(50, 700), min_size=1, max_size=5), step_s=st.floats(0.3, 4.0),
       offset=st.floats(0.0, 0.1), seconds=st.floats(3.0, 20.0))
def test_counter_energy_within_quantisation(levels, step_s, offset, seconds):
    def power(t):
        return levels[min(int(t / step_s), len(levels) - 1)]

    m = FakeMeter(power)
    m.clock.advance(offset)
    r = window(m, seconds)
    truth = m.backend.energy_at(offset + seconds) - m.backend.energy_at(offset)
    assert abs(r.energy_j - truth) <= 0.1 * max(levels) + 1e-3  # one 100 ms counter step at most
    n_steps = min(len(levels), int((offset + seconds) / step_s) + 1)
    assert abs(r.details["energy_samples_j"] - truth) <= n_steps * max(levels) / 15 + 1e-6


# --- real NvmlBackend -----------------------------------------------------------------------------------
def test_real_nvml_missing_raises_measurement_error():
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("NVML works on this machine")
    with pytest.raises(MeasurementError, match=r"NVML not available: .*--meter codecarbon or --meter none"):
        NvmlMeter()
    with pytest.raises(MeasurementError, match="NVML not available"):
        make_meter("nvml")


def test_nvml_package_missing_raises_measurement_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(MeasurementError, match="nvidia-ml-py is not installed"):
        NvmlMeter()


def fake_pynvml(*, energy_supported=True, instant_supported=True):
    """A pynvml stand-in with the real constants, structs and exception classes."""
    import pynvml as real

    mod = types.ModuleType("pynvml")
    for name in dir(real):
        if name.startswith(("NVML", "c_nvml", "nvmlClocks")):
            setattr(mod, name, getattr(real, name))
    state = {"t": 0.0, "init": 0}

    def not_supported(*_):
        raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)

    def field_values(h, ids):
        (fid, scope), = ids
        assert fid == 186 and scope == 0
        v = real.c_nvmlFieldValue_t()
        v.fieldId, v.valueType = fid, real.NVML_VALUE_TYPE_UNSIGNED_INT
        v.nvmlReturn = real.NVML_SUCCESS if instant_supported else real.NVML_ERROR_NOT_SUPPORTED
        v.value.uiVal = 400_000
        return (v,)

    mod.nvmlInit = lambda: state.__setitem__("init", state["init"] + 1)
    mod.nvmlShutdown = lambda: state.__setitem__("init", state["init"] - 1)
    mod.nvmlDeviceGetCount = lambda: 1
    mod.nvmlDeviceGetHandleByIndex = lambda i: "h0" if i == 0 else not_supported()
    mod.nvmlDeviceGetFieldValues = field_values
    mod.nvmlDeviceGetPowerUsage = lambda h: 380_000
    mod.nvmlDeviceGetTotalEnergyConsumption = (lambda h: int(5e6 + 400_000 * state["t"])) if energy_supported \
        else not_supported
    mod.nvmlDeviceGetClockInfo = lambda h, c: 1755
    mod.nvmlDeviceGetTemperature = lambda h, s: 61
    mod.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=100, memory=40)
    mod.nvmlDeviceGetCurrentClocksEventReasons = lambda h: 0
    mod.nvmlDeviceGetName = lambda h: "NVIDIA H100 80GB HBM3"
    mod.nvmlDeviceGetUUID = lambda h: "GPU-1234"
    mod.nvmlSystemGetDriverVersion = lambda: "580.00"
    mod.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000
    return mod, state


def test_real_backend_reads_instant_power_and_counter(monkeypatch):
    mod, state = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    clock = FakeClock()
    m = NvmlMeter(sampler="manual", clock=clock, sample_hz=2)
    assert m.backend.power_source == "instant" and all(m.capabilities.values())
    r = window_manual(m, clock, state, 10.0)
    assert r.energy_j == pytest.approx(4000.0) and r.details["energy_samples_j"] == pytest.approx(4000.0)
    assert r.flags == [] and r.meter == "nvml"
    assert r.details["device"]["name"] == "NVIDIA H100 80GB HBM3" and r.details["device"]["power_limit_w"] == 700
    m.close()
    assert state["init"] == 0
    with pytest.raises(MeasurementError, match="device index 3 not found"):
        NvmlMeter(device_index=3)


def test_real_backend_without_counter_or_instant_field(monkeypatch):
    mod, state = fake_pynvml(energy_supported=False, instant_supported=False)
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    clock = FakeClock()
    m = NvmlMeter(sampler="manual", clock=clock, sample_hz=2)
    assert m.backend.power_source == "average_1s" and not m.capabilities["energy_counter"]
    r = window_manual(m, clock, state, 10.0)
    assert "no_energy_counter" in r.flags and r.energy_j == pytest.approx(3800.0)


def window_manual(m, clock, state, seconds):
    m.start_window()
    for _ in range(int(seconds * m.sample_hz)):
        state["t"] = clock.advance(1.0 / m.sample_hz)
        m.sample()
    return m.end_window()


# --- traces and replay --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["trace.csv", "trace.csv.gz"])
def test_trace_round_trip_and_replay(tmp_path, name):
    r = window(FakeMeter(lambda t: 200.0 if t < 4.0 else 500.0, temp_fn=lambda t: 55 + t), 10.0)
    path = write_trace_csv(r.samples, tmp_path / name)
    assert read_trace_csv(path) == r.samples
    replay = ReplayMeter(path, windows=[(0.0, r.duration_s), (2.0, 7.0)], sample_hz=15)
    replay.start_window()
    again = replay.end_window()
    assert again.energy_j == pytest.approx(r.energy_j)
    assert again.duration_s == pytest.approx(r.duration_s)
    assert again.flags == r.flags and again.meter == "replay"
    replay.start_window()
    part = replay.end_window()
    assert part.energy_j == pytest.approx(200.0 * 2.0 + 500.0 * 3.0, rel=0.01)
    assert part.samples[0]["t_s"] == 0.0 and part.duration_s == pytest.approx(5.0)
    with pytest.raises(MeasurementError):
        replay.start_window()  # no windows left, no clock
    with pytest.raises(MeasurementError, match="outside the trace"):
        replay.reading(5.0, 30.0)


def test_replay_with_clock_and_without_counter(tmp_path):
    r = window(FakeMeter(lambda t: 300.0, has_counter=False), 6.0)
    path = write_trace_csv(r.samples, tmp_path / "t.csv")
    clock = FakeClock(1.0)
    replay = ReplayMeter(path, clock=clock)
    replay.start_window()
    clock.advance(3.0)
    out = replay.end_window()
    assert out.energy_j == pytest.approx(900.0) and "no_energy_counter" in out.flags
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(MeasurementError, match="expected columns"):
        ReplayMeter(bad)


# --- RAPL --------------------------------------------------------------------------------------------
def rapl_tree(root, domains):
    for name, (label, energy, rng) in domains.items():
        d = root / name
        d.mkdir(parents=True)
        (d / "name").write_text(label + "\n")
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{rng}\n")


def test_rapl_meter_sums_packages_and_handles_wrap(tmp_path):
    rng = 262_143_328_850
    rapl_tree(tmp_path, {"intel-rapl:0": ("package-0", 1_000_000, rng),
                         "intel-rapl:1": ("package-1", rng - 5_000_000, rng),
                         "intel-rapl:0:0": ("core", 7, rng), "intel-rapl:2": ("psys", 9, rng)})
    clock = FakeClock()
    m = make_meter("rapl", root=tmp_path, clock=clock)
    assert m.names == ["package-0", "package-1"]
    m.start_window()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("61000000\n")   # +60 J
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("35000000\n")   # wrapped: +40 J
    (tmp_path / "intel-rapl:0:0" / "energy_uj").write_text("999999999\n")  # subdomain: ignored
    clock.advance(2.0)
    r = m.end_window()
    assert r.energy_j == pytest.approx(100.0)
    assert r.mean_power_w == pytest.approx(50.0)
    assert r.details["wraps"] == 1 and r.flags == [] and r.meter == "rapl"


def test_rapl_meter_unavailable_or_unreadable(tmp_path):
    with pytest.raises(MeasurementError, match="--meter codecarbon"):
        CpuMeter(root=tmp_path)
    (tmp_path / "intel-rapl:0").mkdir()
    (tmp_path / "intel-rapl:0" / "energy_uj").mkdir()  # unreadable as a file, even for root
    with pytest.raises(MeasurementError, match="RAPL not readable"):
        CpuMeter(root=tmp_path)


# --- CodeCarbon, none, auto ---------------------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, *a: refuse(*a))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return calls


def test_network_block_fixture_works(no_network):
    requests = pytest.importorskip("requests")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("https://get.geojs.io/v1/ip/geo.json", timeout=0.5)
    assert no_network  # the probe above was seen and refused


def test_codecarbon_offline_window_without_network(no_network, tmp_path, monkeypatch):
    pytest.importorskip("codecarbon")
    monkeypatch.chdir(tmp_path)  # no stray ./.codecarbon.config
    m = make_meter("codecarbon", country_iso_code="FRA", output_dir=tmp_path / "cc")
    m.start_window()
    time.sleep(1.0)
    r = m.end_window()
    m.close()
    assert no_network == []
    assert r.energy_j is not None and math.isfinite(r.energy_j) and r.energy_j > 0
    assert r.duration_s == pytest.approx(1.0, abs=0.3)
    assert r.estimated and "ram" in r.details["estimated_components"]
    assert r.details["ram_energy_j"] == pytest.approx(r.details["ram_power_w"] * r.duration_s, rel=0.05)
    assert r.details["cpu_mode"] and r.details["pue"] == 1.0
    assert r.energy_j == pytest.approx(sum(r.details[f"{k}_energy_j"] for k in ("cpu", "gpu", "ram")))
    assert (tmp_path / "cc" / "emissions.csv").read_text().count("\n") == 2  # header + one window
    json.loads(json.dumps(r.to_dict()))


def test_codecarbon_rejects_unknown_country():
    pytest.importorskip("codecarbon")
    with pytest.raises(MeasurementError, match="ISO 3166 alpha-3"):
        make_meter("codecarbon", country_iso_code="XXX")


def test_null_meter_and_unknown_names():
    clock = FakeClock()
    m = make_meter("none", clock=clock)
    m.start_window()
    clock.advance(2.5)
    r = m.end_window()
    assert r.energy_j is None and r.mean_power_w is None and r.duration_s == 2.5 and r.meter == "none"
    assert isinstance(NullMeter(), PowerMeter)
    with pytest.raises(MeasurementError, match="unknown meter"):
        make_meter("joulemeter")
    with pytest.raises(MeasurementError, match="bad options"):
        make_meter("none", sample_hz=10)


def test_fake_meter_from_make_meter_runs_on_real_time():
    m = make_meter("fake", power_fn=lambda t: 100.0, sample_hz=50)
    m.start_window()
    time.sleep(0.3)
    r = m.end_window()
    m.close()
    assert r.meter == "fake" and r.duration_s == pytest.approx(0.3, abs=0.1)
    assert r.details["energy_samples_j"] == pytest.approx(100.0 * r.duration_s)


def test_meter_modules_import_nothing_heavy():
    code = ("import sys, calibrate.meters, calibrate.meters.nvml, calibrate.meters.codecarbon; "
            "print(sorted(m for m in ('torch', 'pynvml', 'codecarbon') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_auto_meter_does_not_raise_here(no_network):
    m = make_meter("auto", country_iso_code="USA", sample_hz=15)
    try:
        assert isinstance(m, PowerMeter)
        assert m.name in {"nvml", "rapl", "codecarbon"}
        if m.name != "nvml":
            assert any(t.startswith("nvml: NVML not available") for t in m.auto_tried)
    finally:
        m.close()
