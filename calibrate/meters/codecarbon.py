"""Host meters: CodeCarbon (CPU + GPU + RAM, offline) and Linux RAPL (CPU packages).

CodeCarbon: one `OfflineEmissionsTracker` per window, `pue=1`, never the network. A stopped
tracker cannot be restarted (codecarbon #1328) and `start()`/`stop()` swallow their errors, so
each window gets a fresh tracker whose result is checked. Each window is a *task* of its tracker
(`start_task`/`stop_task`, never `start`): after `start()` the periodic scheduler thread can
measure at the same moment as `stop()`, and both add the energy since the same last measurement
(seen with 3.3.2 here: a 1.0 s window with measure_power_secs=1 reported 40 J of RAM energy at
20 W, twice the truth). In pure task mode no periodic scheduler runs: energy is measured once,
in the caller's thread, at `stop_task` (the 1 s monitor thread only averages CPU load).
Only the *offline* tracker is used: the online one calls geojs.io / ipinfo.io and the
169.254.169.254 cloud metadata endpoints, and without a network silently falls back to
Canada/Quebec (measurement.md 1.4). GPU energy comes from the NVML counter (a measurement);
CPU energy is a RAPL measurement only in `intel_rapl` mode and otherwise a TDP x load model,
and RAM energy is always a DIMM-count model, so readings say `estimated=True` whenever a modelled
component is included. PUE stays 1: the simulator applies it (every CodeCarbon component energy
would otherwise include it).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from calibrate.errors import MeasurementError
from calibrate.meters.base import MeterReading

KWH_TO_J = 3.6e6
CC_HINT = "use --meter nvml, --meter rapl or --meter none"
MEASURED_CPU_MODES = {"intel_rapl", "windows_emi", "intel_power_gadget", "powermetrics", "raspberry_pmic"}
# config keys (from ~/.codecarbon.config, ./.codecarbon.config or CODECARBON_* env) that would make
# the offline tracker call the network although we pass explicit arguments
NETWORK_KEYS = ("co2_signal_api_token", "electricitymaps_api_token")


def _version_tuple(v: str) -> tuple[int, ...]:
    """(major, minor, patch) of a version string: the digits of each of its first three parts."""
    out = []
    for part in v.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


class CodeCarbonMeter:
    """Machine energy (CPU + GPU + RAM) per window from CodeCarbon's offline tracker.

    country_iso_code: ISO 3166 alpha-3 (carbon intensity only; energy does not depend on it);
    gpu_ids: NVML indices to track (None: CodeCarbon's default); output_dir: when given, each
    window appends its row (CodeCarbon's emissions.csv format) to `output_dir/emissions.csv`;
    measure_power_secs: the tracker's periodic interval, unused in task mode (kept for config
    parity; GPU energy is counter-based and CPU load is averaged by the 1 s monitor).
    """

    name = "codecarbon"

    def __init__(self, country_iso_code: str = "USA", gpu_ids: list[int] | None = None,
                 output_dir: str | Path | None = None, measure_power_secs: float = 1.0,
                 tracking_mode: str = "machine", log_level: str = "error"):
        try:
            import codecarbon
            from codecarbon import OfflineEmissionsTracker
            from codecarbon.core.config import get_hierarchical_config
            from codecarbon.input import DataSource
        except ImportError as exc:
            raise MeasurementError(f"CodeCarbon not available: {exc} (pip install 'codecarbon>=3.2.9'); "
                                   f"{CC_HINT}") from exc
        self.version = getattr(codecarbon, "__version__", "unknown")
        if _version_tuple(self.version) < (3, 2, 9):
            logging.getLogger(__name__).warning(
                "codecarbon %s < 3.2.9 blocks 0.5 s per CPU read in cpu_load mode (codecarbon #878)", self.version)
        conf = get_hierarchical_config()
        bad = [k for k in NETWORK_KEYS if conf.get(k)]
        if bad:
            raise MeasurementError(f"CodeCarbon configuration sets {', '.join(bad)} (from .codecarbon.config in "
                                   f"the working or home directory, or CODECARBON_* env), which makes even the "
                                   f"offline tracker call the network; remove it")
        self.external_config_keys = sorted(conf)
        code = str(country_iso_code).upper()
        mix = DataSource().get_global_energy_mix_data()
        if code not in mix:
            raise MeasurementError(f"country_iso_code {country_iso_code!r} unknown to CodeCarbon: expected an "
                                   f"ISO 3166 alpha-3 code such as USA, FRA, DEU")
        if tracking_mode not in ("machine", "process"):
            raise MeasurementError(f"tracking_mode must be 'machine' or 'process', got {tracking_mode!r}")
        self.country_iso_code, self.carbon_intensity_g_per_kwh = code, mix[code].get("carbon_intensity")
        self.gpu_ids, self.measure_power_secs = gpu_ids, float(measure_power_secs)
        self.tracking_mode, self.log_level = tracking_mode, log_level
        self.output_dir = Path(output_dir) if output_dir is not None else None
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self._cls, self._tracker, self._t0 = OfflineEmissionsTracker, None, None
        # CodeCarbon logs INFO/WARNING before applying log_level; set its logger first.
        logging.getLogger("codecarbon").setLevel(log_level.upper())
        # Probe the hardware once now (cached per process since 3.2.9), not inside the first window.
        self.hardware = self._new_tracker().get_detected_hardware()

    def _new_tracker(self):
        """A fresh offline tracker (pue=1, no output, no network); a MeasurementError when it cannot be made."""
        kw: dict[str, Any] = dict(
            country_iso_code=self.country_iso_code, pue=1.0, measure_power_secs=self.measure_power_secs,
            log_level=self.log_level, tracking_mode=self.tracking_mode, gpu_ids=self.gpu_ids,
            allow_multiple_runs=True, emissions_endpoint=None, electricitymaps_api_token=None,
            project_name="trainsim-calibrate", experiment_name="window")
        try:
            from codecarbon import OutputMethod  # noqa: F401  (>= 3.2.8): output_methods=[] writes nothing
            kw["output_methods"] = []
        except ImportError:
            kw["save_to_file"] = False
        try:
            return self._cls(**kw)
        except Exception as exc:
            raise MeasurementError(f"CodeCarbon tracker could not be created: {type(exc).__name__}: {exc}") from exc

    def start_window(self) -> None:
        if self._tracker is not None:
            raise MeasurementError("start_window called twice without end_window")
        tracker = self._new_tracker()
        try:
            tracker.start_task("window")
        except Exception as exc:
            raise MeasurementError(f"CodeCarbon could not start a window: {type(exc).__name__}: {exc}; "
                                   f"{CC_HINT}") from exc
        if getattr(tracker, "_active_task", None) is None:  # start_task logs and returns on some errors
            raise MeasurementError("CodeCarbon did not start the window (rerun with log_level='warning' to see "
                                   f"why); {CC_HINT}")
        self._tracker, self._t0 = tracker, time.monotonic()

    @staticmethod
    def modes(tracker: Any) -> dict[str, str]:
        """How CodeCarbon measured each component (cpu: cpu_load | intel_rapl | constant | ...)."""
        out: dict[str, str] = {}
        for hw in getattr(tracker, "_hardware", []):
            kind = type(hw).__name__
            if kind == "CPU":
                out["cpu"] = str(getattr(hw, "_mode", "unknown"))
            elif kind == "RAM":
                out["ram"] = "user_constant" if getattr(hw, "_force_ram_power", None) else "dimm_model"
            elif kind == "GPU":
                out["gpu"] = "nvml_counter"
            elif kind == "AppleSiliconChip":
                out[str(getattr(hw, "chip_part", "cpu")).lower()] = "powermetrics"
            elif kind == "Raspberry":
                out[str(getattr(hw, "chip_part", "cpu")).lower()] = "raspberry_pmic"
        return out

    def end_window(self) -> MeterReading:
        if self._tracker is None:
            raise MeasurementError("end_window called without start_window")
        tracker, t0 = self._tracker, self._t0
        self._tracker = self._t0 = None
        try:
            data = tracker.stop_task()
        except Exception as exc:
            raise MeasurementError(f"CodeCarbon could not end the window: {type(exc).__name__}: {exc}") from exc
        wall = time.monotonic() - t0
        if data is None:
            raise MeasurementError("CodeCarbon returned no emissions data for the window (rerun with "
                                   f"log_level='warning' to see why); {CC_HINT}")
        if self.output_dir is not None:
            from codecarbon.output_methods.file import FileOutput
            FileOutput("emissions.csv", str(self.output_dir), "append").out(data, data)
        modes = self.modes(tracker)
        parts = {k: float(getattr(data, f"{k}_energy", 0.0) or 0.0) * KWH_TO_J for k in ("cpu", "gpu", "ram")}
        estimated_parts = sorted(k for k in ("cpu", "ram") if parts[k] > 0 and modes.get(k) not in MEASURED_CPU_MODES)
        energy = float(data.energy_consumed) * KWH_TO_J
        duration = float(data.duration) if data.duration else wall
        details = {
            "cpu_energy_j": parts["cpu"], "gpu_energy_j": parts["gpu"], "ram_energy_j": parts["ram"],
            "cpu_power_w": float(data.cpu_power), "gpu_power_w": float(data.gpu_power),
            "ram_power_w": float(data.ram_power), "cpu_mode": modes.get("cpu"), "ram_mode": modes.get("ram"),
            "gpu_mode": modes.get("gpu"), "estimated_components": estimated_parts,
            "cpu_model": data.cpu_model, "cpu_count": data.cpu_count, "gpu_count": data.gpu_count,
            "gpu_model": data.gpu_model, "ram_total_gb": data.ram_total_size,
            "emissions_kg": float(data.emissions), "country_iso_code": self.country_iso_code,
            "carbon_intensity_g_per_kwh": self.carbon_intensity_g_per_kwh, "pue": float(data.pue),
            "tracking_mode": self.tracking_mode, "codecarbon_version": self.version, "wall_s": wall,
            "external_config_keys": self.external_config_keys,
            "emissions_csv": str(self.output_dir / "emissions.csv") if self.output_dir else None}
        return MeterReading(meter=self.name, energy_j=energy, duration_s=duration,
                            mean_power_w=energy / duration if duration > 0 else None,
                            flags=[], estimated=bool(estimated_parts), details=details)

    def close(self) -> None:
        if self._tracker is not None:
            try:
                self._tracker.stop_task()  # stops its 1 s monitor thread
            except Exception:  # closing must not raise; the window is abandoned anyway
                pass
            finally:
                self._tracker = self._t0 = None


RAPL_HINT = "use --meter codecarbon (CPU estimate) or --meter none"


class CpuMeter:
    """CPU package energy from Linux RAPL powercap counters (`intel-rapl:N/energy_uj`, µJ).

    Sums the package domains (`intel-rapl:N`, not their core/uncore/dram subdomains, and not
    `psys`), correcting one wrap per window with `max_energy_range_uj`: keep windows shorter than
    the wrap period (max range / power: about 22 min at 200 W for the usual 262 kJ range).
    """

    name = "rapl"

    def __init__(self, root: str | Path = "/sys/class/powercap", clock: Callable[[], float] = time.monotonic):
        self.root, self._clock, self._start = Path(root), clock, None
        doms = sorted(p for p in self.root.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name))
        names = {p: self._text(p / "name", default=p.name) for p in doms}
        self.domains = [p for p in doms if names[p] != "psys"] or doms
        if not self.domains:
            raise MeasurementError(f"RAPL not available: no intel-rapl:N domains under {self.root}; {RAPL_HINT}")
        self.names = [names[p] for p in self.domains]
        self.max_range_uj = [self._int(p / "max_energy_range_uj", required=False) for p in self.domains]
        self._read()  # fail now, not in the first window

    @staticmethod
    def _text(path: Path, default: str) -> str:
        try:
            return path.read_text().strip()
        except OSError:
            return default

    def _int(self, path: Path, required: bool = True) -> int | None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError) as exc:
            if not required:
                return None
            raise MeasurementError(f"RAPL not readable: {path}: {exc} (energy_uj is root-only on most "
                                   f"kernels since 2020); {RAPL_HINT}") from exc

    def _read(self) -> list[int]:
        return [self._int(p / "energy_uj") for p in self.domains]

    def start_window(self) -> None:
        self._start = (self._clock(), self._read())

    def end_window(self) -> MeterReading:
        if self._start is None:
            raise MeasurementError("end_window called without start_window")
        (t0, e0), e1, t1 = self._start, self._read(), self._clock()
        self._start = None
        per, flags, wraps = {}, [], 0
        for name, a, b, rng in zip(self.names, e0, e1, self.max_range_uj):
            d = b - a
            if d < 0 and rng:
                d, wraps = d + rng, wraps + 1
            elif d < 0:
                flags.append("counter_reset")
            per[name] = d * 1e-6
        energy = None if flags else sum(per.values())
        duration = t1 - t0
        return MeterReading(meter=self.name, energy_j=energy, duration_s=duration,
                            mean_power_w=energy / duration if energy is not None and duration > 0 else None,
                            flags=flags, details={"domains_j": per, "wraps": wraps, "root": str(self.root)})

    def close(self) -> None:
        self._start = None
