"""A long series cut down for a plot: every extreme kept (min/max per bucket), the full data a link away.

A plot 480 pixels wide shows at most two values per pixel column, the lowest
and the highest, so a million points sent to it are ~2,000 that matter and
998,000 that cost bytes and time. The server sends a long series' history cut
by :func:`prov4ml.analysis.plots.minmax_indices` (the HTML reports' cut too):
of each of ``buckets`` runs of consecutive points, the first, the last, the
lowest and the highest, so the series' minimum and maximum are exactly the
full series'. ``/api/series/`` gives every point.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ..analysis.plots import BUCKETS, minmax_indices

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BUCKETS", "DECIMATE_BYTES", "minmax_indices", "read_csv_whole", "decimated", "thin"]

DECIMATE_BYTES = 1 << 20  # a CSV file bigger than this (~35,000 points) is sent decimated at first

_HEADER = re.compile(rb"^step(.)value\1time\r?$")


def read_csv_whole(path: Path) -> Optional[Tuple["np.ndarray", "np.ndarray", "np.ndarray", int]]:
    """``(step, value, time, offset)`` of every complete line of the metric CSV ``path``, read with NumPy
    (a million points in a fraction of a second); ``offset`` is where the next incremental read starts.
    None when the file is not a metric file yet or holds a cell that is not a number."""
    try:
        with open(path, "rb") as fh:
            header = fh.readline()
            m = _HEADER.match(header.rstrip(b"\n"))
            if m is None:
                return None
            data = fh.read()
    except FileNotFoundError:
        return None
    end = data.rfind(b"\n") + 1  # the writer may be half-way through the last line
    try:
        cols = _parse(data[:end], m.group(1).decode())
    except ValueError:
        return None
    if cols.shape[0] and cols.shape[1] != 3:
        return None
    cols = cols.reshape(-1, 3)
    return cols[:, 0], cols[:, 1], cols[:, 2], len(header) + end


def _parse(data: bytes, sep: str) -> "np.ndarray":
    """The rows of ``data`` as floats: pandas' C reader (its precise float parser, the default) where
    the ``analysis`` extra is installed (0.3 s for a million rows where NumPy's took 1.3 s, under load), NumPy's otherwise."""
    import numpy as np

    try:
        import pandas as pd
    except ImportError:
        return np.loadtxt(io.BytesIO(data), delimiter=sep, dtype="float64", ndmin=2, comments=None)
    if not data:
        return np.empty((0, 3))
    frame = pd.read_csv(io.BytesIO(data), sep=sep, header=None, dtype="float64", engine="c")
    return frame.to_numpy()


def _steps(steps: "np.ndarray") -> List[Optional[int]]:
    import numpy as np

    whole = np.isfinite(steps) & (steps == np.round(steps))
    return [int(s) if w else None for s, w in zip(steps.tolist(), whole.tolist())]


def decimated(path: Path, buckets: int = BUCKETS) -> Optional[Dict[str, object]]:
    """The whole metric CSV ``path`` cut to :func:`minmax_indices`: ``step``, ``value``, ``time``,
    ``offset`` (to follow the file from), ``total`` (the points in the file). None when the file is
    small (the incremental reader sends it as it is) or cannot be read with NumPy."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if stat.st_size <= DECIMATE_BYTES:
        return None
    return _decimated(str(path), stat.st_size, stat.st_mtime_ns, buckets)


@lru_cache(maxsize=32)  # a finished run's page opened again: its files are not read again
def _decimated(path: str, _size: int, _mtime_ns: int, buckets: int) -> Optional[Dict[str, object]]:
    whole = read_csv_whole(Path(path))
    if whole is None:
        return None
    steps, values, times, offset = whole
    keep = minmax_indices(values, buckets)
    return {"step": _steps(steps[keep]), "value": values[keep].tolist(), "time": times[keep].tolist(),
            "offset": offset, "total": len(values)}


def thin(steps: List, values: List, times: List, buckets: int = BUCKETS) -> Tuple[List, List, List, int]:
    """Columns already in memory (a Parquet file's) cut the same way; the last item is the total."""
    import numpy as np

    v = np.asarray([np.nan if x is None else x for x in values], dtype="float64")
    keep = minmax_indices(v, buckets).tolist()
    return [steps[i] for i in keep], [values[i] for i in keep], [times[i] for i in keep], len(values)

