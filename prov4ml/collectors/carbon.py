"""Energy and emissions since the previous reading, estimated by codecarbon offline.

``CarbonMeter().measure()`` returns :class:`~prov4ml.collectors.system.Reading`
objects for the interval since the previous call (the first call: since the
tracker started). codecarbon (extra ``prov4ml[carbon]``) runs as an
``OfflineEmissionsTracker``: the carbon intensity comes from its bundled
per-country energy-mix table, and every codecarbon output (CSV file, API,
logger, Prometheus) is off, so no network is used and nothing is written.

codecarbon exposes cumulative totals only through ``stop()`` / ``flush()``
(which also write outputs); the meter asks the running tracker for one fresh
measurement and reads its cumulative ``EmissionsData``, then subtracts the
previous totals. Those two tracker methods are private in codecarbon 2.x and
3.x (tested with 3.3.2), hence one helper, :func:`_totals`, touches them.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any, Dict, List, Optional

from .._optional import available, require
from ..exceptions import InvalidValueError, MissingDependencyError, Prov4MLError
from .system import Reading

__all__ = ["CarbonMeter"]

_KWH_TO_J = 3.6e6
_KG_TO_G = 1000.0

# codecarbon's CPU estimation modes, in words (CPU._mode). The load- and
# TDP-based ones are estimates: no hardware energy counter is read.
_CPU_MODES: Dict[str, str] = {
    "intel_rapl": "RAPL energy counters (measured)",
    "intel_power_gadget": "Intel Power Gadget (measured)",
    "windows_emi": "Windows Energy Meter Interface (measured)",
    "apple_powermetrics": "powermetrics (measured)",
    "cpu_load": "TDP x load estimate (no RAPL)",
    "constant": "constant 50% of TDP estimate (no RAPL, no load)",
}

# The readings, in order: name -> unit.
METRICS: Dict[str, str] = {
    "cpu_energy": "J",
    "gpu_energy": "J",
    "ram_energy": "J",
    "energy_consumed": "J",
    "cpu_power": "W",
    "gpu_power": "W",
    "ram_power": "W",
    "emissions": "gCO2eq",
    "emissions_rate": "gCO2eq/s",
}


class CarbonMeter:
    """Energy (J), average power (W) and emissions (gCO2eq) per interval between calls.

    Building it is cheap; codecarbon is imported and its tracker started on the
    first :meth:`measure` (about 1.5 s once per process for hardware detection;
    later trackers in the same process reuse codecarbon's cache).
    """

    def __init__(self, country_iso_code: str = "USA", output_dir: Optional[str] = None) -> None:
        if not (isinstance(country_iso_code, str) and len(country_iso_code) == 3 and country_iso_code.isalpha()):
            raise InvalidValueError(
                f"country_iso_code must be a 3-letter ISO 3166 code such as 'USA' or 'FRA', "
                f"got {country_iso_code!r}"
            )
        self.country_iso_code = country_iso_code.upper()
        self.output_dir = output_dir
        self._lock = threading.Lock()
        self._tracker: Any = None
        self._started = False
        self._stopped = False
        self._last: Optional[Dict[str, float]] = None  # cumulative totals at the previous reading

    @property
    def mode(self) -> str:
        """How codecarbon estimates power here, read from its detected hardware.

        Detects the hardware on first access (the same one-time cost as the
        first :meth:`measure`); never raises.
        """
        if not available("codecarbon"):
            return 'not available: codecarbon is not installed (pip install "prov4ml[carbon]")'
        try:
            with self._lock:
                tracker = self._get_tracker()
                ensure = getattr(tracker, "_ensure_hardware_ready", None)
                if callable(ensure):  # codecarbon 3.x detects hardware lazily
                    ensure()
                return _describe(tracker)
        except MissingDependencyError as exc:
            return f"not available: {exc}"
        except Exception as exc:  # a description must not break a run
            return f"unknown: {type(exc).__name__}: {exc}"

    def measure(self) -> List[Reading]:
        """Readings for the interval since the previous call (or since the tracker started)."""
        with self._lock:
            if self._stopped:
                raise Prov4MLError("this CarbonMeter was stopped; create a new CarbonMeter to measure again")
            if not self._started:
                self._start()
            totals = _totals(self._tracker, fresh=True)
            previous: Dict[str, float] = self._last or totals  # _start always sets it
            self._last = totals
        return _interval(previous, totals)

    def stop(self) -> None:
        """Stop codecarbon's tracker and its threads; later calls to measure() raise."""
        with self._lock:
            if self._started and not self._stopped:
                self._tracker.stop()
            self._stopped = True

    def _get_tracker(self) -> Any:
        if self._tracker is None:
            codecarbon = require("codecarbon", "carbon", "log_carbon_metrics")
            _check_country(self.country_iso_code)
            kwargs: Dict[str, Any] = {
                "country_iso_code": self.country_iso_code,
                "log_level": "error",
                **_no_outputs(codecarbon),
            }
            if self.output_dir is not None:
                kwargs["output_dir"] = self.output_dir
            _silence_codecarbon()
            self._tracker = codecarbon.OfflineEmissionsTracker(**kwargs)
        return self._tracker

    def _start(self) -> None:
        tracker = self._get_tracker()
        tracker.start()  # codecarbon swallows its own exceptions here
        if getattr(tracker, "_start_time", None) is None:
            raise Prov4MLError(
                "codecarbon's tracker did not start (see codecarbon's log); "
                "check its configuration (~/.codecarbon.config, ./.codecarbon.config) "
                "or disable carbon metrics"
            )
        # The baseline: also loads the energy-mix data, so later calls stay cheap.
        self._last = _totals(tracker, fresh=False)
        self._started = True


def _silence_codecarbon() -> None:
    """Raise codecarbon's logger to ERROR: its INFO/WARNING lines are noise inside a training log.

    codecarbon sets its logger to the tracker's ``log_level`` anyway; doing it
    before construction also silences the lines its constructor prints first.
    """
    logger = logging.getLogger("codecarbon")
    if logger.getEffectiveLevel() < logging.ERROR:
        logger.setLevel(logging.ERROR)


def _no_outputs(codecarbon: Any) -> Dict[str, Any]:
    """Keyword arguments that turn every codecarbon output off (no file, no API, no logger).

    Explicit, so that a ``.codecarbon.config`` asking for the API cannot make a
    run talk to the network. codecarbon 3.x takes ``output_methods`` (and
    deprecates the ``save_to_*`` flags); 2.x only has the flags.
    """
    params = inspect.signature(codecarbon.emissions_tracker.BaseEmissionsTracker.__init__).parameters
    if "output_methods" in params:
        return {"output_methods": []}
    flags = ("save_to_file", "save_to_api", "save_to_logger", "save_to_prometheus", "save_to_logfire")
    return {flag: False for flag in flags if flag in params}


def _check_country(code: str) -> None:
    """Reject a country codecarbon has no energy mix for (it would only log an error)."""
    from codecarbon.input import DataSource

    try:
        known = DataSource().get_global_energy_mix_data()
    except Exception:  # an unexpected codecarbon layout: let codecarbon decide
        return
    if code not in known:
        raise InvalidValueError(
            f"codecarbon has no energy mix for country_iso_code {code!r}; "
            f"use a 3-letter ISO code it knows, e.g. 'USA', 'FRA', 'DEU'"
        )


def _totals(tracker: Any, fresh: bool) -> Dict[str, float]:
    """Cumulative energy (kWh), emissions (kg) and the time of reading, from a running tracker."""
    if fresh:
        # Integrate up to now: codecarbon's own scheduler measures only every 15 s.
        # (Not the "_if_stale" variant: two calls 10 ms apart must not report 0 W.)
        tracker._measure_power_and_energy()
    data = tracker._prepare_emissions_data()
    return {
        # The totals cover the time up to codecarbon's last measurement, exactly.
        "time": float(getattr(tracker, "_last_measured_time", None) or time.perf_counter()),
        "cpu_energy": float(data.cpu_energy),
        "gpu_energy": float(data.gpu_energy),
        "ram_energy": float(data.ram_energy),
        "energy_consumed": float(data.energy_consumed),
        "emissions": float(data.emissions),
    }


def _interval(previous: Dict[str, float], now: Dict[str, float]) -> List[Reading]:
    """The readings between two cumulative totals; power = energy / elapsed time."""
    seconds = now["time"] - previous["time"]
    joules = {k: (now[k] - previous[k]) * _KWH_TO_J for k in ("cpu_energy", "gpu_energy", "ram_energy", "energy_consumed")}
    grams = (now["emissions"] - previous["emissions"]) * _KG_TO_G

    def per_second(value: float) -> float:
        return value / seconds if seconds > 0 else 0.0

    values = {
        **joules,
        "cpu_power": per_second(joules["cpu_energy"]),
        "gpu_power": per_second(joules["gpu_energy"]),
        "ram_power": per_second(joules["ram_energy"]),
        "emissions": grams,
        "emissions_rate": per_second(grams),
    }
    return [Reading(name, values[name], unit) for name, unit in METRICS.items()]


def _describe(tracker: Any) -> str:
    """e.g. ``cpu: TDP x load estimate (no RAPL), AMD EPYC, TDP 8 W; ram: ...; gpu: none``."""
    parts = {"cpu": "not tracked", "ram": "not tracked", "gpu": "none"}
    conf = getattr(tracker, "_conf", {}) or {}
    for hardware in getattr(tracker, "_hardware", []) or []:
        kind = type(hardware).__name__
        if kind == "CPU":
            raw = getattr(hardware, "_mode", "")
            text = _CPU_MODES.get(raw, raw or "unknown")
            model = conf.get("cpu_model") or getattr(hardware, "_model", None)
            if model:
                text += f", {model}"
            tdp = getattr(hardware, "_tdp", None)
            if tdp and raw in ("cpu_load", "constant"):
                text += f", TDP {tdp:g} W" + (" (generic)" if getattr(hardware, "_is_generic_tdp", False) else "")
            parts["cpu"] = text
        elif kind == "RAM":
            forced = getattr(hardware, "_force_ram_power", None)
            parts["ram"] = f"fixed {forced:g} W (user input)" if forced else "power model from installed memory size"
        elif kind == "GPU":
            parts["gpu"] = f"NVML / ROCm measured power, {conf.get('gpu_model') or 'GPU'}"
        else:  # AppleSiliconChip, Raspberry: one chip part each
            part = str(getattr(hardware, "chip_part", kind)).lower()
            parts[part] = f"{kind} ({getattr(hardware, '_model', '')})"
    return "; ".join(f"{k}: {v}" for k, v in parts.items())
