"""Metric series: each entity's summary, and the points of its metric file in any format the project writes.

The points are read with :mod:`prov4ml.metrics.formats`' readers (CSV and TXT
with NumPy; Parquet, netCDF and Zarr with their extras' packages) as NumPy
columns ``step`` (int64 when whole), ``value`` and ``time`` (float64): no pandas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..exceptions import ProvFileError
from ..metrics import formats

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Series", "Points", "READERS", "read_points", "read_series", "csv_rows"]

#: How a metric file is read, by its suffix (a running Parquet run appends to ``<name>.parquet.csv``).
READERS = formats.READERS
COLUMNS = ("step", "value", "time")


@dataclass
class Series:
    """One metric series of one rank, as its entity summarises it."""

    name: str
    context: str
    rank: int
    count: Optional[int] = None
    nan_count: Optional[int] = None
    min: Optional[float] = None
    max: Optional[float] = None
    last: Optional[float] = None
    mean: Optional[float] = None
    first_step: Optional[int] = None
    last_step: Optional[int] = None
    unit: Optional[str] = None
    source: Optional[str] = None
    sampler: Optional[str] = None
    location: Optional[str] = None

    @property
    def key(self) -> str:
        return f"{self.name}/{self.context}"


@dataclass
class Points:
    """The points of one series of one rank: NumPy columns in logged order."""

    series: Series
    step: np.ndarray
    value: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return len(self.step)

    def __getitem__(self, column: str) -> np.ndarray:  # points["step"], as a frame reads
        if column not in COLUMNS:
            raise KeyError(column)
        return getattr(self, column)


def read_points(run_dir: Path, location: Optional[str]) -> Optional[Dict[str, np.ndarray]]:
    """The ``step`` (int64 when whole), ``value`` and ``time`` (float64) columns of a metric file
    (None: a series with no point written yet)."""
    if not location:
        return None
    path = Path(run_dir) / location
    reader = READERS.get(path.suffix)
    if reader is None:
        raise ProvFileError(f"{path}: unknown metric file format {path.suffix!r}; known: {', '.join(sorted(READERS))}")
    if not path.exists():  # a Zarr store is a directory
        raise ProvFileError(f"{path}: metric file missing (named by the run's PROV-JSON); copy the run's metrics/ directory with it")
    try:
        columns = reader(path)
    except ProvFileError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise ProvFileError(f"{path}: cannot be read as a metric file ({exc})") from None
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ProvFileError(f"{path} lacks the column(s) {', '.join(missing)} of a prov4ml metric file")
    import numpy as np  # only where points are read: listing runs needs no NumPy

    out = {}
    for col in COLUMNS:
        data = np.asarray(columns[col])
        if col == "step" and data.dtype.kind in "iu":
            out[col] = data.astype("int64")  # exact: float64 would round 2**53 + 1
            continue
        try:
            out[col] = data.astype("float64")
        except (TypeError, ValueError):  # text cells: the numbers among them, NaN for the others
            out[col] = np.array([_number(v) for v in data], dtype="float64")
    return out


def read_series(run_dir: Path, series: Series) -> Points:
    """The points of ``series`` (none when its file is not written yet)."""
    cols = read_points(run_dir, series.location)
    if cols is None:
        import numpy as np

        return Points(series, np.empty(0, "int64"), np.empty(0, "float64"), np.empty(0, "float64"))
    return Points(series, cols["step"], cols["value"], cols["time"])


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


_HEADER = re.compile(r"step(.)value\1time")


def reference_csv_rows(path: Path) -> List[List[str]]:
    """The rows of a CSV metric file yProv4ML wrote (after its header line: ``name,context,source`` in 2.x,
    ``epoch,value,timestep`` in 3.x), as the text it holds: ``[step, value, time in ms]`` each."""
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        fh.readline()
        return [row for row in csv.reader(fh) if row]


def csv_rows(path: Path) -> List[List[str]]:
    """The rows of a CSV metric file as the text it holds (``[step, value, time]`` each); :class:`ProvFileError`
    when its header is not ``step,value,time``."""
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n")
        m = _HEADER.fullmatch(header)
        if m is None:
            raise ProvFileError(f"{path} is not a prov4ml metric file (header {header!r})")
        return list(csv.reader(fh, delimiter=m.group(1)))
