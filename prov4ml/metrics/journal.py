"""The point journal: memory-mapped files that ``log_metric`` writes into.

A point is durable against a kill of the process (or of its whole process
group) the moment ``log_metric`` returns: its record is in a shared file
mapping, so it sits in the OS page cache, which outlives the process. The hot
path makes no system call: it claims a slot from a counter and packs a record
into the mapping.

This module imports only the standard library (and the C extension beside it,
where it is built), so the sink process (a bare ``python -I -S``) reads
journals with the same code the run writes them with.

Layout of ``<run_dir>/.prov4ml/rank<k>/``::

    series.jsonl      one JSON object per series, written before its first point:
                      {"sid", "name", "context", "kind", "unit", "file"}
    seg.000000 ...    segments of SEGMENT_SLOTS slots of 32 bytes each
    spare.segment     the next segment, reserved ahead: when the disk fills, one more
                      segment of points is still kept, and later points are counted
                      (``Journal.dropped``), never held in memory
    state.pickle      the run's records at the last refresh (for ``recover``)
    owner.json        pid and host of the recording process

A segment's first two slots (64 bytes) are its header: ``MAGIC``, the format
version, the slot size and the number of slots (``<8sIII``). Every later slot
``i`` holds one record ``<qddII``: step (int64), value (float64), time (Unix
seconds, float64), series id, and a commit word equal to ``i + 1``, packed in
that order. The file is zero-filled when it is created, so a slot whose commit
word is not ``i + 1`` was never written, or was being written when the
process died: its payload is ignored. Since the commit word is written last,
a record whose commit word is right has a complete payload. Series id
``VOID`` marks a slot that was claimed and given up (a rejected value).
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import struct
import sys
import threading
from time import monotonic as _monotonic
from typing import Any, Callable, Optional

_committed = None  # the C copy of the committed slots (see read_slots); the Python reads where it is not built
if sys.byteorder == "little" and os.environ.get("PROV4ML_PURE_PYTHON", "") in ("", "0"):
    try:
        if __package__:
            from ._hot import committed as _committed
        else:  # the sink process runs this folder's modules as top-level ones
            from _hot import committed as _committed  # type: ignore[no-redef]
    except ImportError:
        pass

__all__ = [
    "MAGIC", "SLOT", "SEGMENT_SLOTS", "FIRST_SLOT", "VOID", "RECORD", "Journal",
    "JournalReader", "SeriesLines", "read_series", "segment_path",
]

MAGIC = b"P4MLJRN1"
VERSION = 1
SLOT = 32
SEGMENT_SLOTS = 1 << 17  # 4 MiB per segment: bounds the mapped (resident) pages
FIRST_SLOT = 2  # slots 0 and 1 hold the header
VOID = 0xFFFFFFFF
SERIES_RESERVE = 1 << 16
SPARE = "spare.segment"  # the next segment, made ahead (never read, never mirrored)
HEADER = struct.Struct("<8sIII")
_ZEROS = bytes(1 << 18)  # compared with, never written to

RECORD = struct.Struct("<qddII")
pack_record = RECORD.pack_into


def segment_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"seg.{index:06d}")


class _Full:
    """Stands in for a segment when none could be made (disk full): every slot is out of range."""

    def __getitem__(self, key):  # pragma: no cover - never indexed: slots are >= SEGMENT_SLOTS
        raise IndexError(key)


class Journal:
    """The writing side, owned by one run.

    ``current`` is a ``(mapping, slot counter)`` pair swapped in one
    assignment, so a thread that read it packs into the mapping its slot came
    from. ``next(counter)`` is atomic under the GIL, so threads never share a
    slot. When a segment fills (or cannot be made), points go to ``append``,
    which opens the next segment (the spare made ahead) or counts the point as dropped.
    """

    def __init__(self, directory: str, cursor: Optional[type] = None,
                 on_segment: Optional[Callable[[Any], None]] = None) -> None:
        self.directory = directory
        # The slot counter of a segment: itertools.count, or the C hot path's Cursor (hotpath.py),
        # which the C log_metric claims from too; ``on_segment`` hears of each new one (None: no room).
        self._cursor = cursor
        self._on_segment = on_segment
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._segments: list = []  # (mapping, counter) open, newest last (older ones stay mapped briefly)
        self._next_index = 0
        self._series_fd = os.open(os.path.join(directory, "series.jsonl"), os.O_WRONLY | os.O_CREAT, 0o644)
        self._series_end = 0  # the series file is reserved ahead too: a full disk must not stop a new series
        self._series_room = 0
        self._series_waiting: list = []
        self._reserve_series(SERIES_RESERVE)
        self.dropped = 0  # points no segment could take (the disk stayed full past the spare)
        self._spare_ready = False
        self.error: str = ""
        self._retry_at = 0.0
        self.current = (_Full(), itertools.repeat(SEGMENT_SLOTS))
        self._open_segment(raise_errors=True)

    def _use(self, mm: Any, counter: Any) -> None:
        self.current = (mm, counter)
        if self._on_segment is not None:
            self._on_segment(counter if self._cursor is not None and isinstance(counter, self._cursor) else None)

    # -- segments ---------------------------------------------------------
    def _open_segment(self, raise_errors: bool = False) -> bool:
        path = segment_path(self.directory, self._next_index)
        try:
            if self._spare_ready:  # the reserved spare becomes the segment: a rename needs no new blocks
                os.rename(os.path.join(self.directory, SPARE), path)
                self._spare_ready = False
            else:
                _make_segment_file(path + ".new")
                os.rename(path + ".new", path)  # readers only ever see a segment with its header
            fd = os.open(path, os.O_RDWR)
            try:
                mm = mmap.mmap(fd, SEGMENT_SLOTS * SLOT)
            finally:
                os.close(fd)
        except OSError as exc:
            _unlink(path + ".new")
            if raise_errors:
                raise
            self.error = (f"the metric journal could not grow ({exc.strerror or exc}); points logged until it can "
                          "are not kept, and are counted")
            self._use(_Full(), itertools.repeat(SEGMENT_SLOTS))
            return False
        _populate(mm)
        self._next_index += 1
        counter = itertools.count(FIRST_SLOT) if self._cursor is None else self._cursor(mm, FIRST_SLOT, SEGMENT_SLOTS)
        self._segments.append((mm, counter))
        for old in self._segments[:-2]:  # a thread may still pack into the previous one
            _close(*old)
        del self._segments[:-2]
        self._use(mm, counter)
        self.error = ""
        self._reserve_spare()
        return True

    def _reserve_spare(self) -> None:
        """Make the next segment ahead, so a disk that fills finds one segment of room already reserved."""
        spare = os.path.join(self.directory, SPARE)
        try:
            _make_segment_file(spare)
            self._spare_ready = True
        except OSError:
            _unlink(spare)  # no spare: the next roll tries to make its segment then

    def append(self, sid: int, step: int, value: float, time: float) -> None:
        """The slow path: a full segment; a point that no segment can take is counted in ``dropped``."""
        while True:
            mm, slots = self.current
            i = next(slots)
            if i < SEGMENT_SLOTS:
                pack_record(mm, i * SLOT, step, value, time, sid, i + 1)
                return
            with self._lock:
                if self.current[0] is mm and not self._roll_now():
                    self.dropped += 1
                    return

    def _roll_now(self) -> bool:
        """Roll, but while the disk is full try at most once a second (a failed fallocate is a syscall)."""
        if isinstance(self.current[0], _Full) and _monotonic() < self._retry_at:
            return False
        if self._open_segment():
            return True
        self._retry_at = _monotonic() + 1.0
        return False

    def retry(self) -> None:
        """Try again to write the series that wait in memory, and to make room (the refresher calls it)."""
        if self._series_waiting:
            with self._lock:
                self._write_series()
        if isinstance(self.current[0], _Full):
            with self._lock:
                if isinstance(self.current[0], _Full):
                    self._open_segment()

    def void(self, mm, i: int) -> None:
        """Give up a claimed slot (its value was rejected), so readers do not wait for it."""
        if i < SEGMENT_SLOTS:
            pack_record(mm, i * SLOT, 0, 0.0, 0.0, VOID, i + 1)

    def mark(self) -> tuple:
        """A position: every point journaled after this call comes after it."""
        mm, slots = self.current
        i = next(slots)
        self.void(mm, i)
        return (self._next_index - 1, i)

    # -- series -----------------------------------------------------------
    def add_series(self, meta: dict) -> None:
        """Write a series' description; done before its first point is packed.

        The file's space is reserved ahead (its unused tail is zeros, which
        readers ignore); when no more can be reserved the line waits in
        memory, and readers hold the series' points until it is written.
        """
        line = (json.dumps(meta, ensure_ascii=True) + "\n").encode()
        with self._lock:
            self._series_waiting.append(line)
            self._write_series()

    def _reserve_series(self, size: int) -> bool:
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(self._series_fd, 0, size)
            self._series_room = size
            return True
        except OSError:
            return False

    def _write_series(self) -> None:
        while self._series_waiting:
            line = self._series_waiting[0]
            if self._series_end + len(line) > self._series_room and not self._reserve_series(
                max(2 * self._series_room, self._series_end + len(line) + SERIES_RESERVE)
            ):
                self.error = "the metric journal's series file could not grow (disk full); new series wait in memory"
                return
            try:
                os.pwrite(self._series_fd, line, self._series_end)
            except OSError as exc:
                self.error = f"could not write the journal's series file ({exc.strerror or exc}); new series wait in memory"
                return
            self._series_end += len(line)
            self._series_waiting.pop(0)

    def sync(self) -> None:
        """Push the mapped pages to the disk (power-loss durability; off the hot path)."""
        for mm, _ in list(self._segments):
            try:
                mm.flush()
            except (ValueError, OSError):
                pass
        os.fsync(self._series_fd)

    def close(self) -> None:
        self._use(_Full(), itertools.repeat(SEGMENT_SLOTS))
        for mm, counter in self._segments:
            _close(mm, counter)
        self._segments.clear()
        os.close(self._series_fd)


def _make_segment_file(path: str) -> None:
    """A segment's file at ``path``: its blocks reserved and its header written, its slots zero."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        size = SEGMENT_SLOTS * SLOT
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)  # reserve the blocks: a full disk must not SIGBUS the loop
        else:  # pragma: no cover
            os.ftruncate(fd, size)
        os.pwrite(fd, HEADER.pack(MAGIC, VERSION, SLOT, SEGMENT_SLOTS), 0)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _close(mm: mmap.mmap, counter: Any) -> None:
    release = getattr(counter, "release", None)  # a C Cursor holds the mapping's buffer
    if release is not None:
        release()
    mm.close()


#: Linux 5.14+: map a new segment's pages writable at once (contents unchanged), so a log call
#: does not take a page fault every 128 slots (~5-40 us each in a virtual machine)
_POPULATE = getattr(mmap, "MADV_POPULATE_WRITE", 23) if sys.platform.startswith("linux") else None


def _populate(mm: mmap.mmap) -> None:
    if _POPULATE is not None:
        try:
            mm.madvise(_POPULATE)
        except (OSError, ValueError):  # an older kernel: the pages fault in as they are used
            pass


def read_series(directory: str) -> dict:
    """sid -> series description; a last line cut short by a kill is ignored."""
    return SeriesLines(directory).read_new()


_LINES_READ = 1 << 18  # series.jsonl is read in parts of this size


class SeriesLines:
    """``series.jsonl`` read on from where the last read stopped: a run that adds 100,000 series as it goes is
    read once, not once per block that brings a new series."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, "series.jsonl")
        self.offset = 0

    def read_new(self) -> dict:
        """sid -> description of the whole lines written since the last call."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                parts = []
                while True:  # up to the reserved tail, which is zeros (megabytes of them with 100,000 series)
                    part = fh.read(_LINES_READ)
                    parts.append(part)
                    if len(part) < _LINES_READ or b"\0" in part:
                        break
                data = b"".join(parts)
        except FileNotFoundError:
            return {}
        hole = data.find(b"\0")  # the reserved tail is zeros: what follows the first one is not written yet
        end = data.rfind(b"\n", 0, len(data) if hole < 0 else hole) + 1  # whole lines only
        lines = data[:end].split(b"\n")[:-1]
        try:  # one parse for all (100,000 lines: 0.15 s, not 0.9 s)
            metas = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:  # a line that is not JSON is skipped, the others kept (as is one not of a series)
            metas = [meta for meta in map(_json_or_none, lines) if meta is not None]
        self.offset += end
        return {meta["sid"]: meta for meta in metas if isinstance(meta, dict) and isinstance(meta.get("sid"), int)}


def _json_or_none(line: bytes) -> Optional[dict]:
    try:
        return json.loads(line)
    except ValueError:
        return None


_COMMIT = struct.Struct("<I")


def _committed_end(mm, start: int, end: int) -> int:
    """A slot bound past the committed run that begins at ``start`` (galloping over commit words).

    Slots after the first uncommitted one may be committed too (a thread
    between claim and pack); the bound covers one more probe so they are seen.
    """
    step = 1
    last = start
    while last < end:
        if _COMMIT.unpack_from(mm, last * SLOT + 28)[0] != last + 1:
            return min(end, last + step + 1)
        last = start + step
        step *= 2
    return end


def _whole_prefix(commits: list, first: int) -> int:
    """How many slots from ``first`` on are committed, in a row (binary search: they fill in order)."""
    lo, hi = 0, len(commits)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if commits[mid - 1] == first + mid:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _all_committed(raw: bytes, n: int) -> bool:
    """Whether the first ``n`` slots of ``raw`` are all committed.

    A slot's commit word is 0 until it is committed (segments are zero-filled)
    and its own number after, below 2**24: a slot is committed iff one of the
    word's three low bytes is not 0. Three strided copies and an OR of big
    integers check 65,536 slots in a fraction of a millisecond.
    """
    words = 0
    for byte in range(28, 31):
        words |= int.from_bytes(raw[byte: n * SLOT: SLOT], "little")
    return b"\0" not in words.to_bytes(n, "little")


def _stable(mm, start: int, end: int) -> bytes:
    """The bytes of ``mm[start:end]`` that two reads agree on (a prefix of whole slots).

    A copy may load a record's commit word before its payload (``memcpy``
    picks its own order, and ``pack_into`` zero-fills the slot first), so a
    record being written during the copy can look committed with a zero
    payload. Records never change once written, so a second read that agrees
    with the first proves them whole; the first slot that differs, and all
    after it, are read again at the next poll.
    """
    first = mm[start:end]
    second = mm[start:end]
    if first == second:
        return first
    lo, hi = 0, len(first) // SLOT  # the longest prefix of slots that agree
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if first[: mid * SLOT] == second[: mid * SLOT]:
            lo = mid
        else:
            hi = mid - 1
    return second[: lo * SLOT]


def _committed_py(mm, i: int, end: int, final: bool) -> bytes:
    """The slots from ``i`` (before ``end``) that are committed, up to the first that is not (``_hot.committed``)."""
    if not final:
        end = _committed_end(mm, i, end)
    raw = _stable(mm, i * SLOT, end * SLOT)
    n = len(raw) // SLOT
    if n:
        commits = memoryview(raw).cast("I")[7::8]
        if commits[-1] != i + n:  # the last slots are not committed yet: only the whole prefix
            n = _whole_prefix(commits, i)
        if n and _all_committed(raw, n):
            return raw[: n * SLOT]
    return b""


class JournalReader:
    """Reads the records of a journal in order, from any process.

    ``read(final)`` returns the records committed since the last call. While
    the writer lives, a slot not yet committed stops the reading (a thread
    may be about to fill it) unless later slots have been committed for more
    than ``stale`` seconds; with ``final=True`` (the writer is gone) every
    uncommitted slot is skipped and the reading goes to the end.
    """

    def __init__(self, directory: str, start: tuple = (0, FIRST_SLOT), stale: float = 5.0) -> None:
        self.directory = directory
        self.segment, self.slot = start
        self.stale = stale
        self._mm = None
        self._blocked = None  # (segment, slot, since)
        self._buffer: Optional[bytearray] = None  # for _written_end

    def _map(self):
        if self._mm is None:
            path = segment_path(self.directory, self.segment)
            try:
                with open(path, "rb") as fh:
                    self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (FileNotFoundError, ValueError):
                return None
            magic, version, slot, slots = HEADER.unpack_from(self._mm, 0)
            if magic != MAGIC or version != VERSION or slot != SLOT:
                raise ValueError(f"{path} is not a prov4ml journal segment of version {VERSION}")
        return self._mm

    def _next_segment_exists(self) -> bool:
        return os.path.exists(segment_path(self.directory, self.segment + 1))

    def read(self, final: bool = False, now: float = 0.0, limit: int = 1 << 20) -> list:
        """Committed records as ``(sid, step, value, time)`` tuples, in journal order."""
        out: list = []
        while len(out) < limit:
            mm = self._map()
            if mm is None:
                return out
            i = self.slot
            bound = end = min(SEGMENT_SLOTS, i + limit - len(out))
            # copy what was written, not the empty rest of the segment
            end = self._written_end(i, end) if final else _committed_end(mm, i, end)
            raw = _stable(mm, i * SLOT, end * SLOT)
            stopped = len(raw) < (end - i) * SLOT
            end = i + len(raw) // SLOT
            for step, value, time, sid, commit in RECORD.iter_unpack(raw):
                if commit != i + 1 and not (final or self._skip(i, mm, now)):
                    stopped = True
                    break
                if commit == i + 1 and sid != VOID:
                    out.append((sid, step, value, time))
                i += 1
            if final and not stopped:
                i = end = bound  # the zeros after the last slot written: never written, passed over
            self.slot = i
            if stopped or i < end:
                return out
            if i < SEGMENT_SLOTS:
                continue
            if not self._roll():
                return out
        return out

    def _roll(self) -> bool:
        """Go on to the next segment once this one is read to its end (False: there is none yet)."""
        if not self._next_segment_exists():
            return False
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        self.segment += 1
        self.slot = FIRST_SLOT
        return True

    def read_slots(self, final: bool = False, now: float = 0.0, limit: int = 1 << 16) -> bytes:
        """The records of ``read`` as raw slots (``RECORD``; commit words not to be relied on, void slots may be there).

        The committed slots from the reading position on are copied from the
        mapping as they are: by ``_hot.committed`` in one pass (each commit
        word read before its record), else by two reads that agree; holes
        and a segment's end go record by record through ``read``.
        """
        if self.slot >= SEGMENT_SLOTS:
            self._roll()
        mm = self._map()
        if mm is not None and self.slot < SEGMENT_SLOTS:
            i = self.slot
            end = min(SEGMENT_SLOTS, i + limit)
            raw = _committed(mm, i, end) if _committed is not None else _committed_py(mm, i, end, final)
            if raw:
                self.slot = i + len(raw) // SLOT
                return raw
        records = self.read(final, now, limit)  # holes, a segment's end: record by record
        return b"".join(RECORD.pack(step, value, time, sid, 0) for sid, step, value, time in records)

    def _written_end(self, start: int, end: int) -> int:
        """A slot bound past the last slot from ``start`` to ``end`` with a byte written (``start`` if none).

        Read with ``pread`` into one reused buffer: reading the empty rest of a segment through the mapping
        would fault each of its pages into this process (~1,000 faults for a segment barely used).
        """
        if self._buffer is None:
            self._buffer = bytearray(len(_ZEROS))
        view = memoryview(self._buffer)
        offset, stop, last = start * SLOT, end * SLOT, start * SLOT
        try:
            with open(segment_path(self.directory, self.segment), "rb") as fh:
                while offset < stop:
                    n = os.preadv(fh.fileno(), [view[:min(len(view), stop - offset)]], offset)
                    if n <= 0:
                        return end
                    if not _ZEROS.startswith(view[:n]):
                        last = offset + len(bytes(view[:n]).rstrip(b"\0"))
                    offset += n
        except OSError:
            return end
        return min(end, -(-last // SLOT))

    def _skip(self, i: int, mm, now: float) -> bool:
        """Skip slot ``i`` if a later slot is committed and ``i`` has stayed empty ``stale`` seconds."""
        if i + 1 >= SEGMENT_SLOTS:
            return self._next_segment_exists()
        later = RECORD.unpack_from(mm, (i + 1) * SLOT)
        if later[4] != i + 2:
            self._blocked = None
            return False
        if self._blocked is None or self._blocked[:2] != (self.segment, i):
            self._blocked = (self.segment, i, now)
            return False
        return now - self._blocked[2] >= self.stale

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None
