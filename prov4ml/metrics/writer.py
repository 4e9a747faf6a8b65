"""The background writer: appends metric points and rewrites the PROV-JSON off the hot path."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

from .formats import MetricFormat
from .outputs import ProcessOutput, ThreadOutput, open_output
from .series import MetricSeries, materialize

__all__ = ["BackgroundWriter"]

log = logging.getLogger("prov4ml")

Chunk = Tuple[MetricSeries, List[Any]]  # a series and its flat step, value, time list


class BackgroundWriter:
    """One daemon thread per run.

    ``submit`` hands over chunks of points: a ``deque.append`` and, only when
    the thread is idle, an ``Event.set`` (blocking only when ``maxsize`` batches
    are queued, so memory stays flat when the disk is slower than the loop).
    The thread lingers a few milliseconds after waking so that it writes
    many chunks at once, one ``write()`` per series. PROV-JSON snapshots are
    coalesced: at most one every ``interval`` seconds, never dropped, always
    of the latest state.
    """

    def __init__(
        self,
        metrics_dir: Path,
        fmt: MetricFormat,
        separator: str,
        snapshot: Callable[[], None],
        on_values: Callable[[MetricSeries, List[float]], None],
        interval: float = 0.2,
        maxsize: int = 1024,
        linger: float = 0.005,
        use_process: bool = True,
    ) -> None:
        self._metrics_dir = metrics_dir
        self._format = fmt
        self._separator = separator
        self._snapshot = snapshot
        self._on_values = on_values
        self._interval = interval
        self._maxsize = maxsize
        self._linger = linger
        self._items: Deque[tuple] = deque()
        self._urgent = 0  # barriers and stops queued: no lingering then
        self._wake = threading.Event()
        self._sleeping = False  # the thread waits on _wake; only then does a put need to set it
        self._room = threading.Condition()
        self._out = open_output(use_process)
        self._files: Dict[MetricSeries, Tuple[int, Path, Path]] = {}  # id, data path, target
        self._last_snapshot = 0.0
        self.errors: List[str] = []
        self._thread = threading.Thread(target=self._loop, name="prov4ml-writer", daemon=True)
        self._thread.start()

    # -- called from logging threads -------------------------------------
    def _put(self, item: tuple) -> None:
        if len(self._items) >= self._maxsize:
            with self._room:
                while len(self._items) >= self._maxsize and self._thread.is_alive():
                    self._room.wait(0.1)
        self._items.append(item)
        if self._sleeping:
            self._wake.set()

    def submit(self, chunks: Sequence[Chunk]) -> None:
        """Hand over chunks; a snapshot follows within ``interval`` seconds."""
        self._put(("data", chunks, None))

    def _put_and_wait(self, kind: str, chunks: Sequence[Chunk], timeout: Optional[float]) -> bool:
        done = threading.Event()
        self._urgent += 1
        self._put((kind, chunks, done))
        return done.wait(timeout)

    def flush(self, chunks: Sequence[Chunk] = (), timeout: Optional[float] = None) -> bool:
        """Write ``chunks`` and everything queued before, take a snapshot, and wait."""
        return self._put_and_wait("barrier", chunks, timeout)

    def close(self, chunks: Sequence[Chunk] = (), timeout: Optional[float] = None) -> Dict[MetricSeries, Path]:
        """Write what is left, stop the thread, close and finalise the files."""
        if self._thread.is_alive():
            self._put_and_wait("stop", chunks, timeout)
            self._thread.join(timeout)
        else:
            self._write(chunks)
        try:
            self._out.close()
        except OSError as exc:
            self._report(f"the metric sink did not close cleanly: {exc!r}")
        final: Dict[MetricSeries, Path] = {}
        for series, (_, data_path, target) in self._files.items():
            try:
                final[series] = self._format.finalize(data_path, target)
            except Exception as exc:  # keep the other series' files
                self._report(f"could not finalise {data_path}: {exc}")
        self._files.clear()
        return final

    @property
    def in_process(self) -> bool:
        """True while points are formatted by the sink process rather than this thread."""
        return isinstance(self._out, ProcessOutput)

    # -- writer thread ----------------------------------------------------
    def _loop(self) -> None:
        pending = False
        while True:
            timeout = None
            if pending:
                timeout = max(0.0, self._last_snapshot + self._interval - time.monotonic())
            self._wake.clear()
            self._sleeping = True
            if not self._items:
                self._wake.wait(timeout)
            self._sleeping = False
            if self._linger and not self._urgent and self._items:
                time.sleep(self._linger)
            merged: Dict[MetricSeries, List[Any]] = {}
            events = []
            stop = False
            while self._items:
                kind, chunks, event = self._items.popleft()
                for series, points in chunks:
                    merged.setdefault(series, []).extend(points)
                if kind == "data":
                    pending = True
                else:
                    self._urgent -= 1
                    events.append(event)
                    stop = stop or kind == "stop"
            with self._room:
                self._room.notify_all()
            self._write(merged.items())
            # A barrier snapshots at once, data at most every interval; on stop the run writes the final document.
            due = not stop and (bool(events) or (pending and time.monotonic() - self._last_snapshot >= self._interval))
            if events or due:
                self._sync()  # the document must not claim points the sink has not written
            if due:
                self._take_snapshot()
                pending = False
            for event in events:
                event.set()
            if stop:
                return

    def _take_snapshot(self) -> None:
        try:
            self._snapshot()
        except Exception as exc:
            self._report(f"could not write the PROV-JSON snapshot: {exc!r}")
        self._last_snapshot = time.monotonic()

    def _write(self, chunks: Iterable[Chunk]) -> None:
        for series, points in chunks:
            if not points:
                continue
            try:
                values = points[1::3]
                if series.odd:
                    values = materialize(values)
                    points = list(points)
                    points[1::3] = values
                series.absorb(points, values)
                self._on_values(series, values)
            except Exception as exc:
                self._report(f"could not record points of metric {series.name!r}: {exc!r}")
                continue
            self._emit(series, points)

    def _emit(self, series: MetricSeries, points: List[Any]) -> None:
        try:
            file_id = self._open(series)
            self._out.append(file_id, points)
        except OSError as exc:
            if not self.in_process:
                self._report(f"could not write points of metric {series.name!r}: {exc!r}")
                return
            self._fall_back(exc)
            self._emit(series, points)

    def _sync(self) -> None:
        try:
            self._out.sync()
        except OSError as exc:
            if self.in_process:
                self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        """The sink process is gone: format in this thread from now on."""
        self._report(f"the metric sink process failed ({exc!r}); writing from the writer thread, "
                     "points in flight at that moment may be missing")
        self._out.abandon()
        self._out = ThreadOutput()
        for series, (file_id, data_path, _) in self._files.items():
            self._out.open(file_id, data_path, self._separator)

    def _open(self, series: MetricSeries) -> int:
        entry = self._files.get(series)
        if entry is None:
            target = self._metrics_dir / (series.file_name + self._format.suffix)
            data_path = self._format.data_path(target)
            entry = self._files[series] = (len(self._files), data_path, target)
            self._out.open(entry[0], data_path, self._separator)
            series.location = f"{self._metrics_dir.name}/{data_path.name}"
        return entry[0]

    def _report(self, message: str) -> None:
        self.errors.append(message)
        log.warning("prov4ml: %s", message)
