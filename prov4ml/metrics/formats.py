"""Metric file formats, one class each behind a registry.

Every format appends points as CSV text while the run goes on (see
``_sink.CsvAppender``), so a killed run keeps the points written before the
kill; a format may convert that file once, at ``end_run``. Columns are always
``step``, ``value`` and ``time`` (Unix time in seconds, millisecond precision).
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Dict, Type, Union

from .._optional import require
from ..exceptions import InvalidValueError

__all__ = ["MetricsType", "MetricFormat", "CsvFormat", "ParquetFormat", "get_format", "FORMATS"]


class MetricsType(enum.Enum):
    """The metric file formats (``metrics_file_type=`` at ``start_run``)."""

    CSV = "csv"
    PARQUET = "parquet"


class MetricFormat:
    """Where the points of a series are appended, and what ``end_run`` makes of that file."""

    suffix = ""

    def data_path(self, target: Path) -> Path:
        return target

    def data_name(self, target: str) -> str:
        """``data_path`` for a relative name."""
        return self.data_path(Path(target)).as_posix()

    def finalize(self, data_path: Path, target: Path, separator: str = ",") -> Path:
        return data_path


class CsvFormat(MetricFormat):
    """Plain CSV with a header; reads back with ``pandas.read_csv`` or the csv module."""

    suffix = ".csv"


class ParquetFormat(MetricFormat):
    """Parquet (needs ``prov4ml[parquet]``).

    Points go to a CSV side file while the run goes on (a Parquet file is
    unreadable until its footer is written); ``end_run`` converts it and
    removes the side file only once the Parquet file is in place.
    """

    suffix = ".parquet"

    def data_path(self, target: Path) -> Path:
        return target.with_suffix(".parquet.csv")

    def finalize(self, data_path: Path, target: Path, separator: str = ",") -> Path:
        csv = require("pyarrow.csv", "parquet", "metrics_file_type='parquet'")
        pq = require("pyarrow.parquet", "parquet", "metrics_file_type='parquet'")
        tmp = target.with_suffix(".parquet.tmp")
        table = csv.read_csv(str(data_path), parse_options=csv.ParseOptions(delimiter=separator))
        pq.write_table(table, str(tmp))
        os.replace(tmp, target)
        data_path.unlink()
        return target


FORMATS: Dict[str, Type[MetricFormat]] = {"csv": CsvFormat, "parquet": ParquetFormat}


def get_format(name: Union[str, MetricsType, None]) -> MetricFormat:
    """The format for a name; an unknown name lists the known ones."""
    if name is None:
        return CsvFormat()
    key = name.value if isinstance(name, MetricsType) else str(name).lower().lstrip(".")
    try:
        fmt = FORMATS[key]
    except KeyError:
        raise InvalidValueError(
            f"unknown metrics_file_type {name!r}; known: {', '.join(sorted(FORMATS))}"
        ) from None
    if fmt is ParquetFormat:
        require("pyarrow", "parquet", "metrics_file_type='parquet'")
    return fmt()
