"""The record journal: every record a run makes, appended before its call returns.

A record (a parameter, an artifact, a model version, a dataset, a context,
an epoch, a final value, an execution command, an error) is rare next to a
metric point, so each takes one ``pwrite`` of a frame into ``records.log``
beside the point journal. The write lands in the page cache, which outlives
the process: once the call has returned, a SIGKILL, the OOM killer or a
crash of the interpreter cannot take the record away, and ``recover``
rebuilds the run's records by replaying the frames.

A frame is ``<II`` (payload length, CRC-32 of the payload) followed by the
payload, a pickle of ``(position, kind, data)``: ``position`` is the point
journal's position when the record was made (so records and points keep one
order), ``kind`` names the record, ``data`` is the record itself. The file's
space is reserved ahead (zeros); a reader stops at the first frame that is
zero, cut short or fails its checksum: that frame's call had not returned. A
whole frame that cannot be unpickled here (a class this process lacks) is
skipped and counted, and reading goes on.

This module imports only the standard library.
"""

from __future__ import annotations

import os
import pickle
import struct
import threading
import zlib
from typing import Any, Iterator, List, Tuple

__all__ = ["RecordJournal", "read_records", "RECORDS_FILE"]

RECORDS_FILE = "records.log"
FRAME = struct.Struct("<II")
RESERVE = 1 << 20  # bytes reserved ahead: a full disk must not stop the next records


class RecordJournal:
    """The writing side: ``append(kind, data)`` returns once the frame is in the file."""

    def __init__(self, directory: str, position: Any = None) -> None:
        self.path = os.path.join(directory, RECORDS_FILE)
        self._position = position  # () -> the point journal's position, or None
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self._end = _frames_end(self._fd)  # appending to a journal that a killed run left
        self._room = os.fstat(self._fd).st_size
        self.failed = 0  # records that could not be written (the disk stayed full past the reserve)
        self.error = ""
        self._reserve(self._end + RESERVE)

    def _reserve(self, size: int) -> bool:
        if size <= self._room:
            return True
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(self._fd, 0, size)
            else:  # pragma: no cover
                os.ftruncate(self._fd, size)
        except OSError as exc:
            self.error = f"the record journal could not grow ({exc.strerror or exc})"
            return False
        self._room = size
        return True

    def append(self, kind: str, data: Any) -> bool:
        """Write one record; False (and ``failed`` counted) when no room could be made for it."""
        position = self._position() if self._position is not None else None
        try:
            payload = pickle.dumps((position, kind, data), protocol=4)
        except Exception as exc:  # a value no pickle holds: the record stays in memory, counted, the call goes on
            with self._lock:
                self.error = f"could not journal a {kind} record ({exc!r})"
                self.failed += 1
            return False
        frame = FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._fd is None:
                raise ValueError("the record journal is closed")
            need = self._end + len(frame)
            if need > self._room and not self._reserve(max(need + RESERVE, 2 * self._room)):
                self.failed += 1
                return False
            try:
                _write_whole(self._fd, frame, self._end)
            except OSError as exc:
                self.error = f"could not write the record journal ({exc.strerror or exc})"
                self.failed += 1
                return False
            self._end += len(frame)
        return True

    def sync(self) -> None:
        """Push the frames to the disk (power-loss durability; a kill needs nothing)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)


def _write_whole(fd: int, frame: bytes, offset: int) -> None:
    """All of ``frame`` at ``offset``, or OSError (the end does not move: the next frame overwrites the part)."""
    view = memoryview(frame)
    while view:
        n = os.pwrite(fd, view, offset + len(frame) - len(view))
        if n <= 0:
            raise OSError("short write")
        view = view[n:]


def _frames(data: bytes) -> Iterator[Tuple[int, Tuple[Any, str, Any]]]:
    """(end offset, record) of every whole frame, in order, up to the first that is not whole."""
    offset = 0
    while offset + FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, offset)
        start, end = offset + FRAME.size, offset + FRAME.size + length
        if length == 0 or end > len(data):
            return
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            return
        try:
            record = pickle.loads(payload)
        except Exception as exc:  # whole (its checksum holds) but unreadable here: skipped and counted, not the end
            record = (None, "unreadable", (repr(exc), None, None))
        yield end, record
        offset = end


def _frames_end(fd: int) -> int:
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    end = 0
    for end, _ in _frames(data):
        pass
    return end


def read_records(directory: str) -> List[Tuple[Any, str, Any]]:
    """Every whole record of the journal in ``directory``: ``(position, kind, data)``, in order."""
    try:
        with open(os.path.join(directory, RECORDS_FILE), "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    return [record for _, record in _frames(data)]

