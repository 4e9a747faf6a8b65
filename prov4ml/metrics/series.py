"""A metric series (name + context): a point buffer on the hot path, a summary off it."""

from __future__ import annotations

import math
import sys
from typing import Any, List, Optional, Sequence

from ..context import Context, LoggingItemKind
from .samplers import Sampler

__all__ = ["MetricSeries", "materialize"]



class MetricSeries:
    """One metric in one context.

    The logging thread only extends ``buf`` with ``(step, value, time)`` (a
    flat list: one atomic ``extend`` per point, and the writer slices columns
    out of it in C) and bumps ``n``; ``take`` hands the buffered points over;
    the writer thread folds them into the summary fields with ``absorb``.
    """

    __slots__ = (
        "name", "context", "kind", "unit", "sampler", "file_name", "location", "buf", "n", "odd",
        "count", "nan_count", "min", "max", "last", "total",
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
    ) -> None:
        self.name = name
        self.context = context
        self.kind = kind
        self.unit = unit
        self.sampler = sampler
        self.file_name = file_name
        self.location: Optional[str] = None  # relative path of the data file, once written
        self.buf: List[Any] = []  # step, value, time, step, value, time, ...
        self.n = 0  # log calls so far (kept or not): the default step of the next point
        self.odd = False  # True once a value that is not a Python number (a tensor) was buffered
        self.count = 0
        self.nan_count = 0
        self.min: Optional[float] = None
        self.max: Optional[float] = None
        self.last: Optional[float] = None
        self.total = 0.0
        self.first_step: Optional[int] = None
        self.last_step: Optional[int] = None
        self.first_time: Optional[float] = None
        self.last_time: Optional[float] = None

    def take(self) -> List[Any]:
        """Remove and return the buffered points.

        Slicing then deleting the same prefix keeps a point appended by
        another thread in between: it stays in ``buf`` for the next take.
        """
        buf = self.buf
        n = len(buf)
        chunk = buf[:n]
        del buf[:n]
        return chunk

    def absorb(self, points: Sequence[Any], values: Sequence[float]) -> None:
        """Fold materialised points (flat step, value, time list; ``values`` its values) into the summary."""
        if not values:
            return
        lo, hi, total = min(values), max(values), sum(values)
        if total != total:  # a NaN somewhere (or inf - inf): summarise the finite part
            finite = [v for v in values if v == v]
            self.nan_count += len(values) - len(finite)
            lo, hi = (min(finite), max(finite)) if finite else (None, None)
            total = math.fsum(v for v in finite if not math.isinf(v)) if finite else 0.0
        if lo is not None:
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)
        self.total += total
        if self.first_step is None:
            self.first_step, self.first_time = points[0], points[2]
        self.count += len(values)
        self.last = values[-1]
        self.last_step, self.last_time = points[-3], points[-1]

    @property
    def mean(self) -> Optional[float]:
        finite = self.count - self.nan_count
        return self.total / finite if finite else None


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
