"""Metric file formats, one class each behind a registry.

Every format appends points while the run goes on, so a killed run keeps the
points written before the kill. Columns are always ``step``, ``value`` and
``time`` (Unix time in seconds, millisecond precision).
"""

from __future__ import annotations

import enum
import os
from itertools import chain
from pathlib import Path
from typing import Dict, Sequence, Tuple, Type, Union

from .._optional import require
from ..exceptions import InvalidValueError

__all__ = ["MetricsType", "MetricFile", "CsvFile", "ParquetFile", "get_format", "FORMATS"]

COLUMNS = ("step", "value", "time")


class MetricsType(enum.Enum):
    """The metric file formats (``metrics_file_type=`` at ``start_run``)."""

    CSV = "csv"
    PARQUET = "parquet"


class MetricFile:
    """Appends points of one series to one file."""

    suffix = ""

    def __init__(self, path: Path, separator: str = ",") -> None:
        self.path = path
        self.separator = separator
        self._row = f"%d{separator}%r{separator}%.3f\n"
        new = not path.exists() or path.stat().st_size == 0
        # Unbuffered: each chunk reaches the OS in one write() call, so a
        # killed process never leaves half a chunk in a user-space buffer.
        self._fh = open(path, "ab", buffering=0)
        if new:
            self._fh.write((separator.join(COLUMNS) + "\n").encode())

    def append(self, points: Sequence[Tuple[int, float, float]]) -> None:
        # One format string for the whole chunk: the formatting loop runs in C.
        text = (self._row * len(points)) % tuple(chain.from_iterable(points))
        self._fh.write(text.encode())

    def close(self) -> None:
        self._fh.close()

    def finalize(self) -> Path:
        """Called once at end_run after close(); returns the file the series points to."""
        return self.path


class CsvFile(MetricFile):
    """Plain CSV with a header; reads back with ``pandas.read_csv`` or the csv module."""

    suffix = ".csv"


class ParquetFile(MetricFile):
    """Parquet (needs ``prov4ml[parquet]``).

    Points are appended to a CSV side file while the run goes on (a Parquet
    file is unreadable until its footer is written); ``end_run`` converts it
    to Parquet and removes the side file only after the Parquet file is in place.
    """

    suffix = ".parquet"

    def __init__(self, path: Path, separator: str = ",") -> None:
        require("pyarrow", "parquet", "metrics_file_type='parquet'")
        super().__init__(path.with_suffix(".parquet.csv"), ",")
        self.target = path

    def finalize(self) -> Path:
        csv = require("pyarrow.csv", "parquet", "metrics_file_type='parquet'")
        pq = require("pyarrow.parquet", "parquet", "metrics_file_type='parquet'")
        table = csv.read_csv(str(self.path))
        tmp = self.target.with_suffix(".parquet.tmp")
        pq.write_table(table, str(tmp))
        os.replace(tmp, self.target)
        self.path.unlink()
        return self.target


FORMATS: Dict[str, Type[MetricFile]] = {"csv": CsvFile, "parquet": ParquetFile}


def get_format(name: Union[str, MetricsType, None]) -> Type[MetricFile]:
    """The file class for a format name; an unknown name lists the known ones."""
    if name is None:
        return CsvFile
    key = name.value if isinstance(name, MetricsType) else str(name).lower().lstrip(".")
    try:
        fmt = FORMATS[key]
    except KeyError:
        raise InvalidValueError(
            f"unknown metrics_file_type {name!r}; known: {', '.join(sorted(FORMATS))}"
        ) from None
    if fmt is ParquetFile:
        require("pyarrow", "parquet", "metrics_file_type='parquet'")
    return fmt

