"""A metric series (name + context): a point buffer on the hot path, a summary off it."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any, List, Optional, Sequence

from ..context import Context, LoggingItemKind
from ..records.model import SeriesSummary
from .samplers import Sampler

__all__ = ["MetricSeries", "materialize", "NO_ROWS"]

#: the summary of a series with no rows on disk, in ``_sink.STATS`` order (``_sink.new_stats``)
NO_ROWS = (0, 0, None, None, None, None, None, None, None, None)



class MetricSeries:
    """One metric in one context.

    The logging thread bumps ``n`` and packs points into the journal under
    the series id ``sid``; accelerator tensors wait in ``deferred``. The
    summary fields describe the rows on disk, as the journal's consumer
    reports them (``update``).
    """

    __slots__ = (
        "name", "context", "kind", "unit", "sampler", "file_name", "sid", "data_file", "location",
        "n", "deferred", "count", "nan_count", "min", "max", "last", "mean_value",
        "first_step", "last_step", "first_time", "last_time",
    )

    def __init__(
        self,
        name: str,
        context: Context,
        kind: LoggingItemKind,
        sampler: Optional[Sampler],
        file_name: str,
        unit: Optional[str] = None,
        sid: int = 0,
        data_file: str = "",
    ) -> None:
        self.name = name
        self.context = context
        self.kind = kind
        self.unit = unit
        self.sampler = sampler
        self.file_name = file_name
        self.sid = sid
        self.data_file = data_file  # the file the points are appended to, relative to the run directory
        self.location: Optional[str] = None  # the file named in the document, once it holds rows
        self.n = 0  # log calls so far (kept or not): the default step of the next point
        self.deferred: List[Any] = []  # (step, tensor, time) of accelerator tensors not yet journaled
        self.count = 0
        self.nan_count = 0
        self.min: Optional[float] = None
        self.max: Optional[float] = None
        self.last: Optional[float] = None
        self.mean_value: Optional[float] = None  # of the points that are numbers
        self.first_step: Optional[int] = None
        self.last_step: Optional[int] = None
        self.first_time: Optional[float] = None
        self.last_time: Optional[float] = None

    def update(self, stats: Sequence[Any]) -> None:
        """Take the consumer's summary (``_sink.STATS`` order) of the rows on disk."""
        (self.count, self.nan_count, self.min, self.max, self.last, self.mean_value,
         self.first_step, self.last_step, self.first_time, self.last_time) = stats
        if self.count and self.location is None:
            self.location = self.data_file

    @property
    def mean(self) -> Optional[float]:
        return self.mean_value if self.count > self.nan_count else None

    def summary(self) -> SeriesSummary:
        """What the document says of this series."""
        first, last = self.first_time, self.last_time
        return SeriesSummary(  # by position, in the order of its fields: an end_run of 100,000 series makes one each
            self.name, self.context, self.kind.value, self.unit, None if self.sampler is None else repr(self.sampler),
            self.location, self.count, self.nan_count, self.min, self.max, self.last, self.mean, self.first_step,
            self.last_step, None if first is None else datetime.fromtimestamp(first, timezone.utc),  # records.model.utc
            None if last is None else datetime.fromtimestamp(last, timezone.utc),
        )


def materialize(values: List[Any]) -> List[float]:
    """Turn buffered values (floats, ints, detached tensors) into floats.

    Tensors are converted in one batch per device, so a GPU series costs one
    host-device transfer per flush instead of one per logged point.
    """
    odd = [i for i, v in enumerate(values) if type(v) is not float]
    if not odd:
        return values
    out = list(values)
    tensors = []
    for i in odd:
        v = out[i]
        if isinstance(v, (int, float)):
            out[i] = float(v)
        else:
            tensors.append(i)
    if tensors:
        _tensors_to_floats(out, tensors)
    return out


def _tensors_to_floats(out: List[Any], indices: List[int]) -> None:
    torch = sys.modules["torch"]  # a tensor was logged, so torch is imported
    by_device: dict = {}
    for i in indices:
        by_device.setdefault(out[i].device, []).append(i)
    for device, idx in by_device.items():
        try:
            stacked = torch.stack([out[i].reshape(()).to(torch.float64) for i in idx])
            floats = stacked.cpu().tolist()
        except (RuntimeError, TypeError):  # e.g. a backend without float64
            floats = [float(out[i].reshape(()).float().cpu()) for i in idx]
        for i, f in zip(idx, floats):
            out[i] = f
