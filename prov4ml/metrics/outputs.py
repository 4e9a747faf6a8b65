"""Where the journal is consumed: a child process (default) or the run's refresher thread."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import weakref
from typing import Optional

from . import _sink

__all__ = ["ThreadOutput", "ProcessOutput", "open_output", "SinkError"]


class SinkError(OSError):
    """The sink process is gone or did not answer in time."""


class ThreadOutput:
    """Runs the consumer in the calling (refresher) thread."""

    def __init__(self, journal_dir: str, run_dir: str, separator: str, take_over: bool = False) -> None:
        # take_over: the sink process died; its files are kept and continued, never cut back
        self._consumer = _sink.Consumer(journal_dir, run_dir, separator, resume=take_over)

    def sync(self, timeout: Optional[float] = None, full: bool = False) -> dict:
        self._consumer.poll(budget=_sink.FLUSH_BUDGET if full else _sink.BUDGET)
        return self._consumer.report()

    def close(self, timeout: Optional[float] = None) -> dict:
        self._consumer.poll(final=True)
        self._consumer.fsync()
        report = self._consumer.report()
        self._consumer.close()
        return report

    def abandon(self) -> None:
        self._consumer.close()


_live: "weakref.WeakSet[ProcessOutput]" = weakref.WeakSet()


def _close_in_forked_child() -> None:
    # A process forked from the training process (a DataLoader worker, say)
    # must not hold the sink's pipe open: the sink ends when it sees EOF.
    for out in list(_live):
        out.abandon()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_forked_child)


class ProcessOutput:
    """Asks ``python _sink.py`` (another core) to consume the journal, and reads its reports.

    With ``documents="module:function"`` (the run's document writer) the child also
    keeps the run's PROV-JSON up to date (see ``_sink.Documents``); it is given this
    process's import path for that.
    """

    def __init__(self, journal_dir: str, run_dir: str, separator: str, documents: Optional[str] = None) -> None:
        command = [sys.executable, "-I", "-S", _sink.__file__, journal_dir, run_dir, separator]
        if documents:  # the package's own folder first: the child must import this very prov4ml
            package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(_sink.__file__))))
            path = [package_root] + [p for p in sys.path if p and os.path.isdir(p)]
            command.append(json.dumps({"path": path, "writer": documents}))
        self.documents = documents is not None
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
            start_new_session=False,
        )
        self._token = 0
        self._buf = b""
        _live.add(self)
        try:  # recover waits for a sink that outlived its run before it rebuilds the files
            with open(os.path.join(journal_dir, "sink.pid"), "w") as fh:
                fh.write(str(self._proc.pid))
        except OSError:
            pass

    def _send(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[self._proc.stdin.write(view):]
        except (OSError, ValueError) as exc:
            raise SinkError(f"the metric sink process is gone ({exc})") from None

    def _line(self, timeout: Optional[float]) -> bytes:
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise SinkError(f"the metric sink process did not answer within {timeout} s")
            part = os.read(fd, 1 << 16)
            if not part:
                raise SinkError("the metric sink process ended")
            self._buf += part
        line, self._buf = self._buf.split(b"\n", 1)
        return line

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
        self._send(tag + token)
        line = self._line(timeout)
        if line[:8] != token:
            raise SinkError("the metric sink process answered out of turn")
        return json.loads(line[8:])

    def close(self, timeout: Optional[float] = 60.0) -> dict:
        """Read the journal to the end, close the files; the final report."""
        try:
            self._send(b"X")
            report = json.loads(self._line(timeout))
        finally:
            self._reap(timeout)
        return report

    def _reap(self, timeout: Optional[float]) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        _live.discard(self)

    def abandon(self) -> None:
        """Let go of the child: it reads the journal to the end and exits on its own."""
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        _live.discard(self)


def open_output(use_process: bool, journal_dir: str, run_dir: str, separator: str, documents: Optional[str] = None):
    """A ProcessOutput when asked and possible, else a ThreadOutput."""
    if use_process:
        try:
            return ProcessOutput(journal_dir, run_dir, separator, documents)
        except OSError:
            pass
    return ThreadOutput(journal_dir, run_dir, separator)
