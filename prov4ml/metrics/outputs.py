"""Where the writer thread sends packed points: a child process (default) or its own thread."""

from __future__ import annotations

import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Dict, Optional, Sequence

from . import _sink

__all__ = ["ThreadOutput", "ProcessOutput", "open_output"]


class ThreadOutput:
    """Formats and appends in the calling (writer) thread."""

    def __init__(self) -> None:
        self._files: Dict[int, _sink.CsvAppender] = {}

    def open(self, file_id: int, path: Path, separator: str) -> None:
        self._files[file_id] = _sink.CsvAppender(path, separator)

    def append(self, file_id: int, points: Sequence[float]) -> None:
        self._files[file_id].append(points)

    def sync(self) -> None:
        """Everything appended is in the OS already (unbuffered files)."""

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()


_live: "weakref.WeakSet[ProcessOutput]" = weakref.WeakSet()


def _close_in_forked_child() -> None:
    # A process forked from the training process (a DataLoader worker, say)
    # must not hold the sink's pipe open: the sink ends when it sees EOF.
    for out in list(_live):
        out.abandon()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_forked_child)


class ProcessOutput:
    """Pipes packed points to ``python _sink.py`` running on another core."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", _sink.__file__],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
        )
        self._token = 0
        _live.add(self)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._proc.stdin.write(view)
            view = view[written:]

    def open(self, file_id: int, path: Path, separator: str) -> None:
        self._send(_sink.encode_open(file_id, path, separator))

    def append(self, file_id: int, points: Sequence[float]) -> None:
        """``points``: the flat step, value, time, ... list of one series."""
        self._send(_sink.encode_data(file_id, points))

    def sync(self) -> None:
        """Return once the child has written everything sent before."""
        self._token = (self._token + 1) % (1 << 32)
        token = self._token.to_bytes(4, "little")
        self._send(b"S" + token)
        got = b""
        while len(got) < 4:
            part = self._proc.stdout.read(4 - len(got))
            if not part:
                raise BrokenPipeError("the metric sink process ended")
            got += part
        if got != token:
            raise BrokenPipeError("the metric sink process answered out of turn")

    def close(self, timeout: Optional[float] = 60) -> None:
        try:
            self._send(b"X")
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._proc.stdout.close()
        _live.discard(self)

    def abandon(self) -> None:
        """Drop the pipes without a word (in a forked child)."""
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        _live.discard(self)


def open_output(use_process: bool):
    """A ProcessOutput when asked and possible, else a ThreadOutput."""
    if use_process:
        try:
            return ProcessOutput()
        except OSError:
            pass
    return ThreadOutput()
