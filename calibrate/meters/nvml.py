"""NVML meter: energy counter at window edges plus a 10-20 Hz sampler; real and fake backends.

`NvmlMeter` reads `nvmlDeviceGetTotalEnergyConsumption` (mJ since driver load, Volta+) at the
window edges and samples instant power (`nvmlDeviceGetFieldValues` with NVML_FI_DEV_POWER_INSTANT
= 186, GPU scope; else `nvmlDeviceGetPowerUsage`, a 1 s average on Ampere and newer), the counter,
SM clock, temperature, utilisation and clock-event reasons (measurement.md 0, 2.2, 4, 7.2).
All NVML calls go through a backend (`NvmlBackend` wraps pynvml; `FakeNvmlBackend` integrates a
scripted power trace on an injected clock), so the window logic is tested without a GPU.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from calibrate.errors import MeasurementError
from calibrate.meters.base import FakeClock, MeterReading, QualityThresholds, reading_from_samples

NVML_HINT = "use --meter codecarbon or --meter none on machines without an NVIDIA driver"
NVML_FI_DEV_POWER_INSTANT = 186
NVML_POWER_SCOPE_GPU = 0
_VALUE_ATTR = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
OPTIONAL_READS = (("clock_mhz", "sm_clock_mhz"), ("temp_c", "temperature_c"), ("util_pct", "utilization_pct"),
                  ("throttle_reasons", "clocks_event_reasons"))


class NvmlNotSupported(Exception):
    """The device does not support this NVML query (NVML_ERROR_NOT_SUPPORTED)."""


class NvmlBackend:
    """The NVML calls NvmlMeter needs, on one device (NVML index, or UUID when given)."""

    name = "pynvml"

    def __init__(self, device_index: int = 0, uuid: str | None = None):
        try:
            import pynvml
        except ImportError as exc:
            raise MeasurementError(f"NVML not available: nvidia-ml-py is not installed ({exc}); {NVML_HINT}") from exc
        try:
            pynvml.nvmlInit()
        except (pynvml.NVMLError, OSError) as exc:
            raise MeasurementError(f"NVML not available: {type(exc).__name__}: {exc}; {NVML_HINT}") from exc
        self._nv = pynvml
        which = f"uuid {uuid}" if uuid else f"index {device_index}"
        try:
            if uuid:
                uuid = uuid if str(uuid).startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
                self._h = pynvml.nvmlDeviceGetHandleByUUID(uuid)
            else:
                self._h = pynvml.nvmlDeviceGetHandleByIndex(int(device_index))
        except pynvml.NVMLError as exc:
            count = self._safe(pynvml.nvmlDeviceGetCount)
            pynvml.nvmlShutdown()
            raise MeasurementError(f"NVML device {which} not found ({count} devices): {exc}") from exc
        self.device_index = device_index
        try:
            self._instant_power()
            self.power_source = "instant"
        except Exception:
            self.power_source = "average_1s"  # nvmlDeviceGetPowerUsage: 1 s average on Ampere+/Hopper

    @staticmethod
    def _safe(fn, *args):
        try:
            out = fn(*args)
            return out.decode() if isinstance(out, bytes) else out
        except Exception:
            return None

    def _call(self, fn, *args):
        try:
            return fn(self._h, *args)
        except self._nv.NVMLError_NotSupported as exc:
            raise NvmlNotSupported(str(exc)) from exc

    def _instant_power(self) -> float:
        (v,) = self._call(self._nv.nvmlDeviceGetFieldValues, [(NVML_FI_DEV_POWER_INSTANT, NVML_POWER_SCOPE_GPU)])
        if v.nvmlReturn != self._nv.NVML_SUCCESS:
            raise NvmlNotSupported(f"field {NVML_FI_DEV_POWER_INSTANT}: NVML return {v.nvmlReturn}")
        return float(getattr(v.value, _VALUE_ATTR[v.valueType]))

    def energy_mj(self) -> int:
        return int(self._call(self._nv.nvmlDeviceGetTotalEnergyConsumption))

    def power_mw(self) -> float:
        if self.power_source == "instant":
            return self._instant_power()
        return float(self._call(self._nv.nvmlDeviceGetPowerUsage))

    def sm_clock_mhz(self) -> int:
        return int(self._call(self._nv.nvmlDeviceGetClockInfo, self._nv.NVML_CLOCK_SM))

    def temperature_c(self) -> int:
        return int(self._call(self._nv.nvmlDeviceGetTemperature, self._nv.NVML_TEMPERATURE_GPU))

    def utilization_pct(self) -> int:
        return int(self._call(self._nv.nvmlDeviceGetUtilizationRates).gpu)

    def clocks_event_reasons(self) -> int:
        fn = getattr(self._nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            self._nv.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(self._call(fn))

    def info(self) -> dict[str, Any]:
        nv, h = self._nv, self._h
        limit = self._safe(nv.nvmlDeviceGetEnforcedPowerLimit, h)
        return {"name": self._safe(nv.nvmlDeviceGetName, h), "uuid": self._safe(nv.nvmlDeviceGetUUID, h),
                "nvml_index": self.device_index, "driver": self._safe(nv.nvmlSystemGetDriverVersion),
                "power_limit_w": limit / 1000 if limit is not None else None}

    def close(self) -> None:
        if self._nv is not None:
            self._safe(self._nv.nvmlShutdown)
            self._nv = None


class FakeNvmlBackend:
    """NVML imitation: integrates `power_fn(t)` (W, t in s since the backend was made) on `clock`.

    The energy counter holds the integral quantised to `counter_period_s` updates (100 ms on
    real GPUs), starting at `counter_start_mj`, times `counter_gain` (a miscalibrated counter).
    Faults: `counter_reset_at_s` (the counter restarts from 0, as after a driver reload),
    `counter_wrap_mj` (the counter wraps modulo this), `has_counter=False` (NotSupported, pre-Volta
    or vGPU), `has_instant_power=False` (power reads are 1 s averages, as nvmlDeviceGetPowerUsage
    on Hopper). Optional scripts: `temp_fn`, `throttle_fn` (reason bits), `clock_fn`, `util_fn`.
    """

    name = "fake"

    def __init__(self, power_fn: Callable[[float], float], clock: Callable[[], float] = time.monotonic, *,
                 counter_period_s: float = 0.1, counter_start_mj: int = 123_456_789, counter_gain: float = 1.0,
                 counter_reset_at_s: float | None = None, counter_wrap_mj: int | None = None,
                 has_counter: bool = True, has_instant_power: bool = True,
                 temp_fn: Callable[[float], float] | None = None, throttle_fn: Callable[[float], int] | None = None,
                 clock_fn: Callable[[float], float] | None = None, util_fn: Callable[[float], float] | None = None,
                 dt_s: float = 1e-3):
        self.power_fn, self.clock, self.origin = power_fn, clock, clock()
        self.counter_period_s, self.counter_start_mj = counter_period_s, counter_start_mj
        self.counter_gain, self.counter_reset_at_s = counter_gain, counter_reset_at_s
        self.counter_wrap_mj, self.has_counter = counter_wrap_mj, has_counter
        self.power_source = "instant" if has_instant_power else "average_1s"
        self.temp_fn, self.throttle_fn = temp_fn or (lambda t: 60), throttle_fn or (lambda t: 0)
        self.clock_fn, self.util_fn = clock_fn or (lambda t: 1980), util_fn or (lambda t: 100)
        self._dt, self._grid = dt_s, [0.0]  # _grid[k]: energy (J) at k*dt, midpoint rule

    def now(self) -> float:
        return self.clock() - self.origin

    def energy_at(self, t: float) -> float:
        """True energy (J) from the backend origin to t."""
        if t <= 0:
            return 0.0
        x = t / self._dt
        k = int(x)
        while len(self._grid) <= k + 1:
            j = len(self._grid) - 1
            self._grid.append(self._grid[-1] + self.power_fn((j + 0.5) * self._dt) * self._dt)
        return self._grid[k] + (self._grid[k + 1] - self._grid[k]) * (x - k)

    def energy_mj(self) -> int:
        if not self.has_counter:
            raise NvmlNotSupported("energy counter not supported (fake device)")
        t, p = self.now(), self.counter_period_s
        tq = math.floor(t / p + 1e-9) * p if p > 0 else t
        reset = self.counter_reset_at_s
        if reset is not None and tq >= reset:
            mj = (self.energy_at(tq) - self.energy_at(reset)) * 1000 * self.counter_gain
        else:
            mj = self.counter_start_mj + self.energy_at(tq) * 1000 * self.counter_gain
        return int(mj % self.counter_wrap_mj if self.counter_wrap_mj else mj)

    def power_mw(self) -> float:
        t = self.now()
        if self.power_source == "instant":
            return float(self.power_fn(t)) * 1000
        span = min(1.0, t)
        return (self.energy_at(t) - self.energy_at(t - span)) / span * 1000 if span > 0 else self.power_fn(t) * 1000

    def sm_clock_mhz(self) -> int:
        return int(self.clock_fn(self.now()))

    def temperature_c(self) -> int:
        return int(self.temp_fn(self.now()))

    def utilization_pct(self) -> int:
        return int(self.util_fn(self.now()))

    def clocks_event_reasons(self) -> int:
        return int(self.throttle_fn(self.now()))

    def info(self) -> dict[str, Any]:
        return {"name": "Fake GPU", "uuid": "GPU-fake", "nvml_index": 0, "power_limit_w": 700.0}

    def close(self) -> None:
        pass


class NvmlMeter:
    """GPU board energy per window: counter at the edges, sampler trace for checks and replay.

    sampler="thread" samples at `sample_hz` in a daemon thread during each window; "manual" leaves
    sampling to the caller (`sample()`), for deterministic tests on a FakeClock. Edge samples are
    always taken. Flags and energy fallbacks: see `calibrate.meters.base.analyse_samples`.
    """

    name = "nvml"

    def __init__(self, device_index: int = 0, sample_hz: float = 15.0, backend: Any = None,
                 clock: Callable[[], float] = time.monotonic, sampler: str = "thread", uuid: str | None = None,
                 thresholds: QualityThresholds = QualityThresholds()):
        if not 0 < sample_hz <= 1000:
            raise MeasurementError(f"sample_hz must be in (0, 1000] Hz, got {sample_hz}")
        if sampler not in ("thread", "manual"):
            raise MeasurementError(f"sampler must be 'thread' or 'manual', got {sampler!r}")
        self.backend = backend if backend is not None else NvmlBackend(device_index, uuid)
        self.sample_hz, self.sampler, self.thresholds, self._clock = float(sample_hz), sampler, thresholds, clock
        self._lock, self._thread, self._stop = threading.Lock(), None, threading.Event()
        self._samples: list[dict[str, Any]] | None = None
        self._t0, self._errors, self._thread_error = 0.0, 0, None
        self._probe_errors: dict[str, str] = {}
        self.capabilities = {"energy_counter": self._works("energy_mj"), "power": self._works("power_mw")}
        self.capabilities.update({key: self._works(fn) for key, fn in OPTIONAL_READS})
        self.device = self.backend.info()
        if not (self.capabilities["energy_counter"] or self.capabilities["power"]):
            self.backend.close()
            raise MeasurementError(f"NVML device {self.device.get('name')} reports neither the energy counter nor "
                                   f"power ({self._probe_errors or 'not supported'}); {NVML_HINT}")

    def _works(self, fn: str) -> bool:
        try:
            getattr(self.backend, fn)()
            return True
        except NvmlNotSupported:
            return False
        except Exception as exc:  # e.g. NVMLError_Unknown under a VM: record, don't crash
            self._probe_errors[fn] = f"{type(exc).__name__}: {exc}"
            return False

    def _read(self, fn: str, scale: float = 1.0) -> Any:
        try:
            v = getattr(self.backend, fn)()
            return v * scale if scale != 1.0 else v
        except Exception:
            self._errors += 1
            return None

    def sample(self, edge: bool = False) -> None:
        """Take one sample now (the thread does this by itself unless sampler='manual')."""
        with self._lock:
            if self._samples is None:
                raise MeasurementError("sample() called outside a window (call start_window first)")
            t = self._clock()
            if not self._samples:
                self._t0 = t
            cap = self.capabilities
            s: dict[str, Any] = {"t_s": t - self._t0,
                                 "power_w": self._read("power_mw", 1e-3) if cap["power"] else None,
                                 "energy_j": self._read("energy_mj", 1e-3) if cap["energy_counter"] else None}
            for key, fn in OPTIONAL_READS:
                if self.capabilities[key]:
                    s[key] = self._read(fn)
            if edge or s["power_w"] is not None or s["energy_j"] is not None:
                self._samples.append(s)

    def _run(self) -> None:
        period = 1.0 / self.sample_hz
        due = time.perf_counter() + period
        while not self._stop.wait(max(0.0, due - time.perf_counter())):
            try:
                self.sample()
            except Exception as exc:  # keep the window alive; flag it
                self._thread_error = f"{type(exc).__name__}: {exc}"
                return
            due = max(due + period, time.perf_counter())

    def start_window(self) -> None:
        if self._samples is not None:
            raise MeasurementError("start_window called twice without end_window")
        self._samples, self._errors, self._thread_error = [], 0, None
        self.sample(edge=True)
        if self.sampler == "thread":
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
            self._thread.start()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5.0)
            self._thread = None

    def end_window(self) -> MeterReading:
        if self._samples is None:
            raise MeasurementError("end_window called without start_window")
        self._stop_thread()
        self.sample(edge=True)
        samples, self._samples = self._samples, None
        details = {"backend": self.backend.name, "power_source": getattr(self.backend, "power_source", None),
                   "sampler": self.sampler, "sample_hz": self.sample_hz, "t0_s": self._t0,
                   "sample_errors": self._errors, "capabilities": dict(self.capabilities), "device": self.device}
        if self._probe_errors:
            details["probe_errors"] = dict(self._probe_errors)
        if self._thread_error:
            details["sampler_error"] = self._thread_error
        return reading_from_samples(self.name, samples, nominal_period_s=1.0 / self.sample_hz,
                                    thresholds=self.thresholds, details=details,
                                    extra_flags=["sampler_error"] if self._thread_error else [])

    def close(self) -> None:
        self._stop_thread()
        self._samples = None
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeMeter(NvmlMeter):
    """NvmlMeter over a FakeNvmlBackend: `power_fn(t)` W on `clock` (a FakeClock by default).

    With a FakeClock the sampler is manual and `run(seconds)` advances the clock, sampling at
    `sample_hz` except inside the `stall` intervals ([(t_start, t_end)] in power_fn time). With a
    real clock (time.monotonic) the sampler thread runs, for bench tests on a CPU.
    Other keywords go to FakeNvmlBackend (counter faults, temp_fn, throttle_fn, ...).
    """

    name = "fake"

    def __init__(self, power_fn: Callable[[float], float] = lambda t: 300.0, clock: Callable[[], float] | None = None,
                 *, sample_hz: float = 15.0, sampler: str | None = None, stall: Sequence[tuple[float, float]] = (),
                 thresholds: QualityThresholds = QualityThresholds(), **backend_kw: Any):
        clock = clock if clock is not None else FakeClock()
        sampler = sampler or ("manual" if isinstance(clock, FakeClock) else "thread")
        self.clock, self.stall = clock, list(stall)
        super().__init__(sample_hz=sample_hz, backend=FakeNvmlBackend(power_fn, clock, **backend_kw), clock=clock,
                         sampler=sampler, thresholds=thresholds)

    def run(self, seconds: float) -> None:
        """Advance the FakeClock by `seconds`, sampling every 1/sample_hz s outside stall intervals."""
        if not isinstance(self.clock, FakeClock):
            raise MeasurementError("FakeMeter.run needs a FakeClock; with a real clock the sampler thread samples")
        start, period = self.clock.t, 1.0 / self.sample_hz
        i = 1
        while i * period < seconds - 1e-9:  # the edge sample of end_window covers t = seconds
            self.clock.t = start + i * period
            i += 1
            t = self.backend.now()
            if self._samples is not None and not any(a <= t < b for a, b in self.stall):
                self.sample()
        self.clock.t = start + seconds
