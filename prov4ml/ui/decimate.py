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

import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from ..analysis.plots import BUCKETS, minmax_indices
from ..metrics.formats import csv_rows, kept_rows
from ..metrics.hotpath import cut

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BUCKETS", "DECIMATE_BYTES", "minmax_indices", "decimated", "decimated_all", "thin"]

DECIMATE_BYTES = 1 << 20  # a CSV file bigger than this (~35,000 points) is sent decimated at first

def _steps(steps: List[Any]) -> List[Optional[int]]:
    """Steps as ints (a step beyond 2**53 read as an int stays exact), None for one that is not whole."""
    return [s if isinstance(s, int) else int(s) if math.isfinite(s) and s.is_integer() else None for s in steps]


def decimated(path: Path, buckets: int = BUCKETS) -> Optional[Dict[str, object]]:
    """The whole metric CSV ``path`` cut to :func:`minmax_indices`: ``step``, ``value``, ``time``,
    ``offset`` (to follow the file from), ``total`` (the points in the file). None when the file is
    small (the incremental reader sends it as it is) or is not a metric file (yet)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if stat.st_size <= DECIMATE_BYTES:
        return None
    return _decimated(str(path), stat.st_size, stat.st_mtime_ns, buckets)


def decimated_all(paths: Sequence[Path], buckets: int = BUCKETS) -> List[Optional[Dict[str, object]]]:
    """:func:`decimated` of each of ``paths``, side by side: the CSV readers let go of the GIL, so a run
    page's series are read on every core at once rather than one after the other."""
    if len(paths) < 2:
        return [decimated(p, buckets) for p in paths]
    with ThreadPoolExecutor(max_workers=min(len(paths), 4), thread_name_prefix="prov4ml-ui-decimate") as pool:
        return list(pool.map(lambda p: decimated(p, buckets), paths))


def _decimated(path: str, size: int, mtime_ns: int, buckets: int) -> Optional[Dict[str, object]]:
    """:func:`_cut`, kept for the 32 files cut last (a page opened again reads nothing); a cut being made
    (by the server's warm-up, another page) is waited for, not made twice at once."""
    key = (path, size, mtime_ns, buckets)
    while True:
        with _lock:
            if key in _cuts:
                _cuts.move_to_end(key)
                return _cuts[key]
            busy = _busy.get(key)
            if busy is None:
                busy = _busy[key] = threading.Event()
                break
        busy.wait()  # then from the cache, or made here if that cut failed
    try:
        made = _cut(path, buckets)
        with _lock:
            _cuts[key] = made
            if len(_cuts) > KEPT:
                _cuts.popitem(last=False)
        return made
    finally:
        with _lock:
            del _busy[key]
        busy.set()


KEPT = 32
_cuts: "OrderedDict[Tuple, Optional[Dict[str, object]]]" = OrderedDict()
_busy: Dict[Tuple, threading.Event] = {}
_lock = threading.Lock()


def _cut(path: str, buckets: int) -> Optional[Dict[str, object]]:
    rows = csv_rows(path)
    if rows is None:
        return None
    data, sep, offset = rows
    made = cut(data, sep, buckets) if cut is not None else None  # C: 0.1 s a million rows, no NumPy
    if made is None:  # no C extension, or a file of another form than the sink writes
        kept = kept_rows(data, sep, lambda values: minmax_indices(values, buckets))
        if kept is None:
            return None
        made = (kept[0].tolist(), kept[1].tolist(), kept[2].tolist(), kept[3])
    steps, values, times, total = made
    return {"step": _steps(steps), "value": values, "time": times, "offset": offset, "total": total}


def thin(steps: List, values: List, times: List, buckets: int = BUCKETS) -> Tuple[List, List, List, int]:
    """Columns already in memory (a Parquet file's) cut the same way; the last item is the total."""
    import numpy as np

    v = np.asarray([np.nan if x is None else x for x in values], dtype="float64")
    keep = minmax_indices(v, buckets).tolist()
    return [steps[i] for i in keep], [values[i] for i in keep], [times[i] for i in keep], len(values)

