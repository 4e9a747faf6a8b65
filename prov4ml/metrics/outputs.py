"""Where the journal is consumed: a child process (default) or the run's refresher thread."""

from __future__ import annotations

import atexit
import json
import os
import pickle
import select
import subprocess
import sys
import threading
import weakref
from typing import Optional

from . import _sink

__all__ = ["ThreadOutput", "ProcessOutput", "SinkProcess", "open_output", "SinkError"]


class SinkError(OSError):
    """The sink process is gone or did not answer in time."""


class ThreadOutput:
    """Runs the consumer in the calling (refresher) thread."""

    def __init__(self, journal_dir: str, run_dir: str, separator: str, take_over: bool = False) -> None:
        # take_over: the sink process died; its files are kept and continued, never cut back
        self._consumer = _sink.Consumer(journal_dir, run_dir, separator, resume=take_over)

    def sync(self, timeout: Optional[float] = None, full: bool = False) -> dict:
        self._consumer.poll(budget=_sink.FLUSH_BUDGET if full else _sink.BUDGET)
        if full:
            self._consumer.write_backlog()
        return self._consumer.report()

    def closing(self) -> None:
        """The run is ending (nothing to stop here: documents are the refresher's)."""

    def close(self, timeout: Optional[float] = None) -> dict:
        self._consumer.poll(final=True)
        self._consumer.fsync()
        report = self._consumer.report()
        self._consumer.close()
        return report

    def confirm(self, timeout: Optional[float] = None) -> dict:
        """The files were written by close() itself: its report was theirs."""
        return {"errors": [], "backlog": 0, "as_planned": True}

    def abandon(self) -> None:
        self._consumer.close()


class SinkProcess:
    """``python -I -S _sink.py``: started once per training process, it serves the process's runs one after another."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", _sink.__file__],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
            start_new_session=False,
        )
        self.buf = b""

    @property
    def usable(self) -> bool:
        """True while it runs and belongs to this process (a forked child starts its own)."""
        return self.owner == os.getpid() and self.proc.poll() is None and not self.proc.stdin.closed

    def send(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[self.proc.stdin.write(view):]
        except (OSError, ValueError) as exc:
            raise SinkError(f"the metric sink process is gone ({exc})") from None

    def reply(self, timeout: Optional[float], token: bytes = b"") -> dict:
        """The child's next reply to the request sent with ``token``: the token, the length in 16 hex digits, then
        the report, pickled."""
        head = self._read(len(token) + 16, timeout)
        if head[:len(token)] != token:
            raise SinkError("the metric sink process answered out of turn")
        return pickle.loads(self._read(int(head[len(token):], 16), timeout))

    def _read(self, n: int, timeout: Optional[float]) -> bytes:
        fd = self.proc.stdout.fileno()
        parts, have = [self.buf], len(self.buf)
        while have < n:  # a report of 100,000 series is megabytes: read in big parts, joined once
            ready, _, _ = select.select([fd], [], [], timeout)
            part = os.read(fd, max(1 << 20, n - have)) if ready else None
            if not part:
                self.buf = b"".join(parts)
                raise SinkError("the metric sink process ended" if ready else
                                f"the metric sink process did not answer within {timeout} s")
            parts.append(part)
            have += len(part)
        data = b"".join(parts)
        self.buf = data[n:]
        return data[:n]

    def let_go(self) -> None:
        """Close the pipes: the child finishes the run it serves (if any) from the journal and exits."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def stop(self, timeout: Optional[float]) -> None:
        """Let go of the child and wait until it has exited (killed past ``timeout``)."""
        self.let_go()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


_idle: Optional[SinkProcess] = None  # the sink of the run that ended last, waiting for the next run
_idle_lock = threading.Lock()
_live: "weakref.WeakSet[ProcessOutput]" = weakref.WeakSet()


def _take_sink() -> SinkProcess:
    """The idle sink if it is still usable, else a new one."""
    global _idle
    with _idle_lock:
        sink, _idle = _idle, None
    if sink is not None and sink.usable:
        return sink
    return SinkProcess()


def _give_back(sink: SinkProcess) -> None:
    """A run is done with ``sink``: the next run of this process reuses it."""
    global _idle
    with _idle_lock:
        old, _idle = _idle, sink
    if old is not None:
        old.stop(5)


@atexit.register
def _stop_idle_sink() -> None:
    # Runs after the run's own atexit (registered later, at the first start_run): that run is ended by then.
    global _idle
    sink, _idle = _idle, None
    if sink is not None and sink.owner == os.getpid():
        sink.stop(5)


def _close_in_forked_child() -> None:
    # A process forked from the training process (a DataLoader worker, say)
    # must not hold the sink's pipe open: the sink ends when it sees EOF.
    global _idle, _idle_lock
    _idle_lock = threading.Lock()  # another thread may have held it at the fork
    for out in list(_live):
        out.abandon()
    if _idle is not None:
        _idle.let_go()
        _idle = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_forked_child)


class ProcessOutput:
    """One run served by the sink process (another core): it consumes the journal, and this reads its reports.

    With ``documents="module:function"`` (the run's document writer) the child also
    keeps the run's PROV-JSON up to date (see ``_sink.Documents``); it is given this
    process's import path for that. ``defer``: how long a live document may wait for the
    files of many new series (the run's refresh intervals leave that much to spare).
    """

    def __init__(self, journal_dir: str, run_dir: str, separator: str, documents: Optional[str] = None,
                 defer: float = 0.0) -> None:
        spec = {"journal_dir": journal_dir, "run_dir": run_dir, "separator": separator, "documents": None}
        if documents:  # the package's own folder first: the child must import this very prov4ml
            package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(_sink.__file__))))
            path = [package_root] + [p for p in sys.path if p and os.path.isdir(p)]
            spec["documents"] = {"path": path, "writer": documents, "defer": defer}
        self.documents = documents is not None
        request = json.dumps(spec).encode()
        request = b"R%08x" % len(request) + request
        self._sink = _take_sink()
        try:
            self._sink.send(request)
        except SinkError:  # the idle sink died since its last run: a new one
            self._sink = SinkProcess()
            self._sink.send(request)
        self._proc = self._sink.proc
        self._token = 0
        _live.add(self)
        try:  # recover waits for the sink while it works on this run (the sink removes the file when done)
            with open(os.path.join(journal_dir, _sink.SINK_PID), "w") as fh:
                fh.write(str(self._proc.pid))
        except OSError:
            pass

    def sync(self, timeout: Optional[float] = 30.0, full: bool = False) -> dict:
        """The sink's report after a poll; ``full`` (a flush): once it has consumed everything committed before this call."""
        return self._ask(b"F" if full else b"S", timeout)

    def document(self, full: bool = False, timeout: Optional[float] = 30.0) -> dict:
        """Catch up and rewrite the PROV-JSON if anything changed; the whole report when ``full``.

        ``report["document"]`` is False when the child cannot write documents.
        """
        return self._ask(b"F" if full else b"D", timeout)

    def _ask(self, tag: bytes, timeout: Optional[float]) -> dict:
        self._token = (self._token + 1) % (1 << 32)
        token = b"%08x" % self._token  # text: a token byte must never be a newline
        self._sink.send(tag + token)
        return self._sink.reply(timeout, token)

    def closing(self) -> None:
        """The run is ending: the sink drops a live document it is writing (end_run writes the final one)."""
        try:
            self._sink.send(b"C")
        except SinkError:
            pass  # close() finds the sink gone and falls back

    def close(self, timeout: Optional[float] = 60.0) -> dict:
        """Have the sink read the journal to the end: the report its files will have once written (it writes
        them meanwhile); :meth:`confirm` then says they were."""
        _live.discard(self)
        try:
            self._sink.send(b"X")
            return self._sink.reply(timeout)
        except BaseException:
            self._sink.stop(timeout)
            raise

    def confirm(self, timeout: Optional[float] = 60.0) -> dict:
        """Wait until the files are written and closed: ``as_planned`` (close()'s report is theirs), or the
        report of what they hold. The sink then waits for the next run."""
        try:
            final = self._sink.reply(timeout)
        except BaseException:
            self._sink.stop(timeout)
            raise
        _give_back(self._sink)
        return final

    def abandon(self) -> None:
        """Let go of the child: it reads the journal to the end and exits on its own."""
        self._sink.let_go()
        _live.discard(self)


def open_output(use_process: bool, journal_dir: str, run_dir: str, separator: str, documents: Optional[str] = None,
                defer: float = 0.0):
    """A ProcessOutput when asked and possible, else a ThreadOutput."""
    if use_process:
        try:
            return ProcessOutput(journal_dir, run_dir, separator, documents, defer)
        except OSError:
            pass
    return ThreadOutput(journal_dir, run_dir, separator)
