"""Metric file formats, one class each behind a registry.

Every format appends points as CSV text while the run goes on (see
``_sink.CsvFile``), so a killed run keeps the points written before the
kill. CSV and TXT are that file; Parquet, netCDF and Zarr files cannot be
appended safely (an unfinished Parquet footer, HDF5 or Zarr metadata torn by a
kill make the whole file unreadable) and the sink process runs without
site-packages, so those formats append to a ``<name>.<suffix>.csv`` side file
and ``end_run`` (or ``prov4ml recover``) converts it once, removing the side
file only when the converted file is in place.

Columns are always ``step`` (int64), ``value`` (float64) and ``time`` (float64,
Unix time in seconds, millisecond precision). ``read(path)`` gives them back
for any format.
"""

from __future__ import annotations

import enum
import math
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Type, Union

from .._optional import require
from ..exceptions import InvalidValueError, ProvFileError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MetricsType", "CompressorType", "MetricFormat", "CsvFormat", "TxtFormat", "ParquetFormat",
    "NetCDFFormat", "ZarrFormat", "get_format", "read", "read_csv", "csv_rows", "kept_rows", "parse_columns", "media_type", "archives_run", "remove_temporaries", "FORMATS", "READERS",
]

COLUMNS = ("step", "value", "time")


class MetricsType(enum.Enum):
    """The metric file formats (``metrics_file_type=`` at ``start_run``)."""

    CSV = "csv"
    TXT = "txt"
    TEXT = "txt"  # the name older code uses
    PARQUET = "parquet"
    NETCDF = "netcdf"
    ZARR = "zarr"


class CompressorType(enum.Enum):
    """``use_compressor=`` at ``start_run``: the codec of netCDF, Zarr and Parquet metric files.

    ``True`` means the format's own default (netCDF: zlib, Zarr: Blosc-zstd,
    Parquet: zstd); ``True`` and ``ZIP`` also write ``run_<id>.zip`` at ``end_run``.
    """

    NONE = None
    ZIP = "zip"  # deflate: zlib in netCDF, gzip in Zarr and Parquet
    BLOSC_ZSTD = "blosc_zstd"
    LZ4 = "lz4"


_COMPRESSOR_NAMES = {c.value: c for c in CompressorType if c.value} | {"none": CompressorType.NONE, "l4": CompressorType.LZ4}


def _compressor(value: Any) -> Union[None, bool, CompressorType]:
    """None (uncompressed), True (the format's default) or a codec."""
    if value is None or value is False or value is CompressorType.NONE:
        return None
    if value is True or isinstance(value, CompressorType):
        return value
    if isinstance(value, str) and value.lower() in _COMPRESSOR_NAMES:
        return _compressor(_COMPRESSOR_NAMES[value.lower()])
    raise InvalidValueError(
        f"use_compressor must be True, False or a CompressorType ({', '.join(c.name for c in CompressorType)}), got {value!r}"
    )


def archives_run(use_compressor: Any) -> bool:
    """Whether ``end_run`` also writes ``run_<id>.zip`` (``use_compressor`` True or ``ZIP``)."""
    return _compressor(use_compressor) in (True, CompressorType.ZIP)


class MetricFormat:
    """Where the points of a series are appended, what ``end_run`` makes of that file, and how it reads back."""

    suffix = ""
    media_type = ""
    side = ""  # the suffix of the CSV side file appended while the run goes on ("": the file itself)
    extra = ""  # the prov4ml extra that provides the format's package
    codecs: Dict[CompressorType, Any] = {}  # the compressors the format takes -> its own codec name
    default_codec: Optional[CompressorType] = None  # what use_compressor=True means

    def __init__(self, use_compressor: Any = None) -> None:
        choice = _compressor(use_compressor)
        self.compressor: Optional[CompressorType] = self.default_codec if choice is True else choice
        if self.compressor is not None and not self.codecs:  # a text format
            if self.compressor is not CompressorType.ZIP:
                warnings.warn(
                    f"use_compressor={self.compressor}: {self.suffix} metric files are plain text and are written "
                    "uncompressed; choose metrics_file_type='netcdf', 'zarr' or 'parquet' for compressed files",
                    stacklevel=4,
                )
            self.compressor = None

    @property
    def codec(self) -> Any:
        """The format's own name of the chosen codec (None: uncompressed)."""
        return self.codecs.get(self.compressor) if self.compressor is not None else None

    def data_path(self, target: Path) -> Path:
        return target.with_name(target.name + self.side)

    def data_name(self, target: str) -> str:
        """``data_path`` for a relative name."""
        return self.data_path(Path(target)).as_posix()

    def target_of(self, data: Path) -> Path:
        """The final file of the side file ``data``."""
        return data.with_name(data.name[: len(data.name) - len(self.side)]) if self.side else data

    def finalize(self, data_path: Path, target: Path, separator: str = ",", meta: Optional[Dict[str, Any]] = None) -> Path:
        """Convert the side file into ``target`` (which a rebuild replaces); the side file goes only then."""
        if not self.side:
            return data_path
        self.check()
        columns = self.load(data_path, separator)
        tmp = target.with_name(target.name + ".tmp")
        _remove(tmp)
        self.write(tmp, columns, {k: v for k, v in (meta or {}).items() if v is not None and k in ("name", "context", "kind", "unit")})
        if target.is_dir():  # os.replace cannot replace a non-empty directory (a Zarr store rebuilt by recover)
            shutil.rmtree(target)
        os.replace(tmp, target)
        data_path.unlink()
        return target

    def check(self) -> None:
        """Raise MissingDependencyError naming the extra when the format's package is missing."""

    def load(self, data_path: Path, separator: str) -> Any:
        """The columns of the side file, for ``write``."""
        return read_csv(data_path, separator)

    def write(self, path: Path, columns: Dict[str, Any], meta: Dict[str, Any]) -> None:
        """Write ``columns`` as ``path``: every format with a side file (``side``) overrides it; CSV never calls it."""
        raise NotImplementedError(f"{type(self).__name__} has a side file but no write()")

    @staticmethod
    def read(path: Path) -> Dict[str, Any]:
        """The columns ``step``, ``value``, ``time`` of a metric file, as NumPy arrays."""
        return read_csv(path)


class CsvFormat(MetricFormat):
    """Plain CSV with a header; reads back with ``pandas.read_csv`` or the csv module."""

    suffix = ".csv"
    media_type = "text/csv"


class TxtFormat(CsvFormat):
    """The CSV text under a ``.txt`` name, for code written for yProv4ML's text format."""

    suffix = ".txt"


class ParquetFormat(MetricFormat):
    """Parquet (needs ``prov4ml[parquet]``); pyarrow's default codec (snappy) unless one is chosen."""

    suffix = ".parquet"
    media_type = "application/vnd.apache.parquet"
    side = ".csv"
    extra = "parquet"
    codecs = {CompressorType.ZIP: "gzip", CompressorType.BLOSC_ZSTD: "zstd", CompressorType.LZ4: "lz4"}
    default_codec = CompressorType.BLOSC_ZSTD

    def check(self) -> None:
        require("pyarrow", "parquet", "metrics_file_type='parquet'")

    def load(self, data_path: Path, separator: str) -> Any:
        # pyarrow's reader is twice as fast as NumPy's; no null values, so "nan" stays NaN
        import pyarrow as pa
        import pyarrow.csv as csv

        types = {"step": pa.int64(), "value": pa.float64(), "time": pa.float64()}
        return csv.read_csv(str(data_path), parse_options=csv.ParseOptions(delimiter=separator),
                            convert_options=csv.ConvertOptions(column_types=types, null_values=[], include_columns=list(COLUMNS)))

    def write(self, path: Path, columns: Any, meta: Dict[str, Any]) -> None:
        import pyarrow.parquet as pq

        table = columns.replace_schema_metadata({f"prov4ml.{k}": str(v) for k, v in meta.items()})
        pq.write_table(table, str(path), compression=self.codec or "snappy")

    @staticmethod
    def read(path: Path) -> Dict[str, Any]:
        pq = require("pyarrow.parquet", "parquet", f"reading the Parquet metric file {Path(path).name}")
        table = pq.read_table(str(path), columns=list(COLUMNS))
        return {c: table.column(c).to_numpy() for c in COLUMNS}


class NetCDFFormat(MetricFormat):
    """netCDF-4 (needs ``prov4ml[netcdf]``): one dimension ``point``, variables ``step``, ``value``, ``time``."""

    suffix = ".nc"
    media_type = "application/x-netcdf"
    side = ".csv"
    extra = "netcdf"
    codecs = {CompressorType.ZIP: "zlib", CompressorType.BLOSC_ZSTD: "blosc_zstd", CompressorType.LZ4: "blosc_lz4"}
    default_codec = CompressorType.ZIP

    def check(self) -> None:
        require("netCDF4", "netcdf", "metrics_file_type='netcdf'")

    def write(self, path: Path, columns: Dict[str, Any], meta: Dict[str, Any]) -> None:
        import netCDF4

        packing = {"compression": self.codec, "complevel": 4, "shuffle": True} if self.codec else {}
        with netCDF4.Dataset(str(path), "w", format="NETCDF4") as ds:
            ds.setncatts({"title": f"{meta.get('name', '')} ({meta.get('context', '')})", "source": "prov4ml",
                          **{f"prov4ml_{k}": str(v) for k, v in meta.items()}})
            ds.createDimension("point", len(columns["step"]))
            # no fill value: a value that equals the default fill would read back masked
            kinds = {"step": ("i8", "the step given to log_metric"), "value": ("f8", "the metric value"),
                     "time": ("f8", "when the point was logged")}
            for name, (dtype, long_name) in kinds.items():
                var = ds.createVariable(name, dtype, ("point",), fill_value=False, **packing)
                var.long_name = long_name
                var[:] = columns[name]
            ds["time"].units = "seconds since 1970-01-01 00:00:00 UTC"
            if meta.get("unit"):
                ds["value"].units = str(meta["unit"])

    @staticmethod
    def read(path: Path) -> Dict[str, Any]:
        netCDF4 = require("netCDF4", "netcdf", f"reading the netCDF metric file {Path(path).name}")
        with netCDF4.Dataset(str(path), "r") as ds:
            ds.set_auto_mask(False)
            return {c: ds[c][:] for c in COLUMNS}


class ZarrFormat(MetricFormat):
    """A Zarr v3 store (a directory; needs ``prov4ml[zarr]``): arrays ``step``, ``value``, ``time``."""

    suffix = ".zarr"
    media_type = "application/vnd+zarr"
    side = ".csv"
    extra = "zarr"
    codecs = {CompressorType.ZIP: ("gzip", None), CompressorType.BLOSC_ZSTD: ("blosc", "zstd"), CompressorType.LZ4: ("blosc", "lz4")}
    default_codec = CompressorType.BLOSC_ZSTD

    def check(self) -> None:
        require("zarr", "zarr", "metrics_file_type='zarr'")

    def write(self, path: Path, columns: Dict[str, Any], meta: Dict[str, Any]) -> None:
        import zarr
        from zarr import codecs

        compressors = None
        if self.codec is not None:
            kind, cname = self.codec
            compressors = codecs.GzipCodec() if kind == "gzip" else codecs.BloscCodec(cname=cname, shuffle="shuffle")
        group = zarr.open_group(str(path), mode="w")
        group.attrs.update({"columns": list(COLUMNS), **{k: str(v) for k, v in meta.items()}})
        for name in COLUMNS:
            group.create_array(name, data=columns[name], compressors=compressors)

    @staticmethod
    def read(path: Path) -> Dict[str, Any]:
        zarr = require("zarr", "zarr", f"reading the Zarr metric store {Path(path).name}")
        group = zarr.open_group(str(path), mode="r")
        return {c: group[c][:] for c in COLUMNS}


FORMATS: Dict[str, Type[MetricFormat]] = {
    "csv": CsvFormat, "txt": TxtFormat, "text": TxtFormat, "parquet": ParquetFormat,
    "netcdf": NetCDFFormat, "nc": NetCDFFormat, "zarr": ZarrFormat,
}
#: How a metric file is read, by its suffix (a run still going on appends to ``<name>.<suffix>.csv``).
READERS = {fmt.suffix: fmt.read for fmt in FORMATS.values()}


def get_format(name: Union[str, MetricsType, None], use_compressor: Any = None) -> MetricFormat:
    """The format for a name; an unknown name lists the known ones, a missing package names its extra."""
    if name is None:
        return CsvFormat(use_compressor)
    key = name.value if isinstance(name, MetricsType) else str(name).lower().lstrip(".")
    try:
        fmt = FORMATS[key]
    except KeyError:
        raise InvalidValueError(
            f"unknown metrics_file_type {name!r}; known: {', '.join(sorted(FORMATS))}"
        ) from None
    out = fmt(use_compressor)
    out.check()
    return out


def read(path: Union[str, Path]) -> Dict[str, Any]:
    """The columns (``step``, ``value``, ``time``) of a metric file of any format, by its suffix."""
    path = Path(path)
    reader = READERS.get(path.suffix)
    if reader is None:
        raise ProvFileError(f"{path}: unknown metric file format {path.suffix!r}; known: {', '.join(sorted(READERS))}")
    return reader(path)


def media_type(location: Optional[str]) -> Optional[str]:
    """The media type of a metric file, by its suffix (None when unknown)."""
    if not location:
        return None
    suffix = Path(location).suffix
    return next((f.media_type for f in FORMATS.values() if f.suffix == suffix), None)


_HEADER = re.compile(r"step(.)value\1time")
_DTYPE = [("step", "<i8"), ("value", "<f8"), ("time", "<f8")]


def read_csv(path: Union[str, Path], separator: Optional[str] = None) -> Dict[str, Any]:
    """The columns of a CSV metric file; the separator is the header's."""
    import numpy as np

    with open(path, encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n")
        m = _HEADER.fullmatch(header)
        if m is None or (separator is not None and m.group(1) != separator):
            raise ProvFileError(f"{path} is not a prov4ml metric file (its header is {header!r}, not step,value,time)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a file with no rows yet
            data = np.loadtxt(fh, delimiter=m.group(1), dtype=_DTYPE, ndmin=1, comments=None)
    return {c: np.ascontiguousarray(data[c]) for c in COLUMNS}


_HEADER_BYTES = re.compile(rb"^step(.)value\1time\r?$")


def csv_rows(path: Union[str, Path]) -> Optional[Tuple[memoryview, str, int]]:
    """The whole lines after the header of the CSV metric file ``path`` (the writer may be half-way through the
    last one), its separator, and the offset an incremental read goes on from; None when it is not a metric
    file yet."""
    try:
        with open(path, "rb") as fh:
            header = fh.readline()
            m = _HEADER_BYTES.match(header.rstrip(b"\n"))
            if m is None:
                return None
            data = fh.read()
    except FileNotFoundError:
        return None
    end = data.rfind(b"\n") + 1
    return memoryview(data)[:end], m.group(1).decode(), len(header) + end  # a view: no copy of 30 MB


def kept_rows(data: memoryview, sep: str, keep: Callable[["np.ndarray"], "np.ndarray"]
              ) -> Optional[Tuple["np.ndarray", "np.ndarray", "np.ndarray", int]]:
    """``(step, value, time)`` at the rows ``keep(values)`` picks (row indices) of the whole lines ``data`` of a CSV
    metric file (:func:`csv_rows`), then the rows read: fast enough for a plot of millions of points. None when a
    cell is not a number."""
    try:
        step, values, time = parse_columns(data, sep)
    except ValueError:
        return None
    kept = keep(values)
    return step[kept], values[kept], time[kept], len(values)


def parse_columns(data: memoryview, sep: str) -> Tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """The step (int64: steps beyond 2**53 stay exact), value and time (floats) columns of the rows in ``data``
    (ValueError if a row is not three numbers): pyarrow's CSV reader where it is installed (the ``parquet`` extra:
    correctly rounded, on every core), else pandas' C reader (the ``analysis`` extra), else NumPy's (ten
    times slower)."""
    import io

    import numpy as np

    if not len(data):
        return np.empty(0, dtype="int64"), np.empty(0), np.empty(0)
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:
        pass
    else:
        names = ["step", "value", "time"]
        table = pa_csv.read_csv(pa.BufferReader(pa.py_buffer(data)),
                                read_options=pa_csv.ReadOptions(column_names=names, block_size=4 << 20),
                                parse_options=pa_csv.ParseOptions(delimiter=sep),
                                convert_options=pa_csv.ConvertOptions(column_types={
                                    "step": pa.int64(), "value": pa.float64(), "time": pa.float64()}))
        # a row not of three numbers: ArrowInvalid, a ValueError
        return tuple(table.column(n).to_numpy() for n in names)  # type: ignore[return-value]
    try:
        import pandas as pd
    except ImportError:
        rows = np.loadtxt(io.BytesIO(data), delimiter=sep, dtype=_DTYPE, ndmin=1, comments=None)
        return rows["step"], rows["value"], rows["time"]
    frame = pd.read_csv(io.BytesIO(data), sep=sep, header=None, dtype={0: "int64", 1: "float64", 2: "float64"},
                        engine="c")
    if frame.shape[1] != 3:
        raise ValueError(f"rows of {frame.shape[1]} columns")
    return frame[0].to_numpy(), frame[1].to_numpy(), frame[2].to_numpy()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def remove_temporaries(metrics_dir: Path) -> None:
    """Remove the half-written conversions a kill can leave in ``metrics_dir``."""
    for fmt in set(FORMATS.values()):
        if fmt.side:
            for path in metrics_dir.glob(f"*{fmt.suffix}.tmp"):
                _remove(path)
