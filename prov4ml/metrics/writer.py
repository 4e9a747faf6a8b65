"""The refresher: brings the metric files and the PROV-JSON up to date, off the training thread.

One daemon thread per run. It sleeps until it is poked (every
``save_after_n_logs`` recording calls) or ``max_interval`` seconds have
passed, never refreshes more often than ``min_interval`` seconds (nor spends
more than a few per cent of the time refreshing), except that a new record
(a parameter, an artifact, a model version) is in the document within ~50 ms.
Each time it:

1. asks the consumer (the sink process) to catch up with the journal, and
   gets back the summary of every series *as it is on disk*;
2. calls ``refresh(report)``: the run folds, updates its series and rewrites
   the PROV-JSON, so the document never claims a point the files lack.

When the run gives ``save_records`` and ``document_writer`` too, the sink process writes the
document instead (from the records the run saves and its own summaries):
each refresh then only calls ``save_records(None)``, which saves the records
if they changed, and asks the sink to rewrite the document. The training
process's GIL is then held for a fraction of a millisecond per refresh, not
for the milliseconds a document takes to build and serialise.

Every wait is bounded; a sink that dies or stops answering is replaced by a
consumer in this thread, which continues the metric files from the journal.
Nothing that fails here stops the thread: each failure is reported once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Callable, List, Optional

from .outputs import ProcessOutput, SinkError, ThreadOutput, open_output

__all__ = ["Refresher"]

log = logging.getLogger("prov4ml")

#: a refresh may take at most this share of the time (a big document on a busy machine)
_DUTY = 0.005
#: how soon a new record (a parameter, an artifact, a model version) reaches the document
_SOON = 0.05


class Refresher:
    def __init__(
        self,
        journal_dir: str,
        run_dir: str,
        separator: str,
        refresh: Callable[[dict], None],
        min_interval: float,
        max_interval: float,
        use_process: bool = True,
        save_records: Optional[Callable[[Optional[dict]], None]] = None,
        document_writer: Optional[str] = None,
    ) -> None:
        self._journal_dir = journal_dir
        self._run_dir = run_dir
        self._separator = separator
        self._refresh = refresh
        self._save_records = save_records
        self._min = min_interval
        self._max = max_interval
        documents = document_writer if save_records is not None else None
        # a live document is rewritten every max_interval at least: a refresh comes every min_interval, so a
        # document may wait the difference (for many new series' files) and still keep that promise
        self._out = open_output(use_process, journal_dir, run_dir, separator, documents=documents,
                                defer=max(0.0, max_interval - min_interval))
        self._wake = threading.Event()  # poked: refresh once the pause is over
        self._urgent = threading.Event()  # a flush or close: refresh now
        self._lock = threading.Lock()
        self._waiting: List[threading.Event] = []
        self._stop = False
        self._soon = False
        self._last = time.monotonic()  # the run wrote its first document at start: the next one can wait
        self._cost = 0.0  # CPU seconds of the last refresh
        self.errors: List[str] = []
        self._reported: set = set()
        self.last_report: dict = {"series": {}, "errors": [], "points": 0}
        self._thread = threading.Thread(target=self._loop, name="prov4ml-refresher", daemon=True)
        self._thread.start()

    # -- any thread --------------------------------------------------------
    def poke(self) -> None:
        """Ask for a refresh once the pause is over (coalesced; cheap: the hot path calls it)."""
        if not self._wake.is_set():
            self._wake.set()

    def poke_soon(self) -> None:
        """A record (a parameter, an artifact, a model version) came: refresh within ~50 ms."""
        self._soon = True
        self._wake.set()
        self._urgent.set()

    def flush(self, timeout: float = 60.0) -> bool:
        """Refresh now and wait until the files and the document are written."""
        done = threading.Event()
        with self._lock:
            self._waiting.append(done)
        self._wake.set()
        self._urgent.set()
        if not self._thread.is_alive():
            return False
        ok = done.wait(timeout)
        if not ok:
            self.report("stuck", f"the refresher did not finish within {timeout} s; the journal keeps every point")
        return ok

    def close(self, timeout: float = 60.0) -> dict:
        """Stop the thread and let the consumer read the journal to the end; its final report."""
        self._stop = True
        self._wake.set()
        self._urgent.set()
        self._out.closing()  # a live document the thread waits for is dropped, not finished
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.report("stuck", f"the refresher did not stop within {timeout} s")
        try:
            report = self._out.close(timeout)
        except (SinkError, OSError, ValueError) as exc:
            self._fall_back(exc)
            report = self._out.close(timeout)
        self._note(report)
        return report

    def confirm(self, timeout: float = 60.0) -> dict:
        """After :meth:`close`: wait until the files hold what its report summarised. ``as_planned`` says they
        do; otherwise the result is the report of the files (a write failed, or the sink died and this thread
        finished them from the journal)."""
        try:
            final = self._out.confirm(timeout)
        except (SinkError, OSError, ValueError) as exc:
            self._fall_back(exc)
            final = {**self._out.close(timeout), "as_planned": False}
        self._note(final)
        return final

    @property
    def in_process(self) -> bool:
        """True while the metric files are written by the sink process."""
        return isinstance(self._out, ProcessOutput)

    def report(self, key: str, message: str) -> None:
        """Record a problem once (a warning and the run's ``provml:writer_errors``)."""
        if self.warn_once(key, message):
            self.errors.append(message)

    def warn_once(self, key: str, message: str) -> bool:
        """Warn of a problem the first time it is seen; False when it was seen before."""
        if key in self._reported:
            return False
        self._reported.add(key)
        log.warning("prov4ml: %s", message)
        return True

    # -- the thread --------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self._max)  # a poke, or max_interval without one
            # Coalesce: pokes during the pause change nothing; a flush or close ends it.
            while not self._stop:
                with self._lock:
                    urgent = bool(self._waiting)
                gap = max(_SOON, 5 * self._cost) if self._soon else max(self._min, self._cost / _DUTY)
                pause = self._last + gap - time.monotonic()
                if urgent or pause <= 0:
                    break
                self._urgent.wait(pause)
            if self._stop:
                return
            self._wake.clear()
            self._urgent.clear()
            self._soon = False
            with self._lock:
                waiting, self._waiting = self._waiting, []
            self.refresh_once(full=bool(waiting))
            for event in waiting:
                event.set()

    @property
    def documents_in_sink(self) -> bool:
        """True while the sink process writes the PROV-JSON."""
        return self._save_records is not None and getattr(self._out, "documents", False)

    def refresh_once(self, full: bool = False) -> None:
        """One refresh; ``full`` also brings the run's own series summaries up to date (a flush)."""
        began = time.thread_time()  # what a refresh takes from training is this thread's CPU, not waits on the sink
        try:
            if not (self.documents_in_sink and self._refresh_in_sink(full)):
                report = self._sync(full)
                self._note(report)
                self._refresh(report)
        except Exception as exc:  # never let one refresh end the thread
            self.report(f"refresh {type(exc).__name__}", f"could not refresh the PROV-JSON: {exc!r}")
        self._last = time.monotonic()
        self._cost = time.thread_time() - began

    def _refresh_in_sink(self, full: bool) -> bool:
        """Save the records, have the sink rewrite the document; False when the run must write it itself."""
        try:
            self._save_records(None)
        except OSError as exc:  # e.g. a full disk: the metric files still catch up
            self.report(f"save {type(exc).__name__}", f"could not save the run's records: {exc!r}")
        report = self._document(full)
        if report is None:  # the sink failed and was replaced by a consumer in this thread
            return False
        self._note(report)
        if not report.get("document"):  # the sink cannot write documents: the run writes them from now on
            self._out.documents = False
            return False
        if full:
            self._save_records(report)
        return True

    def _sync(self, full: bool = False) -> dict:
        try:
            return self._out.sync(timeout=60.0 if full else 30.0, full=full)
        except (SinkError, OSError, ValueError) as exc:
            self._fall_back(exc)
            return self._out.sync(full=full)

    def _document(self, full: bool) -> Optional[dict]:
        """The sink's reply to a document request; None when the sink failed (now replaced)."""
        try:
            return self._out.document(full, timeout=60.0 if full else 30.0)
        except (SinkError, OSError, ValueError) as exc:
            self._fall_back(exc)
            return None

    def _note(self, report: dict) -> None:
        self.last_report = report
        for message in report.get("errors", ()):
            self.report(message, message)

    def _fall_back(self, exc: BaseException) -> None:
        """The sink process failed: stop it, continue the metric files from the journal in this thread."""
        if not isinstance(self._out, ProcessOutput):
            raise exc
        self.report("sink", f"the metric sink process failed ({exc}); the run's own thread continues the "
                    "metric files from the journal")
        proc = self._out._proc
        self._out.abandon()
        try:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except (OSError, Exception):
            pass
        self._out = ThreadOutput(self._journal_dir, self._run_dir, self._separator, take_over=True)
