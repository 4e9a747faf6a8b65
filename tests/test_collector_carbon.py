"""CarbonMeter on the real codecarbon, offline. The tracker starts once for the module
(the first start costs about 1.5 s per process; later ones reuse codecarbon's cache)."""

import socket
import sys
import time

import pytest

pytest.importorskip("codecarbon")

from prov4ml.collectors.carbon import METRICS, CarbonMeter  # noqa: E402
from prov4ml.exceptions import InvalidValueError, MissingDependencyError, Prov4MLError  # noqa: E402


def no_network(*args, **kwargs):
    raise AssertionError("codecarbon tried to open a network connection in offline mode")


@pytest.fixture(scope="module")
def meter(tmp_path_factory):
    out = tmp_path_factory.mktemp("codecarbon_out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket, "create_connection", no_network)
        m = CarbonMeter(country_iso_code="USA", output_dir=str(out))
        m.measure()  # starts the tracker
        yield m
        m.stop()
    assert list(out.iterdir()) == []  # save_to_file=False: nothing written


def values(readings):
    return {r.name: r.value for r in readings}


def busy(seconds):
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


def test_readings_names_units_order(meter):
    readings = meter.measure()
    assert [(r.name, r.unit) for r in readings] == list(METRICS.items())
    assert all(isinstance(r.value, float) and r.value >= 0 for r in readings)


def test_energy_parts_add_up_and_power_is_energy_over_time(meter):
    meter.measure()
    start = time.perf_counter()
    busy(0.4)
    v = values(meter.measure())
    elapsed = time.perf_counter() - start
    assert v["energy_consumed"] > 0
    assert v["energy_consumed"] == pytest.approx(v["cpu_energy"] + v["gpu_energy"] + v["ram_energy"], rel=1e-9)
    for part in ("cpu", "ram"):
        assert v[f"{part}_power"] > 0
        assert v[f"{part}_power"] * elapsed == pytest.approx(v[f"{part}_energy"], rel=0.25)
    assert v["emissions_rate"] * elapsed == pytest.approx(v["emissions"], rel=0.25)


def test_readings_are_per_interval_not_cumulative(meter):
    meter.measure()
    time.sleep(0.5)
    long_interval = values(meter.measure())
    short_interval = values(meter.measure())
    assert short_interval["ram_energy"] < long_interval["ram_energy"] / 5


def test_emissions_follow_the_country_carbon_intensity(meter):
    meter.measure()
    time.sleep(0.2)
    first = values(meter.measure())
    busy(0.3)
    second = values(meter.measure())
    intensity = first["emissions"] / first["energy_consumed"]  # gCO2eq per J
    assert second["emissions"] / second["energy_consumed"] == pytest.approx(intensity, rel=1e-6)
    # A grid-average intensity: between 10 and 1500 gCO2eq/kWh.
    assert 10 < intensity * 3.6e6 < 1500


def test_no_gpu_means_zero_gpu_energy(meter):
    from prov4ml.collectors.system import SystemSampler

    if SystemSampler().gpu_status.startswith("available"):
        pytest.skip("this machine has a GPU")
    v = values(meter.measure())
    assert v["gpu_energy"] == 0.0 and v["gpu_power"] == 0.0


def test_mode_reads_codecarbon_hardware(meter):
    mode = meter.mode
    assert mode.startswith("cpu: ") and "; ram: " in mode and "; gpu: " in mode
    if not _has_rapl():
        assert "(no RAPL" in mode or "User" in mode


def _has_rapl():
    import os

    return os.path.isdir("/sys/class/powercap/intel-rapl")


def test_measure_is_cheap_after_the_first(meter):
    meter.measure()
    start = time.perf_counter()
    for _ in range(10):
        meter.measure()
    assert (time.perf_counter() - start) / 10 < 0.05


def test_construction_is_cheap_and_lazy():
    start = time.perf_counter()
    m = CarbonMeter()
    assert time.perf_counter() - start < 0.01
    assert m._tracker is None
    m.stop()  # stopping a meter that never started is fine


def test_stop_is_idempotent_and_measure_after_stop_raises(meter, capfd):
    second = CarbonMeter("FRA")  # codecarbon caches hardware detection per process: cheap
    assert len(second.measure()) == len(METRICS)
    second.stop()
    second.stop()
    with pytest.raises(Prov4MLError, match="create a new CarbonMeter"):
        second.measure()
    assert "codecarbon" not in capfd.readouterr().err  # its logger is silenced


@pytest.mark.parametrize("code", ["US", "", "U1A", 840])
def test_malformed_country_code_is_rejected_at_construction(code):
    with pytest.raises(InvalidValueError, match="3-letter ISO"):
        CarbonMeter(country_iso_code=code)


def test_country_unknown_to_codecarbon_is_rejected(meter):
    m = CarbonMeter(country_iso_code="ZZZ")
    with pytest.raises(InvalidValueError, match="no energy mix"):
        m.measure()


def test_missing_codecarbon_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    m = CarbonMeter()
    with pytest.raises(MissingDependencyError, match=r"prov4ml\[carbon\]"):
        m.measure()
    assert m.mode.startswith("not available: ") and "prov4ml[carbon]" in m.mode
