"""Metric file formats: netCDF, Zarr, TXT, Parquet and CSV read back point for point against the journal."""

import json
import math
import struct
import sys
import zipfile

import numpy as np
import pytest

import prov4ml
from prov4ml import CompressorType, MetricsType, analysis
from prov4ml.metrics import formats
from prov4ml.provenance import json_location
from prov4ml.metrics.journal import JournalReader, read_series
from conftest import entities_of_type, literal

netCDF4 = pytest.importorskip("netCDF4")
zarr = pytest.importorskip("zarr")

SERIES = [("loss", "training"), ("loss", "validation"), ("acc", "validation"), ("lr", "my_stage")]
ODD = [float("nan"), float("inf"), float("-inf"), 5e-324, -0.0, 1e308, 2.0 ** 53 + 1]


def _value(k, i):
    if i < len(ODD) and k == 1:
        return ODD[i]
    return (i * 0.37 + k) / 3.0


def _log_points(n=600):
    for i in range(n):
        for k, (name, ctx) in enumerate(SERIES):
            step = 2 ** 62 + i if name == "lr" else i  # int64 steps beyond float precision stay exact
            kw = {"timestamp": 1_700_000_000.123456 + i} if name == "acc" else {}
            prov4ml.log_metric(name, _value(k, i), ctx, step=step, **kw)


def journal_points(journal_dir):
    """file (relative to the run directory) -> the (step, value, time) the journal holds, in order."""
    files = {sid: meta["file"] for sid, meta in read_series(str(journal_dir)).items()}
    reader = JournalReader(str(journal_dir))
    out = {f: [] for f in files.values()}
    while True:
        batch = reader.read(final=True)
        if not batch:
            break
        for sid, step, value, t in batch:
            out[files[sid]].append((step, value, t))
    reader.close()
    return out


def _bits(x):
    return struct.pack("<d", x)  # NaN == NaN, -0.0 != 0.0: the exact double


def assert_same_points(columns, points):
    """Every point of the journal, exactly: step, value bit for bit, time as the files keep it (ms)."""
    assert list(columns) == ["step", "value", "time"]
    assert columns["step"].dtype == np.int64 and columns["value"].dtype == np.float64
    assert columns["step"].tolist() == [p[0] for p in points]
    assert [_bits(v) for v in columns["value"].tolist()] == [_bits(p[1]) for p in points]
    assert columns["time"].tolist() == [float("%.3f" % p[2]) for p in points]


def series_entities(data):
    return {(a["provml:name"], a["provml:context"]): {k: literal(v) for k, v in a.items()}
            for a in entities_of_type(data, "provml:Metric").values()}


def _check_run(run, suffix, media):
    data = json.loads(run.prov_path.read_text())
    points = journal_points(run.journal_dir)
    ents = series_entities(data)
    assert set(ents) == set(SERIES)
    for (name, ctx), ent in ents.items():
        location = json_location(ent["prov:location"])
        assert location == f"metrics/{name}_{ctx}_rank0{suffix}" and ent["provml:format"] == media
        assert not (run.run_dir / (location + ".csv")).exists()  # the side file is gone once converted
        cols = formats.read(run.run_dir / location)
        assert_same_points(cols, points[location + ".csv"])
        assert ent["provml:count"] == len(points[location + ".csv"]) == 600
    return points


@pytest.mark.parametrize("file_type, suffix, media", [
    ("netcdf", ".nc", "application/x-netcdf"), ("nc", ".nc", "application/x-netcdf"),
    (MetricsType.NETCDF, ".nc", "application/x-netcdf"), ("zarr", ".zarr", "application/vnd+zarr"),
    (MetricsType.ZARR, ".zarr", "application/vnd+zarr"),
])
def test_every_point_reads_back_exactly(start, file_type, suffix, media):
    run = start(metrics_file_type=file_type, keep_journal=True)
    _log_points()
    prov4ml.end_run()
    _check_run(run, suffix, media)


def _codec(path):
    """What the file says its value column is compressed with."""
    if path.suffix == ".nc":
        with netCDF4.Dataset(str(path)) as ds:
            filters = ds["value"].filters()
        if filters.get("zlib"):
            return "zlib"
        return (filters.get("blosc") or {}).get("compressor")
    compressors = zarr.open_group(str(path), mode="r")["value"].compressors
    if not compressors:
        return None
    c = compressors[0]
    return f"blosc_{c.cname.value}" if hasattr(c, "cname") else type(c).__name__


@pytest.mark.parametrize("file_type, compressor, codec", [
    ("netcdf", None, None), ("netcdf", False, None), ("netcdf", CompressorType.NONE, None),
    ("netcdf", True, "zlib"), ("netcdf", CompressorType.ZIP, "zlib"),
    ("netcdf", CompressorType.BLOSC_ZSTD, "blosc_zstd"), ("netcdf", CompressorType.LZ4, "blosc_lz4"),
    ("zarr", None, None), ("zarr", True, "blosc_zstd"), ("zarr", CompressorType.ZIP, "GzipCodec"),
    ("zarr", CompressorType.BLOSC_ZSTD, "blosc_zstd"), ("zarr", CompressorType.LZ4, "blosc_lz4"),
    ("zarr", "l4", "blosc_lz4"),  # the value yProv4ML gives its LZ4 member
])
def test_compression_is_applied_and_lossless(start, file_type, compressor, codec):
    run = start(metrics_file_type=file_type, use_compressor=compressor, keep_journal=True)
    _log_points()
    prov4ml.end_run()
    suffix = ".nc" if file_type == "netcdf" else ".zarr"
    _check_run(run, suffix, formats.media_type("x" + suffix))
    assert _codec(run.metrics_dir / f"loss_training_rank0{suffix}") == codec
    # True and ZIP keep their old meaning too: the whole run as run_<id>.zip
    assert run.run_dir.with_suffix(".zip").exists() == (compressor in (True, CompressorType.ZIP))


def test_compression_makes_smaller_files(start):
    sizes = {}
    for comp in (None, True):
        run = start(metrics_file_type="netcdf", use_compressor=comp)
        for i in range(20000):
            prov4ml.log_metric("loss", float(i % 10), "training", step=i)
        prov4ml.end_run()
        sizes[comp] = (run.metrics_dir / "loss_training_rank0.nc").stat().st_size
    assert sizes[True] < sizes[None] / 3


def test_netcdf_and_zarr_carry_the_series_description(start):
    run = start(metrics_file_type="netcdf")
    prov4ml.log_system_metrics("training", step=0)
    prov4ml.log_metric("loss", 0.5, "training", step=0)
    prov4ml.end_run()
    with netCDF4.Dataset(str(run.metrics_dir / "loss_training_rank0.nc")) as ds:
        assert (ds.prov4ml_name, ds.prov4ml_context, ds.prov4ml_kind) == ("loss", "training", "metric")
        assert ds["time"].units == "seconds since 1970-01-01 00:00:00 UTC"
    with netCDF4.Dataset(str(run.metrics_dir / "memory_usage_training_rank0.nc")) as ds:
        assert ds["value"].units == "%"
    run = start(metrics_file_type="zarr")
    prov4ml.log_metric("loss", 0.5, "training", step=0)
    prov4ml.end_run()
    attrs = dict(zarr.open_group(str(run.metrics_dir / "loss_training_rank0.zarr"), mode="r").attrs)
    assert attrs == {"columns": ["step", "value", "time"], "name": "loss", "context": "training", "kind": "metric"}


def test_analysis_reads_netcdf_and_zarr(start):
    for file_type in ("netcdf", "zarr"):
        run = start(metrics_file_type=file_type, keep_journal=True)
        _log_points(50)
        prov4ml.end_run()
        points = journal_points(run.journal_dir)
        m = analysis.load_run(run.run_dir).metrics
        for name, ctx in SERIES:
            got = m[(m["name"] == name) & (m["context"] == ctx)]
            want = points[f"metrics/{name}_{ctx}_rank0.{'nc' if file_type == 'netcdf' else 'zarr'}.csv"]
            assert got["step"].tolist() == [p[0] for p in want]
            assert [_bits(v) for v in got["value"].tolist()] == [_bits(p[1]) for p in want]
            assert got["time"].tolist() == [float("%.3f" % p[2]) for p in want]


def test_a_running_run_reads_from_its_side_file(start):
    run = start(metrics_file_type="zarr")
    prov4ml.log_metric("loss", 0.25, "training", step=1)
    prov4ml.flush()
    data = json.loads(run.prov_path.read_text())
    ent = series_entities(data)[("loss", "training")]
    assert json_location(ent["prov:location"]) == "metrics/loss_training_rank0.zarr.csv" and ent["provml:format"] == "text/csv"
    assert formats.read(run.run_dir / json_location(ent["prov:location"]))["value"].tolist() == [0.25]
    prov4ml.end_run()


@pytest.mark.parametrize("file_type", ["netcdf", "zarr"])
def test_sigkill_then_recover_gives_the_journal_exactly(tmp_path, file_type):
    from killing import Child, assert_exact, wait_for_sinks

    body = (f'run = prov4ml.start_run("www.example.org", "crash", {{save_dir!r}}, capture=False, '
            f'metrics_file_type={file_type!r}, use_compressor=True)\n'
            "for i in range(4000):\n"
            "    prov4ml.log_metric('loss', i * 0.5, 'training', step=i)\n"
            "    prov4ml.log_metric('acc', i * 0.25, 'validation', step=i)\n"
            "    tell(i + 1)\n"
            "flag(1)\ntime.sleep(600)\n")
    child = Child(tmp_path, body)
    child.wait_flag(1)
    logged = child.logged
    child.kill()
    d = child.run_dir()
    wait_for_sinks(d)
    assert prov4ml.needs_recovery(d) == [0]
    suffix = ".nc" if file_type == "netcdf" else ".zarr"
    # what a recover cut short would leave: a converted file already in place, a conversion half-written
    stale = d / f"metrics/loss_training_rank0{suffix}"
    formats.get_format(file_type).write(stale, {c: np.arange(3) for c in formats.COLUMNS}, {})
    half = d / f"metrics/acc_validation_rank0{suffix}.tmp"
    half.mkdir()
    prov4ml.recover(d)
    assert not half.exists()
    points = journal_points(d / ".prov4ml" / "rank0")
    data = json.loads((d / "prov_rank0.json").read_text())
    for (name, ctx), scale in ((("loss", "training"), 0.5), (("acc", "validation"), 0.25)):
        ent = series_entities(data)[(name, ctx)]
        location = f"metrics/{name}_{ctx}_rank0{suffix}"
        assert json_location(ent["prov:location"]) == location and ent["provml:count"] == 4000
        cols = formats.read(d / location)
        assert_same_points(cols, points[location + ".csv"])
        assert_exact(list(zip(cols["step"].tolist(), cols["value"].tolist())), logged, lambda i: i * scale)
        assert _codec(d / location) == ("zlib" if suffix == ".nc" else "blosc_zstd")
        assert not (d / (location + ".csv")).exists()
    assert prov4ml.recover(d) == []  # a second recover changes nothing


def test_txt_is_the_csv_under_its_name(start):
    for file_type in ("txt", MetricsType.TXT, MetricsType.TEXT):
        run = start(metrics_file_type=file_type)
        prov4ml.log_metric("loss", 0.5, "training", step=2, timestamp=1_700_000_000.5)
        prov4ml.end_run()
        path = run.metrics_dir / "loss_training_rank0.txt"
        assert path.read_text() == "step,value,time\n2,0.5,1700000000.500\n"
        assert series_entities(json.loads(run.prov_path.read_text()))[("loss", "training")]["provml:format"] == "text/csv"
    assert MetricsType.TEXT is MetricsType.TXT


def test_parquet_takes_a_codec_and_reads_back(start):
    pq = pytest.importorskip("pyarrow.parquet")
    run = start(metrics_file_type="parquet", use_compressor=CompressorType.LZ4, keep_journal=True)
    _log_points(40)
    prov4ml.end_run()
    points = journal_points(run.journal_dir)
    path = run.metrics_dir / "loss_validation_rank0.parquet"
    assert pq.ParquetFile(str(path)).metadata.row_group(0).column(1).compression == "LZ4"
    assert_same_points(formats.read(path), points["metrics/loss_validation_rank0.parquet.csv"])


def test_csv_reads_back_with_its_separator(start):
    run = start(csv_separator=";", keep_journal=True)
    _log_points(30)
    prov4ml.end_run()
    points = journal_points(run.journal_dir)
    for location, want in points.items():
        assert_same_points(formats.read(run.run_dir / location), want)


@pytest.mark.parametrize("module, file_type, extra", [("netCDF4", "netcdf", "netcdf"), ("zarr", "zarr", "zarr")])
def test_a_missing_package_names_its_extra(start, save_dir, monkeypatch, module, file_type, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(prov4ml.MissingDependencyError, match=rf'pip install "prov4ml\[{extra}\]"'):
        start(metrics_file_type=file_type)
    assert prov4ml.active_run() is None and not save_dir.exists()  # refused before anything is created
    with pytest.raises(prov4ml.MissingDependencyError, match=rf"prov4ml\[{extra}\]"):
        formats.read(f"x/loss_training_rank0.{'nc' if extra == 'netcdf' else 'zarr'}")


def test_bad_choices_are_named(start):
    with pytest.raises(prov4ml.InvalidValueError, match="known: csv, nc, netcdf, parquet, text, txt, zarr"):
        start(metrics_file_type="hdf5")
    with pytest.raises(prov4ml.InvalidValueError, match="use_compressor must be True, False or a CompressorType"):
        start(use_compressor="brotli")
    with pytest.warns(UserWarning, match="plain text and are written uncompressed"):
        run = start(use_compressor=CompressorType.LZ4)
    prov4ml.log_metric("loss", 0.5, "training", step=0)
    prov4ml.end_run()
    assert (run.metrics_dir / "loss_training_rank0.csv").read_text().startswith("step,value,time\n0,0.5,")
    assert not run.run_dir.with_suffix(".zip").exists()
    with pytest.raises(prov4ml.ProvFileError, match="unknown metric file format '.h5'"):
        formats.read("metrics/x.h5")


def test_the_run_zip_holds_the_converted_files(start):
    run = start(metrics_file_type="netcdf", use_compressor=CompressorType.ZIP)
    prov4ml.log_metric("loss", 0.5, "training", step=0)
    prov4ml.end_run()
    names = zipfile.ZipFile(run.run_dir.with_suffix(".zip")).namelist()
    assert "metrics/loss_training_rank0.nc" in names and not any(n.endswith(".nc.csv") for n in names)
    assert not math.isnan(formats.read(run.metrics_dir / "loss_training_rank0.nc")["value"][0])
