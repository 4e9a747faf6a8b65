"""Turns the point journal into the metric files users read, and summarises every series.

The :class:`Consumer` reads committed records from a run's journal (see
``journal.py``), appends them as CSV rows to each series' file and keeps each
series' summary (count, min, max, last, ...) of the rows that are on disk.
By default it runs in a child process (``python -I -S _sink.py``), on another
core, so that formatting floats never holds the training process's GIL; the
run falls back to running it in its refresher thread when the child cannot
start or dies. The child is started once per training process and serves its
runs one after another (a sweep of short trials starts one child, not one per
trial).

The child needs nothing from the training process to read points: it maps
the journal files. The pipe only carries requests, parent to child (each
reply is the request's token, its length in 16 hex digits and a pickled
report)::

    b"R" <8 hex digits: n> <n bytes of JSON>
                          open a run: {"journal_dir", "run_dir", "separator", "documents"}; no reply
    b"S" <8-char token>   catch up, then reply the token and one JSON report line
    b"D" <8-char token>   catch up, rewrite the PROV-JSON if anything changed, reply a short report
    b"F" <8-char token>   a flush: catch up with everything committed, rewrite the document, reply the whole report
    b"C"                  the run is ending: no more live documents (one being written is dropped); no reply
    b"X"                  read everything to the end, reply the report the files will have; write them, close
                          them, reply ``as_planned`` (and the report when not); then wait for the next run

In document mode (``documents``: the training process's import path and the
``module:function`` that writes a document, given by the run) the child also
writes the run's PROV-JSON during the run, from the records the training
process saves in ``state.pickle`` and its own summaries of the rows on disk
(``prov4ml.provenance.live``); the training process then does no periodic
document work at all.

On EOF (the parent died) the child reads the open run's journal to the end,
closes its files and exits, so a killed training process still gets complete
metric files. The parent writes the child's pid to the run's ``sink.pid``
when it opens a run; the child removes that file once it is done with the run
(after ``X``, or the files finished after EOF), so ``recover`` waits for a
child only while it still works on that run. The child ignores SIGINT and
SIGTERM: a Ctrl-C or a launcher's SIGTERM to the process group must not stop
it before its parent has finished.

A row is written whole or not at all: a short or failed ``write()`` (a full
disk) is cut back to the last whole row, the rows are kept and written again
at the next poll, and the summary counts only rows on disk.

Rows are made in bulk: the journal's slots are copied in blocks and
``_hot.rows`` (C) groups them by series, formats each row exactly as
``"%d,%r,%.3f\n"`` would (the shortest repr of each value, by Ryu, see
``ryu.h``) and summarises each group; a file then gets one write of its rows
of the poll (of a block, once a block holds ~1 MiB a file). With more series
than open files, the rows of a closed file wait up to ``CLOSED_FILE_WAIT``
for more, so each file is reopened rarely. With more than ``FEW_SERIES``
series (a run logging 100,000 series in turn), the journal is read every
``SLOW_POLL`` in blocks that span segments, so that a read brings a few points
of each series (a chunk of one point costs as much as a chunk of many), and a
file's rows wait up to ``ROW_WAIT`` unless they reach ``WRITE_SOON`` bytes;
a new series' file is made at once, between reads. A flush and the run's end
write everything. Where the C extension is not built, ``_rows_py`` does the same in
Python, ~10x slower.
"""

import collections
import errno
import json
import math
import os
import pickle
import select
import struct
import sys
import time

if __package__:
    from .journal import RECORD, SLOT, VOID, JournalReader, SeriesLines
else:  # run as a script by the sink process (-I leaves the script's folder off sys.path)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from journal import RECORD, SLOT, VOID, JournalReader, SeriesLines  # type: ignore[no-redef]

COLUMNS = ("step", "value", "time")
POLL = 0.1  # seconds between journal polls in the sink process
BUDGET = 0.1  # seconds of work per poll at most while the run lives: a request never waits longer
FLUSH_BUDGET = 30.0  # a flush catches up with everything committed before it (a loop faster than the sink: bounded)
LOAD_AFTER = 1.5  # seconds after start before the sink imports the document builder unasked
SINK_PID = "sink.pid"  # in the journal folder: the pid of the sink that works on the run
BLOCK = 1 << 16  # journal slots read at once (2 MiB) ...
MAX_BLOCK = 1 << 20  # ... up to 4 per series where there are many series (32 MiB)
MAX_OPEN = 1 << 16  # metric files the sink process keeps open at most
FSYNC_EACH = 64  # more dirty files than this: one os.sync()
PENDING = 64 << 20  # bytes of formatted rows kept for one write per file, at most
WRITE = 1 << 20  # ... and no more once they average this much per file (bigger writes gain nothing, copies cost)
#: rows of a series whose file is not open wait this long for more (more series than descriptors:
#: each file is opened once per few seconds, not once per poll); open files are written every poll
CLOSED_FILE_WAIT = 10.0
FEW_SERIES = 1024  # with more series than this, the journal is read ...
SLOW_POLL = 1.0  # ... this often, requests aside, and a file's rows wait ...
ROW_WAIT = 5.0  # ... this long for more, ...
WRITE_SOON = 16 << 10  # ... unless they are this many bytes (a new file is made at its first rows, though)
#: a live document is written again only after this many times its own duration (a run with 100,000
#: series: seconds a document): the sink spends at most a fifth of its time on live documents
DOCUMENT_SPACING = 4.0
STATS = ("count", "nan_count", "min", "max", "last", "mean", "first_step", "last_step", "first_time", "last_time")
SUMMARY = len(STATS)  # what a report gives of a series (the sink keeps its exact sum after)


def row_format(separator):
    sep = separator.replace("%", "%%")
    return f"%d{sep}%r{sep}%.3f\n"


class CsvFile:
    """One metric file, appended with whole rows only; its descriptor is open only while in the pool."""

    def __init__(self, path, header, truncate=False):
        self.path = path
        self.header = header  # the column names' line, written before the first row
        self.truncate = truncate
        self.fd = None
        self.size = None  # bytes of whole rows, known from the first open
        self.dirty = False  # written since the last fsync

    def open(self):
        first = self.size is None
        if first and not self.truncate:  # most files are new: then nothing to look at (100,000 files: 0.3 s)
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                self.size = 0
                return
            except FileExistsError:
                pass
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if first and self.truncate else 0), 0o644)
        if first:
            size = os.fstat(self.fd).st_size
            self.size = _whole_rows(self.path, size)
            if self.size != size:
                os.ftruncate(self.fd, self.size)

    def write(self, data):
        """Append ``data`` (whole rows) or nothing: a partial write is cut back."""
        if self.size == 0:
            data = self.header + data
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(self.fd, view, self.size + len(data) - len(view))
                if n <= 0:
                    raise OSError("short write")
                view = view[n:]
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            raise
        self.size += len(data)
        self.dirty = True

    def fsync(self):
        if self.fd is not None and self.dirty:
            os.fsync(self.fd)
            self.dirty = False

    def close(self):
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def open_file_budget():
    """How many metric files the sink keeps open at once: a quarter of the descriptor limit, 8 to 512; in
    the sink process (see ``_own_descriptors``), all but 64 of its own limit, up to 65,536."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 256
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 512
    if _OWN_DESCRIPTORS:
        return max(8, min(MAX_OPEN, soft - 64))
    return max(8, min(512, soft // 4))


_OWN_DESCRIPTORS = False  # True in the sink process: its descriptors serve the metric files alone


def _own_descriptors():
    """The sink process raises its soft descriptor limit to the hard one (up to what MAX_OPEN needs): a run
    with more series than the training process's limit allows open files still keeps each file open."""
    global _OWN_DESCRIPTORS
    _OWN_DESCRIPTORS = True
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = MAX_OPEN + 64 if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN + 64)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, OSError, ValueError):
        pass


def _whole_rows(path, size):
    """The length of ``path`` up to its last newline (a row torn by a kill is dropped)."""
    if size == 0:
        return 0
    with open(path, "rb") as fh:
        pos = size
        while pos > 0:
            step = min(4096, pos)
            fh.seek(pos - step)
            block = fh.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                return pos - step + cut + 1
            pos -= step
    return 0


def _rows_in(path):
    """The whole rows of a metric file, its header aside (0 when there is no file, or none that can be read: the
    write of its rows then fails and says why)."""
    try:
        end = _whole_rows(path, os.path.getsize(path))
        lines = 0
        with open(path, "rb") as fh:
            while fh.tell() < end:
                lines += fh.read(min(1 << 20, end - fh.tell())).count(b"\n")
    except OSError:
        return 0
    return max(lines - 1, 0)


def _fold(stats, group):
    """Fold a chunk of one series (``group``, ``rows``' tuple of it) into ``stats`` (a list in STATS order, then
    the exact sum of the series' finite values). ``_hot.fold`` does the same in C.

    The exact sum is an integer in units of 2**-1074 (every double is a whole number of them), to which each
    chunk adds its own exactly: its ``partials`` (whose sum is the chunk's) or, where ``rows`` left that to
    Python, its ``numbers``. So the mean is the values' exact mean, correctly rounded, however the points
    fell into chunks; it never overflows (two points of 1e308 have the mean 1e308). It is made once, when the
    summary leaves the sink (:func:`summary`): a series is folded many times between two reports.
    """
    count, nan, lo, hi, last, first_step, last_step, first_time, last_time, numbers, partials = group[2:]
    if stats[0] == 0:
        stats[6], stats[8] = first_step, first_time
    stats[0] += count
    stats[1] += nan
    if lo is not None:
        stats[2] = lo if stats[2] is None else _lesser(stats[2], lo)
        stats[3] = hi if stats[3] is None else -_lesser(-stats[3], -hi)
        stats[10] += _exact_sum(partials if partials is not None else memoryview(numbers).cast("d"))
    stats[4] = last
    stats[7], stats[9] = last_step, last_time


def summary(stats):
    """A series' summary as it leaves the sink: STATS order, the mean made from the exact sum."""
    out = stats[:SUMMARY]
    if stats[0] > stats[1]:
        out[5] = _mean(stats[2], stats[3], stats[10], stats[0] - stats[1])
    return out


def _summarize_all(all_stats, text):
    """{sid: summary(stats)} of ``all_stats``; ``text``: the keys as ``str(sid)``, as a report gives them."""
    return {(str(sid) if text else sid): summary(stats) for sid, stats in all_stats.items()}


def _exact_sum(values) -> int:
    """The exact sum of the finite ``values`` in units of 2**-1074 (an infinity decides the mean on its own)."""
    total = 0
    for v in values:
        if v - v == 0:
            n, d = v.as_integer_ratio()  # d is a power of two, 2**1074 at most
            total += n << (1075 - d.bit_length())
    return total


def _mean(lo: float, hi: float, exact: int, k: int) -> float:
    """The mean of ``k`` values (no NaN) from their extremes and their exact sum; correctly rounded."""
    if lo - lo == 0 == hi - hi:  # both finite (x - x is NaN for an infinity)
        if lo == hi == 0.0:
            return lo + hi  # all zeros: -0.0 only if every one is -0.0, as their IEEE sum
        return exact / (k << 1074)  # int / int: correctly rounded
    # IEEE: inf with +inf alone, -inf with -inf alone, NaN with both
    return lo + hi if lo == -hi else (hi if math.isinf(hi) else lo)


def _lesser(a: float, b: float) -> float:
    """IEEE minimum of two numbers: -0.0 below +0.0."""
    if a == b == 0.0:
        return a if math.copysign(1.0, a) < 0 else b
    return a if a < b else b


def new_stats():
    """A series' summary before its first row (STATS order; the mean is made by ``summary``), then the exact
    sum of its values (see ``_fold``)."""
    return [0, 0, None, None, None, None, None, None, None, None, 0]


def _rows_py(slots, separator):
    """``_hot.rows`` in Python, where the C extension is not built (the same rows, ~10x slower); the values are
    handed back for ``_fold`` to sum (no partials)."""
    by_sid = {}
    for step, value, t, sid, _ in RECORD.iter_unpack(slots):
        if sid != VOID:
            by_sid.setdefault(sid, []).extend((step, value, t))
    row = row_format(separator)
    out = []
    for sid, flat in by_sid.items():
        values = flat[1::3]
        numbers = [v for v in values if v == v]
        lo = hi = None
        if numbers:
            lo, hi = min(numbers), max(numbers)
            if lo == 0.0:  # IEEE: -0.0 is below +0.0 (min and max keep whichever zero came first)
                lo = -0.0 if any(v == 0.0 and math.copysign(1.0, v) < 0 for v in numbers) else 0.0
            if hi == 0.0:
                hi = 0.0 if any(v == 0.0 and math.copysign(1.0, v) > 0 for v in numbers) else -0.0
        text = ((row * len(values)) % tuple(flat)).encode()
        out.append((sid, text, len(values), len(values) - len(numbers), lo, hi, values[-1], flat[0], flat[-3],
                    flat[2], flat[-1], struct.pack(f"<{len(numbers)}d", *numbers), None))
    return out


rows, fold, summarize_all = _rows_py, _fold, _summarize_all
# The rows and their folds in C, ~10x faster: where it is built, reads records in the journal's (little-endian)
# order, and PROV4ML_PURE_PYTHON (which the tests use to run the Python paths) is not set.
if sys.byteorder == "little" and os.environ.get("PROV4ML_PURE_PYTHON", "") in ("", "0"):
    try:
        if __package__:
            from ._hot import fold, rows, summarize_all
        else:
            from _hot import fold, rows, summarize_all  # type: ignore[no-redef]
    except ImportError:  # not built (no compiler at install)
        pass


def _split(slots, keep):
    """(the slots whose series ``keep(sid)`` takes, the others), each in journal order."""
    kept, other = bytearray(), bytearray()
    view = memoryview(slots)
    for at in range(0, len(slots), SLOT):
        sid = _SID.unpack_from(slots, at + 24)[0]
        if sid != VOID:
            (kept if keep(sid) else other).extend(view[at:at + SLOT])
    return bytes(kept), bytes(other)


_SID = struct.Struct("<I")


def _text(groups):
    """The rows of a series' backlog (its groups, as ``rows`` made them) in one piece."""
    return groups[0][1] if len(groups) == 1 else b"".join(g[1] for g in groups)


class Consumer:
    """Journal -> metric files and summaries. ``suffix`` writes to side files (for recovery).

    Each poll reads journal slots in blocks, has ``rows`` group and format them
    series by series, and keeps each series' text in ``backlog`` until the
    poll ends or ``PENDING`` bytes wait: then each file gets one ``write`` of
    all its rows (a series logged to a few times per block is not opened
    once per block, whatever the number of series).
    """

    def __init__(self, journal_dir, run_dir, separator=",", suffix="", write=True, truncate=False, resume=False):
        self.reader = JournalReader(journal_dir)
        self.series_lines = SeriesLines(journal_dir)
        self.journal_dir = journal_dir
        self.run_dir = run_dir
        self.separator = separator
        self.header = (separator.join(COLUMNS) + "\n").encode()
        self.suffix = suffix
        self.write = write
        self.truncate = truncate  # start the files afresh (a rebuild from the journal)
        # Take over from a consumer that died: each file holds the first rows of its series, whole,
        # so those points are only summarised and the rest appended (a file never shrinks).
        self.resume = resume
        self.skip = {}  # sid -> rows its file held when this consumer took over, not yet passed
        self.series = {}
        self.files = {}  # sid -> CsvFile, open or not
        self.open_files = collections.OrderedDict()  # sid -> CsvFile with a descriptor, least recently used first
        self.max_open = open_file_budget()
        self.stats = {}
        self.backlog = {}  # sid -> [rows' summary tuples] formatted, not yet on disk (a failed write keeps them)
        self.planned = {}  # sid -> its summary once its backlog is written: the backlog's rows folded as they come
        self.waiting_since = {}  # sid -> when its backlog began (oldest first)
        self.waiting_bytes = {}  # sid -> bytes of its backlog
        self.unopened = {}  # sids with a backlog and no file yet, in order
        self.big = {}  # sids with WRITE_SOON bytes of backlog or more, in order
        self.pending = 0  # bytes of text in the backlog
        self.orphans = bytearray()  # slots of series whose series line is not readable yet
        self.errors = []
        self._reported = set()
        self.behind = False  # the last poll stopped at its budget, not at the end of the journal
        self.opening = False  # the last write pass stopped at its budget: files are left to open
        self.read_at = 0.0  # when the journal was last read
        # Many series: a new series' file is made as soon as its line is read, before its rows are (see make_files)
        self.unmade = collections.deque()  # sids whose lines were read, their files not made yet
        self.ahead = set()  # sids whose files were made ahead of their rows
        self.making = False  # the last make_files stopped at its budget
        self.lines_at = 0.0  # when make_files last read series.jsonl

    def _error(self, key, message):
        if key not in self._reported:
            self._reported.add(key)
            self.errors.append(message)

    def poll(self, final=False, budget=None, keep=False, interrupted=None):
        """Read what was committed since the last poll; returns the number of slots read.

        ``budget`` (seconds) bounds the work while the writer lives: a loop that
        logs faster than the files are written must not keep a reply waiting.
        ``keep``: leave the rows read in the backlog (``planned_report``, then ``write_backlog``).
        ``interrupted``: see :meth:`write_backlog`.
        """
        total = 0
        self.read_at = time.monotonic()
        deadline = None if budget is None or final else self.read_at + budget
        self.behind = False
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                self.behind = True  # more may be committed: the sink polls again without waiting
                break
            # a block holds a few points of each series at least, so a series' file is opened once per poll
            # and a series makes one chunk per block: across segments (131,072 slots each) where many series
            limit = max(BLOCK, min(4 * len(self.series), MAX_BLOCK))
            parts, size = [], 0
            while size < limit:
                part = self.reader.read_slots(final, now=time.monotonic(), limit=limit - size)
                if not part:
                    break
                parts.append(part)
                size += len(part) // SLOT
            if not parts:
                break
            slots = parts[0] if len(parts) == 1 else b"".join(parts)
            total += len(slots) // SLOT
            self._take(slots)
            # the sink's memory stays bounded; a file's rows of one block, written alone, are not joined to the next
            if self.pending >= PENDING or self.pending >= WRITE * len(self.backlog):
                self.write_backlog()
        if not keep:
            self.write_backlog(everything=final, interrupted=interrupted)
        return total

    def write_backlog(self, everything=True, interrupted=None):
        """Write the backlog: all of it, or (at a poll's end) the rows of open files, of new files and the rows
        that waited. Opening files is what costs (100,000 of them: seconds), so that part stops after
        ``BUDGET`` seconds, or sooner once ``interrupted`` (the sink between requests) says a request waits;
        the sink then reads what the journal gained meanwhile and goes on with the rest at once (so at a run's
        end only the last moment's points are left to read)."""
        if everything:
            return self._write_all()
        many = len(self.files) > self.max_open
        now = time.monotonic()
        due, deadline = now - CLOSED_FILE_WAIT, now + BUDGET
        files, since = self.files, self.waiting_since
        opened = 0
        self.opening = False
        sids = list(self.backlog) if len(self.series) <= FEW_SERIES else self._due(now - ROW_WAIT)
        for sid in sids:
            fh = files.get(sid)
            if many and fh is not None and fh.fd is None and since[sid] > due:
                continue  # a closed file's rows wait for more
            closed = fh is None or fh.fd is None
            self._flush_backlog(sid)
            if closed:
                opened += 1
                if opened % 32 == 0 and (time.monotonic() >= deadline or (interrupted is not None and interrupted())):
                    self.opening = True
                    break

    def _write_all(self):
        """Every series' rows (a flush, the run's end): one write a file, the bookkeeping after (100,000 files:
        the loop is most of what the run's end waits for). A failed write keeps its rows, as ``_flush_backlog``."""
        backlog, open_file = self.backlog, self._open
        written = []
        for sid, groups in backlog.items():
            try:
                open_file(sid).write(_text(groups))
            except OSError as exc:
                self._write_failed(sid, exc)
                continue
            written.append(sid)
        if len(written) == len(backlog):  # the usual case: every table emptied at once
            self.stats.update(self.planned)
            for table in (self.planned, backlog, self.waiting_since, self.waiting_bytes, self.unopened, self.big):
                table.clear()
            self.pending = 0
            self._reported = {key for key in self._reported if key[0] != "write" or type(key[1]) is not int}
            return
        for sid in written:
            self._settle(sid)

    def _due(self, since):
        """Of many series, those whose rows are written at a poll's end: new files, rows of ``WRITE_SOON`` bytes,
        rows waiting since before ``since`` (found without a look at the others: a poll of 100,000 series)."""
        due = {**self.unopened, **self.big}
        for sid, began in self.waiting_since.items():
            if began > since:
                break
            due[sid] = None
        return list(due)

    def _take(self, slots):
        if self.orphans:  # before the new slots: each series keeps its order
            slots, self.orphans = bytes(self.orphans) + slots, bytearray()
        try:
            groups = rows(slots, self.separator)
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            self._error(("format",), f"could not format metric points: {exc!r}")
            return
        if any(g[0] not in self.series for g in groups):
            self._learn()
            if any(g[0] not in self.series for g in groups):
                slots, orphans = _split(slots, lambda sid: sid in self.series)
                self.orphans += orphans
                groups = rows(slots, self.separator)
        if self.resume and any(self._rows_on_disk(g[0]) for g in groups):
            slots, on_disk = self._pass_rows_on_disk(slots)
            for group in rows(on_disk, self.separator):
                fold(self.stats.setdefault(group[0], new_stats()), group)
            groups = rows(slots, self.separator)
        now = time.monotonic()
        for group in groups:
            if self.write:
                sid = group[0]
                waiting = self.backlog.get(sid)
                if waiting is None:
                    self.backlog[sid] = [group]
                    self.waiting_since[sid] = now
                    self.waiting_bytes[sid] = len(group[1])
                    if sid not in self.files:
                        self.unopened[sid] = None
                    planned = self.planned[sid] = list(self.stats.get(sid) or new_stats())
                else:
                    waiting.append(group)
                    self.waiting_bytes[sid] += len(group[1])
                    if self.waiting_bytes[sid] >= WRITE_SOON:
                        self.big[sid] = None
                    planned = self.planned[sid]
                fold(planned, group)  # once, here: a report at any moment and the write take it as it is
                self.pending += len(group[1])
            else:
                fold(self.stats.setdefault(group[0], new_stats()), group)

    def _learn(self):
        """Read the lines of the series described since the last read; their files are to make (see make_files)."""
        new = self.series_lines.read_new()
        self.series.update(new)
        self.unmade.extend(new)

    def _rows_on_disk(self, sid):
        """Rows of ``sid``'s file from before the takeover that its slots have not passed yet."""
        if sid not in self.skip:
            self.skip[sid] = _rows_in(os.path.join(self.run_dir, self.series[sid]["file"] + self.suffix))
        return self.skip[sid]

    def _pass_rows_on_disk(self, slots):
        """(slots still to write, slots whose rows the files already hold)."""
        def still_to_write(sid):
            if self._rows_on_disk(sid):
                self.skip[sid] -= 1
                return False
            return True

        return _split(slots, still_to_write)

    def _flush_backlog(self, sid):
        try:
            self._open(sid).write(_text(self.backlog[sid]))
        except OSError as exc:
            self._write_failed(sid, exc)
            return
        self._settle(sid)

    def _write_failed(self, sid, exc):
        self._error(("write", sid), f"could not write metric file {self.series[sid]['file']!r}: "
                    f"{exc.strerror or exc}; its points stay in the journal and are written when the disk has room")

    def _settle(self, sid):
        """``sid``'s backlog is on disk: its summary is the planned one."""
        self.stats[sid] = self.planned.pop(sid)
        for group in self.backlog.pop(sid):
            self.pending -= len(group[1])
        del self.waiting_since[sid]
        del self.waiting_bytes[sid]
        self.unopened.pop(sid, None)
        self.big.pop(sid, None)
        self._reported.discard(("write", sid))

    def _open(self, sid):
        """The series' file, open: one of at most ``max_open`` (any number of series, a bounded pool)."""
        fh = self.files.get(sid)
        if fh is None:
            path = os.path.join(self.run_dir, self.series[sid]["file"] + self.suffix)
            fh = self.files[sid] = CsvFile(path, self.header, self.truncate)
        if fh.fd is not None:
            self.open_files.move_to_end(sid)
            return fh
        while len(self.open_files) >= self.max_open:
            self._evict()
        try:
            fh.open()
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self.open_files:
                raise
            # the process holds more descriptors than the budget assumed: halve the pool and try again
            self.max_open = max(1, len(self.open_files) // 2)
            while len(self.open_files) > self.max_open:
                self._evict()
            fh.open()
        self.open_files[sid] = fh
        return fh

    def _evict(self):
        _, fh = self.open_files.popitem(last=False)
        fh.close()  # a dirty file stays dirty: fsync() pushes it to the disk

    def _read_due(self):
        """When the journal is read next, requests aside: ``POLL`` after the last read, ``SLOW_POLL`` with more
        than ``FEW_SERIES`` series (a read then brings a few points of each series, not one: a chunk each)."""
        return self.read_at + (SLOW_POLL if len(self.series) > FEW_SERIES else POLL)

    def pressed(self):
        """True while many series' files are left to make or to open (a live document then waits: ``Documents``)."""
        return len(self.series) > FEW_SERIES and bool(self.making or self.opening or self.unmade or self.unopened)

    def wait(self):
        """Seconds until there is work to do when no request comes: none while behind or opening files."""
        if self.behind or self.opening or self.making:
            return 0
        due = self._read_due()
        if len(self.series) > FEW_SERIES:
            due = min(due, self.lines_at + POLL)  # new series' lines, to make their files
        return max(0.0, due - time.monotonic())

    def idle(self, interrupted=None):
        """The work between requests: open the files left to open until the journal is due, then read it; with
        many series, make the files of new series meanwhile."""
        now = time.monotonic()
        if self.behind or now >= self._read_due():
            self.poll(False, budget=BUDGET, interrupted=interrupted)
        elif self.opening:
            self.write_backlog(everything=False, interrupted=interrupted)
        elif len(self.series) > FEW_SERIES:
            self.make_files(interrupted)

    def make_files(self, interrupted=None):
        """Make the files of the series whose lines came since, before their rows are read.

        With 100,000 series, making the files is most of the sink's work (ext4: ~25 us a file); made as the
        lines come, it runs beside the training loop instead of after the journal's next read, and the run's
        end only appends. A failure is left to the write of the rows, which says it. A file made ahead for a
        series that never gets a row is removed at the run's end (:meth:`drop_unused`)."""
        now = self.lines_at = time.monotonic()
        if not self.making:
            self._learn()
        deadline, made = now + BUDGET, 0
        self.making = False
        while self.unmade:
            sid = self.unmade.popleft()
            if sid in self.files:  # its rows came first
                continue
            self.ahead.add(sid)
            try:
                self._open(sid)  # empty: the header comes with the first rows, as readers expect
            except OSError:
                pass
            made += 1
            if made % 32 == 0 and (time.monotonic() >= deadline or (interrupted is not None and interrupted())):
                self.making = bool(self.unmade)
                break

    def report(self):
        """The summaries of every series and the errors since the last report."""
        report = self.short_report()
        report["series"] = self.report_series()
        return report

    def report_series(self):
        """A report's series: sid (text) -> summary of the rows on disk."""
        return summarize_all(self.stats, True)

    def summaries(self):
        """sid -> the summary (:func:`summary`) of the rows on disk."""
        return summarize_all(self.stats, False)

    def planned_report(self):
        """:meth:`report` as it will be once the backlog is written: the summaries of every row read."""
        stats = {**self.stats, **self.planned}
        errors, self.errors = self.errors, []
        return {"errors": errors, "backlog": 0, "points": sum(s[0] for s in stats.values()),
                "series": summarize_all(stats, True)}

    def short_report(self):
        """The errors since the last report, the backlog and the rows on disk, without the summaries."""
        errors, self.errors = self.errors, []
        return {"errors": errors, "backlog": sum(g[2] for groups in self.backlog.values() for g in groups),
                "points": sum(stats[0] for stats in self.stats.values())}

    def fsync(self):
        """Every written row on disk: a file's own fsync for a few files, one sync of everything for many (a
        closed file, or hundreds of files, would cost an open or a flush each)."""
        dirty = [fh for fh in self.files.values() if fh.dirty]
        if len(dirty) > FSYNC_EACH or any(fh.fd is None for fh in dirty):
            os.sync()
            for fh in dirty:
                fh.dirty = False
            return
        for fh in dirty:
            try:
                fh.fsync()
            except OSError:
                pass

    def drop_unused(self):
        """Remove the files made ahead for series that got no row (a value refused after its series was made):
        the document gives such a series no file."""
        for sid in self.ahead:
            if sid not in self.stats and sid not in self.backlog:
                fh = self.files[sid]
                fh.close()
                self.open_files.pop(sid, None)
                try:
                    os.unlink(fh.path)
                except OSError:
                    pass
        self.ahead.clear()

    def close(self):
        for fh in self.open_files.values():
            try:
                fh.close()
            except OSError:
                pass
        self.open_files.clear()
        self.files.clear()
        self.reader.close()


class _Pipe:
    """Reads exact frames from a raw file descriptor (no buffering, so select() tells the truth)."""

    def __init__(self, fd):
        self.fd = fd

    def waiting(self):
        """True when a request (or EOF) is there to read."""
        return bool(select.select([self.fd], [], [], 0)[0])

    def read(self, n):
        got = b""
        while len(got) < n:
            part = os.read(self.fd, n - len(got))
            if not part:
                return b""
            got += part
        return got


class _Cancelled(BaseException):
    """A request came while a live document was being written: the run is ending (or its process is gone),
    so that document is dropped unwritten and the request served at once.

    A BaseException: it passes the builder's own ``except Exception``; ``atomic_write``
    removes the temporary file."""


class Documents:
    """Writes the running run's PROV-JSON when its records or the rows on disk changed.

    With many series, a live document waits while new series' files are left to make (the rows first: a
    document of 100,000 series costs as much as making 50,000 files), up to ``defer`` seconds after the last
    one (the run's refresh intervals say how long it can wait and still be rewritten every ``flush_interval``)."""

    def __init__(self, journal_dir, run_dir, import_path, writer, waiting=None, defer=0.0):
        self.journal_dir = journal_dir
        self.run_dir = run_dir
        self.import_path = import_path
        self.writer = writer  # "module:function", called as function(journal_dir, run_dir, stats)
        self.written = None  # what the last document was made of
        self.next_at = 0.0  # no live document before then (see DOCUMENT_SPACING)
        self.written_at = time.monotonic()  # of the last live document (the run wrote the first one)
        self.defer = defer
        self.closing = False  # the run is ending: its final document comes from end_run
        self.waiting = waiting  # True when a request waits (``_Pipe.waiting``): it cancels a live document
        self.failed = None
        self._write = None
        # Importing the builder takes a core for ~0.3 s: not while training starts (the first request may come sooner)
        self.load_after = time.monotonic() + LOAD_AFTER

    def load(self, consumer):
        """Import the document builder (prov4ml, prov): done while idle, so no request waits for it."""
        if self._write is None and not self.failed:
            try:
                for entry in reversed(self.import_path):
                    if entry not in sys.path:
                        sys.path.insert(1, entry)
                import importlib

                module, _, function = self.writer.partition(":")
                self._write = getattr(importlib.import_module(module), function)
            except Exception as exc:
                self._fail(consumer, exc)

    def update(self, consumer, full=False):
        """Rewrite the document if needed (``full``: even when one was written a moment ago); False once it
        cannot be written here."""
        self.load(consumer)
        if self.failed:
            return False
        if not full and (self.closing or time.monotonic() < self.next_at or
                         (consumer.pressed() and time.monotonic() < self.written_at + self.defer)):
            return True
        try:
            state = os.stat(os.path.join(self.journal_dir, "state.pickle"))
            key = (state.st_mtime_ns, state.st_size, state.st_ino,
                   tuple(sorted((sid, stats[0]) for sid, stats in consumer.stats.items())))
            if key != self.written:
                began = time.monotonic()
                self._write(self.journal_dir, self.run_dir, consumer.summaries(), check=None if full else self._check)
                self.written, self.written_at = key, time.monotonic()
                self.next_at = self.written_at + DOCUMENT_SPACING * (self.written_at - began)
        except _Cancelled:
            return True
        except Exception as exc:
            self._fail(consumer, exc)
            return False
        return True

    def _check(self):
        """Between batches of a live document: stop it if a request waits (the run is ending, or its process is gone)."""
        if self.waiting is not None and self.waiting():
            raise _Cancelled()

    def _fail(self, consumer, exc):  # the run then writes its document itself
        self.failed = f"the metric sink could not write the PROV-JSON ({exc!r}); the run writes it itself"
        consumer._error(("document",), self.failed)


def serve(inp_fd=0, out=None):
    """The sink process's loop: runs one after another, each opened by ``R`` and closed by ``X``."""
    out = out or sys.stdout.buffer
    pipe = _Pipe(inp_fd)
    while True:
        tag = pipe.read(1)
        if tag != b"R":  # EOF between runs: the parent is gone or done
            return
        spec = json.loads(pipe.read(int(pipe.read(8), 16)))
        if not _serve_run(spec, pipe, out):
            return


def _serve_run(spec, pipe, out):
    """Serve one run's requests; True once it is closed by ``X``, False on EOF (its files finished)."""

    journal_dir = spec["journal_dir"]
    consumer = Consumer(journal_dir, spec["run_dir"], spec["separator"])
    documents = spec.get("documents")
    if documents is not None:
        documents = Documents(journal_dir, spec["run_dir"], documents["path"], documents["writer"], pipe.waiting,
                              documents.get("defer", 0.0))
    try:
        while True:
            ready, _, _ = select.select([pipe.fd], [], [], consumer.wait())
            if not ready:
                _guarded(consumer, False, interrupted=pipe.waiting, idle=True)
                if documents is not None and time.monotonic() > documents.load_after:
                    documents.load(consumer)
                continue
            tag = pipe.read(1)
            if tag == b"S":
                token = pipe.read(8)
                _guarded(consumer, False)
                _reply(out, token, consumer.report())
            elif tag in (b"D", b"F"):
                token = pipe.read(8)
                _guarded(consumer, False, FLUSH_BUDGET if tag == b"F" else BUDGET)
                if tag == b"F":
                    _guarded_write(consumer)
                written = documents is not None and documents.update(consumer, full=tag == b"F")
                report = consumer.report() if tag == b"F" else consumer.short_report()
                report["document"] = written
                _reply(out, token, report)
            elif tag == b"C":  # the run is ending: no more live documents
                if documents is not None:
                    documents.closing = True
            elif tag == b"X":  # two replies: what the files will hold once every row read is written, then the word
                _guarded(consumer, True, keep=True)  # that they do (the run writes its document in between)
                _reply(out, b"", consumer.planned_report())
                _guarded_write(consumer)
                consumer.drop_unused()
                consumer.fsync()
                _done_with(journal_dir)
                final = consumer.short_report()
                final["as_planned"] = not consumer.backlog  # each row read was written, and summarised as planned
                if not final["as_planned"]:
                    final["series"] = consumer.report_series()
                _reply(out, b"", final)
                return True
            else:  # EOF: the parent is gone; finish the files (and the document) from the journal
                _guarded(consumer, True)
                consumer.drop_unused()
                if documents is not None:
                    documents.update(consumer, full=True)
                _done_with(journal_dir)
                return False
    finally:
        consumer.close()


def _done_with(journal_dir):
    """This process no longer works on the run: ``recover`` need not wait for it."""
    try:
        os.unlink(os.path.join(journal_dir, SINK_PID))
    except OSError:
        pass


def _guarded(consumer, final, budget=BUDGET, keep=False, interrupted=None, idle=False):
    try:
        if idle:
            consumer.idle(interrupted)
        else:
            consumer.poll(final, budget=budget, keep=keep, interrupted=interrupted)
    except Exception as exc:  # one bad poll must not end the sink
        consumer._error(("poll", repr(exc)), f"the metric sink failed reading the journal: {exc!r}")


def _guarded_write(consumer):
    try:
        consumer.write_backlog()
    except Exception as exc:
        consumer._error(("write", repr(exc)), f"the metric sink failed writing the metric files: {exc!r}")


def _reply(out, token, report):
    """``token``, the length in 16 hex digits, then the report pickled (100,000 series: 0.1 s each way, where JSON
    took 0.9 s; the parent reads only what its own child wrote)."""
    data = pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        out.write(b"%s%016x%s" % (token, len(data), data))
        out.flush()
    except OSError:  # the parent is gone
        pass


if __name__ == "__main__":
    import signal

    try:
        os.nice(10)  # yield the CPU to training when the cores are busy
    except OSError:
        pass

    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGPIPE", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    _own_descriptors()

    try:
        serve()
    except BaseException:  # never print into the user's terminal; the run reports what is missing
        sys.exit(1)
