"""The background writer: appends metric points and rewrites the PROV-JSON off the hot path."""

from __future__ import annotations

import logging
import operator
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

from .formats import MetricFile
from .series import MetricSeries, Point, materialize

__all__ = ["BackgroundWriter"]

log = logging.getLogger("prov4ml")

Chunk = Tuple[MetricSeries, List[Point]]
_value_of = operator.itemgetter(1)


class BackgroundWriter:
    """One daemon thread per run.

    ``submit`` hands over chunks of points (blocking when ``maxsize`` batches
    are queued, so memory stays flat when the disk is slower than the loop).
    Points are written as they arrive. PROV-JSON snapshots are coalesced: at
    most one every ``interval`` seconds, never dropped, always of the latest
    state.
    """

    def __init__(
        self,
        metrics_dir: Path,
        file_class: Type[MetricFile],
        separator: str,
        snapshot: Callable[[], None],
        on_values: Callable[[MetricSeries, List[float]], None],
        interval: float = 0.2,
        maxsize: int = 256,
    ) -> None:
        self._metrics_dir = metrics_dir
        self._file_class = file_class
        self._separator = separator
        self._snapshot = snapshot
        self._on_values = on_values
        self._interval = interval
        self._queue: "queue.Queue[tuple]" = queue.Queue(maxsize=maxsize)
        self._files: Dict[MetricSeries, MetricFile] = {}
        self._last_snapshot = 0.0
        self.errors: List[str] = []
        self._thread = threading.Thread(target=self._loop, name="prov4ml-writer", daemon=True)
        self._thread.start()

    # -- called from logging threads -------------------------------------
    def submit(self, chunks: Sequence[Chunk], snapshot: bool = True) -> None:
        self._queue.put(("data", chunks, snapshot))

    def flush(self, chunks: Sequence[Chunk] = (), timeout: Optional[float] = None) -> bool:
        """Write ``chunks`` and everything queued before, take a snapshot, and wait."""
        done = threading.Event()
        self._queue.put(("barrier", chunks, done))
        return done.wait(timeout)

    def close(self, chunks: Sequence[Chunk] = (), timeout: Optional[float] = None) -> Dict[MetricSeries, Path]:
        """Write what is left, stop the thread, close and finalise the files."""
        if self._thread.is_alive():
            done = threading.Event()
            self._queue.put(("stop", chunks, done))
            done.wait(timeout)
            self._thread.join(timeout)
        else:
            self._write(chunks)
        final: Dict[MetricSeries, Path] = {}
        for series, fh in self._files.items():
            try:
                fh.close()
                final[series] = fh.finalize()
            except Exception as exc:  # keep the other series' files
                self._report(f"could not finalise {fh.path}: {exc}")
        self._files.clear()
        return final

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- writer thread ----------------------------------------------------
    def _loop(self) -> None:
        pending = False
        while True:
            timeout = None
            if pending:
                timeout = max(0.0, self._last_snapshot + self._interval - time.monotonic())
            try:
                kind, chunks, arg = self._queue.get(timeout=timeout)
            except queue.Empty:
                kind = None
            if kind is not None:
                self._write(chunks)
                if kind == "data":
                    pending = pending or arg
                elif kind == "barrier":
                    self._take_snapshot()
                    pending = False
                    arg.set()
                else:  # stop: the run writes the final document itself
                    arg.set()
                    return
            if pending and time.monotonic() - self._last_snapshot >= self._interval:
                self._take_snapshot()
                pending = False

    def _take_snapshot(self) -> None:
        try:
            self._snapshot()
        except Exception as exc:
            self._report(f"could not write the PROV-JSON snapshot: {exc!r}")
        self._last_snapshot = time.monotonic()

    def _write(self, chunks: Sequence[Chunk]) -> None:
        for series, points in chunks:
            if not points:
                continue
            try:
                values = list(map(_value_of, points))
                if series.odd:
                    values = materialize(values)
                    points = [(p[0], v, p[2]) for p, v in zip(points, values)]
                series.absorb(points, values)
                self._on_values(series, values)
                self._file(series).append(points)
            except Exception as exc:
                self._report(f"could not write points of metric {series.name!r}: {exc!r}")

    def _file(self, series: MetricSeries) -> MetricFile:
        fh = self._files.get(series)
        if fh is None:
            path = self._metrics_dir / (series.file_name + self._file_class.suffix)
            fh = self._files[series] = self._file_class(path, self._separator)
            series.location = f"{self._metrics_dir.name}/{path.name}"
        return fh

    def _report(self, message: str) -> None:
        self.errors.append(message)
        log.warning("prov4ml: %s", message)
