"""System usage readings: CPU, memory, disk, this process, and NVIDIA GPUs.

``SystemSampler().sample()`` returns a list of :class:`Reading`. psutil does
the host part; NVIDIA GPUs are read through NVML (``import pynvml``, from the
``nvidia-ml-py`` package, extra ``prov4ml[gpu]``). NVML is probed once, on
first use: without the package, the driver or a device the sampler remembers
why and keeps returning the host readings, never raising.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import psutil

__all__ = ["Reading", "SystemSampler"]

# NVML can block for a long time on a wedged driver; the probe gives up after this.
_NVML_INIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Reading:
    """One measured value: a metric name, a number and its unit."""

    name: str
    value: float
    unit: str


#: at most this long, once, the first cpu_usage waits for the CPU counters to move (they tick every 10 ms,
#: each CPU on its own: an idle CPU's tick alone says 0 % while another is busy), and at least half of it
_FIRST_WINDOW_S = 0.1


class _CpuLoad:
    """CPU load since the previous call, from this object's own ``cpu_times`` snapshot.

    ``psutil.cpu_percent(interval=None)`` keeps one baseline per process, which
    anyone else calling it resets (codecarbon's monitor thread does, every
    second); a private snapshot keeps "since the previous sample" true.
    """

    def __init__(self) -> None:
        self._cpu_times = psutil.cpu_times
        self._last = self._cpu_times()  # primes: the first read covers the time since now
        self._primed = time.monotonic()
        self._first = True

    def percent(self) -> float:
        now = self._cpu_times()
        if self._first:  # made just now, at the first log_system_metrics: wait for a few ticks to measure
            self._first = False
            enough, deadline = self._primed + _FIRST_WINDOW_S / 2, self._primed + _FIRST_WINDOW_S
            while (time.monotonic() < enough or _total(now) - _total(self._last) <= 0) and time.monotonic() < deadline:
                time.sleep(_FIRST_WINDOW_S / 10)
                now = self._cpu_times()
        last, self._last = self._last, now
        busy = _busy(now) - _busy(last)
        total = _total(now) - _total(last)
        if total <= 0:
            return 0.0  # no tick elapsed since the previous call
        return min(max(busy / total * 100.0, 0.0), 100.0)


def _total(times: Any) -> float:
    # On Linux guest time is already counted in user and nice (as psutil does).
    return sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _busy(times: Any) -> float:
    return _total(times) - times.idle - getattr(times, "iowait", 0.0)


class _Nvml:
    """The NVML handles, probed once; ``status`` says what was found or why not."""

    def __init__(self) -> None:
        self.handles: List[Any] = []
        self.status = ""
        self.module: Any = None
        # (device index, field) pairs the device said it does not support: not asked again.
        self.unsupported: Set[Tuple[int, str]] = set()

    def probe(self) -> None:
        try:
            import pynvml
        except ImportError:
            self.status = 'not available: nvidia-ml-py is not installed (pip install "prov4ml[gpu]")'
            return
        outcome: List[Any] = []

        def init() -> None:
            try:
                pynvml.nvmlInit()
                count = pynvml.nvmlDeviceGetCount()
                outcome.append([pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)])
            except Exception as exc:  # the NVMLError family, or a broken library load
                outcome.append(exc)

        # A daemon thread, so that a hung driver cannot hang the training loop.
        thread = threading.Thread(target=init, name="prov4ml-nvml-probe", daemon=True)
        thread.start()
        thread.join(_NVML_INIT_TIMEOUT_S)
        if not outcome:
            self.status = f"not available: NVML did not answer within {_NVML_INIT_TIMEOUT_S:g} s"
            return
        result = outcome[0]
        if isinstance(result, Exception):
            self.status = f"not available: {_nvml_reason(result)}"
            return
        if not result:
            self.status = "not available: NVML found no device"
            return
        self.module, self.handles = pynvml, result
        self.status = f"available: {len(result)} device(s)"


def _nvml_reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"NVML failed ({text})"


class SystemSampler:
    """Samples host and GPU usage; cheap to build, GPU probing happens on first use.

    Readings: ``cpu_usage`` (%, since the previous sample or since construction),
    ``memory_usage`` (%), ``disk_usage`` (% of the disk holding the current
    directory), ``process_rss`` (B), and per NVIDIA GPU ``i``:
    ``gpu{i}_memory_usage`` (%), ``gpu{i}_usage`` (%), ``gpu{i}_power`` (W),
    ``gpu{i}_temperature`` (°C). A GPU field the device does not support is
    left out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._pid = -1
        self._nvml: Optional[_Nvml] = None
        self._cpu = _CpuLoad()  # one /proc/stat read: primes cpu_usage for the first sample

    @property
    def gpu_status(self) -> str:
        """``"available: N device(s)"`` or ``"not available: <reason>"`` (probes NVML once)."""
        return self._gpus().status

    def sample(self) -> List[Reading]:
        """Current readings; GPU readings only where NVML works."""
        with self._lock:
            readings = [
                Reading("cpu_usage", self._cpu.percent(), "%"),
                Reading("memory_usage", float(psutil.virtual_memory().percent), "%"),
                Reading("disk_usage", float(psutil.disk_usage(_cwd()).percent), "%"),
                Reading("process_rss", float(self._this_process().memory_info().rss), "B"),
            ]
            readings.extend(self._gpu_readings())
        return readings

    def _this_process(self) -> Any:
        # Rebuilt after a fork, so a worker reports its own memory, not its parent's.
        pid = os.getpid()
        if self._process is None or pid != self._pid:
            self._process, self._pid = psutil.Process(pid), pid
        return self._process

    def _gpus(self) -> _Nvml:
        if self._nvml is None:
            nvml = _Nvml()
            nvml.probe()
            self._nvml = nvml
        return self._nvml

    def _gpu_readings(self) -> List[Reading]:
        nvml = self._gpus()
        if nvml.module is None:
            return []
        pynvml = nvml.module
        readings: List[Reading] = []
        for index, handle in enumerate(nvml.handles):
            for field, (unit, read) in _GPU_FIELDS.items():
                if (index, field) in nvml.unsupported:
                    continue
                try:
                    value = read(pynvml, handle)
                except Exception:  # NVMLError (not supported, GPU lost, ...): stop asking
                    nvml.unsupported.add((index, field))
                    continue
                readings.append(Reading(f"gpu{index}_{field}", float(value), unit))
        return readings


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the current directory was deleted: measure the root disk
        return os.path.abspath(os.sep)


def _memory_percent(pynvml: Any, handle: Any) -> float:
    info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return info.used / info.total * 100.0 if info.total else 0.0


# One row per GPU reading: field -> (unit, how to read it). Power comes in milliwatts.
_GPU_FIELDS: Dict[str, Tuple[str, Callable[[Any, Any], float]]] = {
    "memory_usage": ("%", _memory_percent),
    "usage": ("%", lambda nv, h: nv.nvmlDeviceGetUtilizationRates(h).gpu),
    "power": ("W", lambda nv, h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
    "temperature": ("°C", lambda nv, h: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
}
