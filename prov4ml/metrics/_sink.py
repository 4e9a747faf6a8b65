"""Turns metric points into CSV text and appends it: in the writer thread, or in a child process.

The CSV formatting of floats is the most expensive step of recording a point
(a few hundred nanoseconds per float in CPython), and under the GIL a writer
thread doing it slows the training loop down by as much. So by default the
writer thread only packs points into arrays and pipes them to a child process
running this file, on another core; the writer falls back to formatting
in-thread when the child cannot start or dies.

This module imports nothing from prov4ml, so the child starts in milliseconds
(``python -I -S _sink.py``) and the parent imports it like any module.

Pipe protocol (little-endian), parent to child:
    b"O" <u32 id> <u32 len> <u32 len> path separator   open (create with header) a file
    b"D" <u32 id> <u32 n> <3n x f64: step, value, time, step, value, time, ...>
    b"S" <4-byte token>                                 reply the token once all before is written
    b"X"                                                close everything and exit (EOF does too)
The child ignores SIGINT and SIGTERM: a Ctrl-C or a launcher's SIGTERM to the
process group must not kill it before its parent has drained into it; it
always ends when the parent closes the pipe or dies.
"""

import struct
import sys
from array import array

COLUMNS = ("step", "value", "time")
_OPEN = struct.Struct("<III")
_DATA = struct.Struct("<II")


class CsvAppender:
    """Appends rows ``step,value,time`` to one CSV file, one ``write()`` per chunk."""

    def __init__(self, path, separator=","):
        self.path = path
        # Unbuffered: each chunk reaches the OS in one write() call, so a
        # killed process never leaves half a chunk in a user-space buffer.
        self._fh = open(path, "ab", buffering=0)
        if self._fh.tell() == 0:
            self._fh.write((separator.join(COLUMNS) + "\n").encode())
        self._row = f"%d{separator}%r{separator}%.3f\n"

    def append(self, points):
        """``points``: flat step, value, time, step, ... (steps may arrive as floats: %d prints them whole)."""
        # One format string for the whole chunk: the formatting loop runs in C.
        text = (self._row * (len(points) // 3)) % tuple(points)
        self._fh.write(text.encode())

    def close(self):
        self._fh.close()


def encode_open(file_id, path, separator):
    p, s = str(path).encode(), separator.encode()
    return b"O" + _OPEN.pack(file_id, len(p), len(s)) + p + s


def encode_data(file_id, points):
    # One float64 array: a single C loop over the flat list (steps are exact up to 2**53).
    return b"D" + _DATA.pack(file_id, len(points) // 3) + array("d", points).tobytes()


def serve(inp, out):
    """The child's loop: read frames from ``inp`` until EOF."""
    read = inp.read
    files = {}
    try:
        while True:
            tag = read(1)
            if not tag or tag == b"X":
                return
            if tag == b"D":
                file_id, n = _DATA.unpack(read(_DATA.size))
                points = array("d")
                points.frombytes(read(24 * n))
                files[file_id].append(points)
            elif tag == b"O":
                file_id, lp, ls = _OPEN.unpack(read(_OPEN.size))
                path, sep = read(lp).decode(), read(ls).decode()
                files[file_id] = CsvAppender(path, sep)
            elif tag == b"S":
                out.write(read(4))
                out.flush()
            else:
                raise ValueError(f"prov4ml metric sink: bad frame tag {tag!r}")
    finally:
        for fh in files.values():
            fh.close()


if __name__ == "__main__":
    import signal

    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)
