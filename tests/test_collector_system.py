"""SystemSampler on the real host (psutil), the no-GPU path, and NVML stood in for by a fake
module only where a GPU cannot exist on the test machine."""

import dataclasses
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import psutil
import pytest

from prov4ml.collectors import system
from prov4ml.collectors.system import Reading, SystemSampler

HOST_UNITS = {"cpu_usage": "%", "memory_usage": "%", "disk_usage": "%", "process_rss": "B"}


def by_name(readings):
    return {r.name: r for r in readings}


def test_reading_is_frozen():
    reading = Reading("cpu_usage", 1.0, "%")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.value = 2.0


def test_host_readings_have_names_units_and_sane_values():
    readings = by_name(SystemSampler().sample())
    for name, unit in HOST_UNITS.items():
        assert readings[name].unit == unit
        assert isinstance(readings[name].value, float)
    for name in ("cpu_usage", "memory_usage", "disk_usage"):
        assert 0.0 <= readings[name].value <= 100.0
    assert readings["process_rss"].value == pytest.approx(psutil.Process().memory_info().rss, rel=0.2)


def test_cpu_usage_covers_the_time_since_the_previous_sample():
    sampler = SystemSampler()
    sampler.sample()
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:  # keep one core busy
        pass
    busy = by_name(sampler.sample())["cpu_usage"].value
    assert busy > 0.0
    # Someone else resetting psutil's shared baseline does not change our interval.
    psutil.cpu_percent(interval=None)


def test_sample_does_not_block():
    sampler = SystemSampler()
    sampler.sample()  # first call probes NVML once
    start = time.perf_counter()
    for _ in range(20):
        sampler.sample()
    assert (time.perf_counter() - start) / 20 < 0.05


def test_disk_usage_is_that_of_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    value = by_name(SystemSampler().sample())["disk_usage"].value
    assert value == pytest.approx(psutil.disk_usage(str(tmp_path)).percent, abs=1.0)


def test_no_gpu_here_is_reported_once_and_never_retried(monkeypatch):
    pynvml = pytest.importorskip("pynvml")
    calls = []
    real_init = pynvml.nvmlInit

    def counting_init(*args, **kwargs):
        calls.append(1)
        return real_init(*args, **kwargs)

    monkeypatch.setattr(pynvml, "nvmlInit", counting_init)
    sampler = SystemSampler()
    assert calls == []  # construction is cheap: no probe yet
    first = sampler.sample()
    second = sampler.sample()
    status = sampler.gpu_status
    if status.startswith("available"):
        pytest.skip("this machine has an NVIDIA GPU")
    assert status.startswith("not available: ")
    assert calls == [1]
    for readings in (first, second):
        assert set(by_name(readings)) == set(HOST_UNITS)


def test_missing_nvidia_ml_py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    sampler = SystemSampler()
    assert "prov4ml[gpu]" in sampler.gpu_status
    assert set(by_name(sampler.sample())) == set(HOST_UNITS)


class FakeNVMLError(Exception):
    pass


def fake_pynvml(devices=2, unsupported=(), init=None, counts=None):
    """A stand-in for NVML with ``devices`` GPUs (no GPU can exist on the test machine)."""
    counts = counts if counts is not None else {}

    def call(name, index, value):
        counts[(name, index)] = counts.get((name, index), 0) + 1
        if (index, name) in unsupported:
            raise FakeNVMLError("Not Supported")
        return value

    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError
    module.NVML_TEMPERATURE_GPU = 0
    module.nvmlInit = init or (lambda: None)
    module.nvmlDeviceGetCount = lambda: devices
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetMemoryInfo = lambda h: call(
        "memory_usage", h, types.SimpleNamespace(used=2 * 2**30, total=8 * 2**30)
    )
    module.nvmlDeviceGetUtilizationRates = lambda h: call("usage", h, types.SimpleNamespace(gpu=70 + h))
    module.nvmlDeviceGetPowerUsage = lambda h: call("power", h, 150_500)  # milliwatts
    module.nvmlDeviceGetTemperature = lambda h, sensor: call("temperature", h, 60 + h)
    return module


def test_gpu_readings_per_device_with_units(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(devices=2))
    sampler = SystemSampler()
    assert sampler.gpu_status == "available: 2 device(s)"
    readings = by_name(sampler.sample())
    assert readings["gpu0_memory_usage"] == Reading("gpu0_memory_usage", 25.0, "%")
    assert readings["gpu1_usage"] == Reading("gpu1_usage", 71.0, "%")
    assert readings["gpu0_power"] == Reading("gpu0_power", 150.5, "W")
    assert readings["gpu1_temperature"] == Reading("gpu1_temperature", 61.0, "°C")
    assert len(readings) == len(HOST_UNITS) + 2 * 4


def test_an_unsupported_gpu_field_is_left_out_and_not_asked_again(monkeypatch):
    counts = {}
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(devices=2, unsupported={(1, "power")}, counts=counts))
    sampler = SystemSampler()
    for _ in range(3):
        readings = by_name(sampler.sample())
        assert "gpu1_power" not in readings and "gpu0_power" in readings
    assert counts[("power", 1)] == 1
    assert counts[("power", 0)] == 3


def test_nvml_init_error_is_the_reason(monkeypatch):
    def failing_init():
        raise FakeNVMLError("Driver Not Loaded")

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init=failing_init))
    sampler = SystemSampler()
    assert sampler.gpu_status == "not available: NVML failed (Driver Not Loaded)"
    assert set(by_name(sampler.sample())) == set(HOST_UNITS)


def test_a_hung_nvml_does_not_hang_the_sampler(monkeypatch):
    release = threading.Event()
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init=lambda: release.wait(10)))
    monkeypatch.setattr(system, "_NVML_INIT_TIMEOUT_S", 0.1)
    try:
        sampler = SystemSampler()
        start = time.perf_counter()
        readings = sampler.sample()
        assert time.perf_counter() - start < 2
        assert "did not answer" in sampler.gpu_status
        assert set(by_name(readings)) == set(HOST_UNITS)
    finally:
        release.set()


def test_importing_the_collectors_imports_no_heavy_dependency():
    code = (
        "import sys\n"
        "import prov4ml.collectors.system, prov4ml.collectors.carbon\n"
        "import prov4ml.collectors.flops, prov4ml.collectors.environment\n"
        "print(sorted(m for m in ('torch', 'codecarbon', 'fvcore', 'pynvml') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
