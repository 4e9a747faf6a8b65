"""The index of the runs under a directory or URL: a SQLite cache that only readers write.

Runs never write it: each rank writes its own summary (``summary_rank<k>.json``,
:mod:`prov4ml.provenance.summary`), and a reader folds the summaries into an
embedded SQLite database. A refresh stats every run directory (one ``stat``
each); a run whose directory changed since it was indexed (a summary or a
document replaced, a rank added) is read again, a run that is gone is dropped.
A directory changed in the last :data:`RACY_S` seconds is read again at the
next refresh too, because a file system's clock may not tell two changes
within one tick apart. On a URL the listing of the store gives each object's
fingerprint instead.

The database is a cache: the documents and summaries stay the source of
truth. It lives beside the runs (``<dir>/.prov4ml-index/index.sqlite``) on a local,
writable disk, and in the user's cache directory otherwise (NFS, Lustre and
other shared file systems, where SQLite's locks cannot be trusted; a
read-only directory; a URL). It may be deleted at any time; one that is
unreadable, or of another schema version, is rebuilt. docs/formats.md
describes it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

from ..exceptions import ProvFileError, Prov4MLError
from ..provenance.summary import SUMMARY_FILE, decode, encode
from ..storage.remote import is_url
from . import status as _status
from .document import read_rank
from .fields import Condition, Fields, Resolved
from .find import RANK_FILE, DEFAULT_DIR, PathLike, rank_files
from .record import RunRecord, merge_ranks, metric_figures
from .series import Series
from .summary import Entry, entry_of, read_entry

__all__ = ["Index", "SCHEMA", "INDEX_FILE", "RACY_S", "location_of", "Row"]

SCHEMA = 2
#: In its own hidden folder: SQLite's journal comes and goes beside it, which must not change the runs' folder.
INDEX_FILE = ".prov4ml-index/index.sqlite"
#: Threads reading runs' summaries side by side (the time goes to the disk's or the store's latency).
READERS = 8
#: A directory changed this recently is read again at the next refresh (file-system clocks tick coarsely).
RACY_S = 2.0
#: File systems where the index is kept in the user's cache instead (SQLite's locking is unsafe on them).
SHARED_FILE_SYSTEMS = ("nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs", "ceph", "glusterfs", "9p",
                       "afs", "panfs", "wekafs", "fuse", "fuseblk", "virtiofs")
_STATS = ("last", "best", "min", "max", "mean", "count", "last_step")
#: Statuses after which a run's summary no longer changes (``recover`` completes only ``running``/``incomplete`` ones).
ENDED = ("finished", "failed", "killed", "interrupted", "terminated")

Row = Tuple[RunRecord, Dict[str, Dict[str, Any]]]
Step = Optional[Callable[[int, int], None]]
F = TypeVar("F", bound=Callable[..., Any])

_TABLES = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, dir TEXT UNIQUE NOT NULL, stamp TEXT NOT NULL,
    o1 INTEGER, o2 INTEGER, o3 TEXT, o4 INTEGER, o5 INTEGER, o6 TEXT,
    label TEXT, experiment TEXT, run_num INTEGER, run_text TEXT, status TEXT, recorded_status TEXT,
    start REAL, start_text TEXT, "end" REAL, end_text TEXT, nranks INTEGER, needs TEXT, owners TEXT, data TEXT,
    settled INTEGER NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS folders (dir TEXT PRIMARY KEY, stamp TEXT NOT NULL, kind TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_settled ON runs (settled);
CREATE INDEX IF NOT EXISTS runs_order ON runs (o1, o2, o3, o4, o5, o6);
CREATE TABLE IF NOT EXISTS params (run INTEGER NOT NULL, name TEXT NOT NULL, k TEXT, num, text TEXT);
CREATE TABLE IF NOT EXISTS metrics (run INTEGER NOT NULL, key TEXT NOT NULL, source TEXT, nan INTEGER,
    {", ".join(_STATS)});
CREATE TABLE IF NOT EXISTS files (run INTEGER NOT NULL, rank INTEGER, used INTEGER, sha256 TEXT, size INTEGER,
    role TEXT, name TEXT, location TEXT, original TEXT);
CREATE INDEX IF NOT EXISTS params_run ON params (run, name);
CREATE INDEX IF NOT EXISTS params_name ON params (name);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run, key);
CREATE INDEX IF NOT EXISTS metrics_key ON metrics (key);
CREATE INDEX IF NOT EXISTS files_digest ON files (sha256);
CREATE INDEX IF NOT EXISTS files_run ON files (run);
CREATE INDEX IF NOT EXISTS runs_label ON runs (label);
"""


# ------------------------------------------------------------------------------------------------ where it lives
def _cache_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "prov4ml" / "index"


def _file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (``""`` where /proc/self/mountinfo is not there)."""
    best, kind = "", ""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields = left.split()
                mount = fields[4].replace("\\040", " ") if len(fields) > 4 else ""
                if (str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                    best, kind = mount, right.split()[0] if right else ""
    except OSError:
        return ""
    return kind


def location_of(root: PathLike) -> str:
    """Where the index of ``root`` (a directory or URL) is kept."""
    if is_url(root):
        key = str(root).rstrip("/")
    else:
        resolved = Path(root).resolve()
        kind = _file_system(resolved)
        shared = kind.split(".")[0] in SHARED_FILE_SYSTEMS
        if not shared and os.access(resolved, os.W_OK):
            return str(resolved / INDEX_FILE)
        key = str(resolved)
    return str(_cache_dir() / f"{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:24]}.sqlite")


# ------------------------------------------------------------------------------------------------ the index
def _resilient(method: F) -> F:
    """``method``, done again on a fresh database when SQLite fails (the file deleted or replaced while open:
    "attempt to write a readonly database"; corrupt; locked past the timeout), and at last in memory."""

    @functools.wraps(method)
    def wrapper(self: "Index", *args: Any, **kwargs: Any) -> Any:
        for attempt in range(3):
            try:
                return method(self, *args, **kwargs)
            except Prov4MLError:
                raise  # the runs' trouble (a store out of reach...), said as it is
            except (sqlite3.DatabaseError, ValueError, KeyError, TypeError):  # a row decoded wrong is corruption
                if attempt == 2:
                    raise
                with contextlib.suppress(sqlite3.Error):
                    self.db.close()
                if self.location != ":memory:":
                    self._discard()  # a cache: made again from the runs' own files
                if attempt == 1:
                    self.location = ":memory:"
                self.db = self._connect()
                if method.__name__ not in ("refresh", "rebuild"):
                    self.refresh()  # a fresh database knows nothing yet
        raise AssertionError("unreachable")

    return wrapper  # type: ignore[return-value]


class Index:
    """The runs under ``root`` (a provenance save dir, an experiment or a run directory, or a URL).

    ``location``: the database file (default :func:`location_of`); ``":memory:"`` keeps it in memory.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, root: PathLike, location: Optional[str] = None,
                 storage_options: Optional[Dict[str, Any]] = None) -> None:
        self.url = str(root).rstrip("/") if is_url(root) else None
        self.root = Path(root) if self.url is None else None
        self.storage_options = storage_options
        if self.root is not None:
            self._check_root()
        self.location = location or (":memory:" if self.single else location_of(root))
        self.db = self._connect()

    # -------------------------------------------------------------------------------------------- opening
    @property
    def single(self) -> bool:
        """Whether ``root`` is one run directory (indexed in memory: there is nothing to save)."""
        return self.root is not None and bool(rank_files(self.root))

    def _check_root(self) -> None:
        root = self.root
        if not root.is_dir():
            what = "is a file, not a directory" if root.exists() else "no such directory"
            raise ProvFileError(
                f"{root}: {what}; give the provenance_save_dir of your runs (default ./{DEFAULT_DIR}), "
                "an experiment directory or a run directory"
            )

    def _connect(self) -> sqlite3.Connection:
        """The database, made when missing; one unreadable or of another schema is made again."""
        if self.location != ":memory:":
            for _attempt in range(2):
                try:
                    Path(self.location).parent.mkdir(parents=True, exist_ok=True)
                    db = sqlite3.connect(self.location, timeout=60, isolation_level=None, check_same_thread=False)
                    if self._ready(db):
                        return db
                    db.close()
                except sqlite3.OperationalError:
                    break  # cannot be opened or locked for good (a read-only place): keep it in memory
                except (sqlite3.DatabaseError, OSError):
                    pass
                self._discard()
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.location = ":memory:"
        self._ready(db)
        return db

    def _ready(self, db: sqlite3.Connection) -> bool:
        """Create the tables; False when the file holds an index of another schema (or another root)."""
        db.execute("PRAGMA synchronous = OFF")  # a cache: a power cut costs a rebuild, never data
        db.executescript(_TABLES)  # each statement on its own: IF NOT EXISTS lets two readers race
        row = dict(db.execute("SELECT key, value FROM meta").fetchall())
        root = self.url or str(self.root.resolve())
        if not row:
            with _transaction(db):
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [("schema", str(SCHEMA)), ("root", root)])
            return True
        return row.get("schema") == str(SCHEMA) and row.get("root") == root

    def _discard(self) -> None:
        for suffix in ("", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(self.location + suffix)

    def close(self) -> None:
        self.db.close()

    @_resilient
    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -------------------------------------------------------------------------------------------- refreshing
    @_resilient
    def rebuild(self, step: Step = None) -> int:
        """Forget everything and index every run again, in one transaction (a reader meanwhile sees the old
        index, whole); the number of runs."""
        self.refresh(step, full=True, forget=True)
        return self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    @_resilient
    def refresh(self, step: Step = None, full: bool = False, forget: bool = False) -> Tuple[int, int]:
        """Bring the index up to date with the runs; ``(runs read again, runs dropped)``.

        A folder (the root, an experiment) whose listing did not change keeps
        its runs; of those, only runs not yet ended (or changed too recently
        to tell) are looked at again, because an ended run's summary no
        longer changes. ``full``: look at every run (``prov4ml index`` does).
        ``step(done, total)`` is called while changed runs are read.
        """
        if self.url is not None:
            known = dict(self.db.execute("SELECT dir, stamp FROM runs").fetchall())
            found, folders, seen = self._scan_url(known), {}, {}
        else:
            folders = {d: (st, kind) for d, st, kind in self.db.execute("SELECT dir, stamp, kind FROM folders")}
            found, known, seen = self._scan({} if full else folders)
        if forget:
            known = {}
        changed = [rel for rel, stamp in found.items() if known.get(rel) != stamp]
        entries = []
        with ThreadPoolExecutor(READERS) as pool:  # reading is mostly waiting for the disk (or the store)
            for i, (rel, entry) in enumerate(zip(changed, pool.map(self._read, changed))):
                if entry is None:
                    del found[rel]  # a folder beside the runs, not a run
                else:
                    entries.append((rel, found[rel], entry))
                if step is not None:
                    step(i + 1, len(changed))
        gone = [rel for rel in known if rel not in found]
        redone = {rel for rel, *_rest in entries}
        rechecks = []  # (run, dir, data, status now, needs now): a process may have died since, its journal says so
        if self.url is None:
            for run, rel, data, status, needs in self.db.execute(
                    "SELECT id, dir, data, status, needs FROM runs WHERE recorded_status = 'running'").fetchall():
                now = self._rechecked(rel, json.loads(data)) if rel not in redone else None
                if now is not None and now != (status, json.loads(needs)):
                    rechecks.append((run, rel, data, *now))
        folders_gone = [(d,) for d in folders if d not in seen]
        folders_new = [(d, st, kind) for d, (st, kind) in seen.items() if folders.get(d) != (st, kind)]
        if not (entries or gone or rechecks or folders_gone or folders_new or forget):
            return 0, 0  # nothing to write: the database file is left as it is
        with _transaction(self.db):
            if forget:
                for table in ("runs", "params", "metrics", "files", "folders"):
                    self.db.execute(f"DELETE FROM {table}")
                folders_gone, rechecks = [], []
                folders_new = [(d, st, kind) for d, (st, kind) in seen.items()]
            for rel in gone:
                self._delete(rel)
            for rel, stamp, entry in entries:
                self._delete(rel)
                self._insert(rel, stamp, _rel_order(rel), entry)
            for run, rel, data, status, needs in rechecks:
                text = json.dumps(needs)
                self.db.execute("UPDATE runs SET status = ?, needs = ?, crc = ? WHERE id = ?",
                                (status, text, _crc(rel, status, text, data), run))
            self.db.executemany("DELETE FROM folders WHERE dir = ?", folders_gone)
            self.db.executemany("INSERT OR REPLACE INTO folders VALUES (?, ?, ?)", folders_new)
        return len(entries), len(gone)

    def _known(self, folder: Optional[str] = None) -> Dict[str, str]:
        """``{run dir: stamp}`` of the indexed runs in ``folder`` (a top-level name), or of the unsettled ones."""
        if folder is None:
            return dict(self.db.execute("SELECT dir, stamp FROM runs WHERE settled = 0").fetchall())
        return dict(self.db.execute("SELECT dir, stamp FROM runs WHERE dir > ? AND dir < ?",
                                    (folder + "/", folder + "0")).fetchall())  # "0" follows "/"

    def _scan(self, folders: Dict[str, Tuple[str, str]]) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, Tuple[str, str]]]:
        """``(found, known, seen)``: ``{run dir: stamp}`` under the root now and as indexed (where looked
        at), and ``{folder: (stamp, kind)}`` of the root and its children (kind ``folder`` or ``run``).

        A folder whose stamp is the one in ``folders`` holds the runs it held:
        of those, only the unsettled ones are stat'ed.
        """
        root, now = self.root, time.time_ns()
        if self.single:
            return {".": _stamp(os.stat(root), now)}, dict(self.db.execute("SELECT dir, stamp FROM runs")), {}
        seen: Dict[str, Tuple[str, str]] = {"": (_stamp(os.stat(root), now), "folder")}
        found: Dict[str, str] = {}
        known: Dict[str, str] = {}
        kept: List[str] = []
        if folders.get("") == seen[""]:  # no folder came or went: the ones known
            children = [d for d in folders if d]
        else:
            children = [e.name for e in _dirs(root)]
            gone = [d for d, (_st, kind) in folders.items() if d and d not in children]
            for name in gone:  # a folder removed: its runs are gone (a run right under the root is itself)
                known.update(self._known(name) if folders[name][1] == "folder" else
                             dict(self.db.execute("SELECT dir, stamp FROM runs WHERE dir = ?", (name,))))
        for name in children:
            path = os.path.join(root, name)
            try:
                stamp = _stamp(os.stat(path), now)
            except OSError:
                stamp = None
            previous = folders.get(name)
            if previous is not None and previous == (stamp, "folder"):
                seen[name] = previous
                kept.append(name)  # an experiment whose runs are the ones known
                continue
            if previous is not None and previous[1] == "run" or stamp is not None and _holds_run(path):
                known.update(self.db.execute("SELECT dir, stamp FROM runs WHERE dir = ?", (name,)))
                if stamp is not None:
                    found[name] = stamp  # a run right under the root
                    seen[name] = (stamp, "run")
                continue
            known.update(self._known(name))
            if stamp is None:
                continue  # gone: its runs with it
            seen[name] = (stamp, "folder")  # taken before the listing: a run added meanwhile changes it again
            for run in _dirs(path):
                rel = f"{name}/{run.name}"
                try:
                    run_stamp = _stamp(run.stat(), now)
                except OSError:
                    continue
                found[rel] = run_stamp  # whether it holds a run is seen when it is read
        if kept:
            kept_set = set(kept)
            unsettled = {rel: st for rel, st in self._known().items() if rel.partition("/")[0] in kept_set}
            known.update(unsettled)
            for rel in unsettled:
                try:
                    found[rel] = _stamp(os.stat(os.path.join(root, rel)), now)
                except OSError:
                    pass  # gone
        return found, known, seen

    def _scan_url(self, known: Dict[str, str]) -> Dict[str, str]:
        from ..storage.remote import Remote, fingerprint

        self._remote = remote = Remote(self.url, self.storage_options)
        runs: Dict[str, Dict[str, Any]] = {}
        prefix = remote.root + "/"
        for key, info in remote.listing().items():
            rel, _, name = key[len(prefix):].rpartition("/") if key.startswith(prefix) else ("", "", "")
            if rel.count("/") < 2 and (RANK_FILE.match(name) or SUMMARY_FILE.match(name)):
                runs.setdefault(rel or ".", {})[name] = (key, fingerprint(info))
        self._objects = runs
        return {rel: hashlib.sha1(repr(sorted((n, f) for n, (_k, f) in objects.items())).encode()).hexdigest()
                for rel, objects in runs.items() if any(RANK_FILE.match(n) for n in objects)}

    def _read(self, rel: str) -> Optional[Entry]:
        """The entry of one run (None: the folder holds no run); a run that cannot be read is an entry
        saying why (shown, never raised)."""
        if self.url is not None:
            return self._read_url(rel)
        run_dir = self.root if rel == "." else self.root / rel
        if not rank_files(run_dir):
            return None
        try:
            return read_entry(run_dir)
        except Prov4MLError as exc:
            return _unreadable(run_dir, str(exc))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # cut short, or not ours
            return _unreadable(run_dir, f"{type(exc).__name__}: {exc}")

    def _read_url(self, rel: str) -> Entry:
        objects = self._objects[rel]
        run_dir = Path(self.url.split("://", 1)[1]) / rel  # the label readers see; never a local folder
        try:
            data = self._remote.fs.cat([key for key, _f in objects.values()])
        except Exception as exc:
            return _unreadable(run_dir, f"cannot read {self.url}/{rel}: {exc}")
        by_name = {name: data.get(key) for name, (key, _f) in objects.items()}
        documents = {int(m.group(1)): n for n in by_name if (m := RANK_FILE.match(n))}
        summaries = {}
        from ..provenance.summary import read_summary, summary_name

        try:
            for rank in documents:
                raw = by_name.get(summary_name(rank))
                if raw is None:
                    break
                summaries[rank] = read_summary(f"{self.url}/{rel}/{summary_name(rank)}", raw)
            else:
                return entry_of(run_dir, summaries, journal=False)
            with tempfile.TemporaryDirectory() as tmp:  # documents without summaries: read as files
                docs = {}
                for rank, name in sorted(documents.items()):
                    Path(tmp, name).write_bytes(by_name[name])
                    docs[rank] = read_rank(Path(tmp, name), rank, details=False)
                return Entry(merge_ranks(run_dir, docs, journal=False), from_summaries=False)
        except Prov4MLError as exc:
            return _unreadable(run_dir, str(exc))

    def _delete(self, rel: str) -> None:
        row = self.db.execute("SELECT id FROM runs WHERE dir = ?", (rel,)).fetchone()
        if row is not None:
            for table, column in (("params", "run"), ("metrics", "run"), ("files", "run"), ("runs", "id")):
                self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", row)

    def _insert(self, rel: str, stamp: str, order: tuple, entry: Entry) -> None:
        r = entry.record
        figures = metric_figures(r)
        run_num = r.run_id if isinstance(r.run_id, int) and not isinstance(r.run_id, bool) and abs(r.run_id) < 2 ** 63 \
            else None
        needs, data = json.dumps(r.needs_recovery), _record_json(r, figures)
        cur = self.db.execute(
            'INSERT INTO runs (dir, stamp, o1, o2, o3, o4, o5, o6, label, experiment, run_num, run_text, status, '
            'recorded_status, start, start_text, "end", end_text, nranks, needs, owners, data, settled, crc) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rel, stamp, *order, r.label, r.experiment, run_num,
             str(r.run_id), r.status, r.recorded_status, _ts(r.start), _text(r.start), _ts(r.end), _text(r.end),
             len(r.ranks), needs, json.dumps({str(k): v for k, v in entry.owners.items()}),
             data, int(r.recorded_status in ENDED and not stamp.startswith("racy")), _crc(rel, r.status, needs, data)))
        run = cur.lastrowid
        self.db.executemany("INSERT INTO params VALUES (?, ?, ?, ?, ?)",
                            [(run, name, *_typed(value)) for name, value in r.params.items()])
        rows = []
        for key, fig in figures.items():
            values = [fig.get(s) for s in _STATS]
            nan = sum(1 << i for i, v in enumerate(values) if isinstance(v, float) and v != v)
            rows.append((run, key, fig.get("source"), nan, *[None if isinstance(v, float) and v != v else v
                                                             for v in values]))
        self.db.executemany(f"INSERT INTO metrics VALUES (?, ?, ?, ?, {', '.join('?' * len(_STATS))})", rows)
        self.db.executemany(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run, f.get("rank"), int(bool(f.get("used"))), f.get("sha256"), f.get("size"), f.get("role"),
              f.get("name"), f.get("location"), f.get("original")) for f in entry.files])

    def _rechecked(self, rel: str, data: Dict[str, Any]) -> Tuple[str, List[int]]:
        """A running run's status and ranks to recover, as its journal says them now."""
        needs = _status.needs_recovery(self.root if rel == "." else self.root / rel, quiet=True)
        status = data["recorded_status"]
        if needs and _status.SEVERITY.get(status, 1) < _status.SEVERITY["killed"]:
            status = "killed"
        return status, needs

    # -------------------------------------------------------------------------------------------- reading
    @_resilient
    def fields(self) -> Fields:
        """The parameter names and metrics the indexed runs have (for ``--where`` and ``--sort``)."""
        params = [n for (n,) in self.db.execute("SELECT DISTINCT name FROM params")]
        metrics = [k for (k,) in self.db.execute("SELECT DISTINCT key FROM metrics")]
        return Fields(params, metrics)

    @_resilient
    def select(self, where: Sequence[Condition] = (), sort: Optional[Resolved] = None, desc: bool = False,
               limit: Optional[int] = None, last: bool = False, series: bool = False,
               folder: Optional[str] = None) -> Tuple[List[Row], int]:
        """The runs matching every bound condition in ``where``, ordered, and how many match in all.

        Each run comes with its metric figures (:func:`prov4ml.runs.metric_figures`);
        ``series=True`` fills each record's ``series`` too. ``folder``: only
        the runs in that folder under the root (``""``: those right under it).

        Without ``sort`` the order is experiment then run id; ``limit`` keeps
        the first runs (``last=True``: the last ones, still in order).
        """
        now = time.time()
        clauses, args = [], []
        if folder == "":
            clauses.append("instr(r.dir, '/') = 0")
        elif folder is not None:
            clauses.append("r.dir > ? AND r.dir < ?")
            args += [folder + "/", folder + "0"]
        for condition in where:
            sql, values = _condition(condition, now)
            clauses.append(sql)
            args += values
        where_sql = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        total = self.db.execute(f"SELECT COUNT(*) FROM runs r {where_sql}", args).fetchone()[0]
        order = "r.o1, r.o2, r.o3, r.o4, r.o5, r.o6"
        join, join_args = "", []
        if sort is not None:
            join, join_args, (k, num, text) = _sort_value(sort, now)
            direction = " DESC" if desc else ""
            order = (f"{k} IS NULL, {k} = 'x', CASE {k} WHEN 'n' THEN 0 WHEN 't' THEN 2 ELSE 3 END{direction}, "
                     f"{num}{direction}, {text}{direction}, {order}")
        elif last and limit is not None:
            order = "r.o1 DESC, r.o2 DESC, r.o3 DESC, r.o4 DESC, r.o5 DESC, r.o6 DESC"
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self.db.execute(
            f"SELECT r.dir, r.status, r.needs, r.data, r.crc FROM runs r {join} {where_sql} ORDER BY {order}{tail}",
            join_args + args).fetchall()
        if sort is None and last and limit is not None:
            rows.reverse()
        out = []
        for rel, status, needs, data, crc in rows:
            if _crc(rel, status, needs, data) != crc:
                raise Corrupt(f"the index's row of {rel} fails its checksum")
            out.append(_record_of(self._run_dir(rel), json.loads(data), status, json.loads(needs), series))
        return out, total

    @_resilient
    def files_of(self, run: str) -> List[Dict[str, Any]]:
        """The files the run labelled ``run`` (``experiment/run_N``) generated and used, rank by rank."""
        keys = ("rank", "used", "sha256", "size", "role", "name", "location", "original")
        rows = self.db.execute(
            "SELECT f.rank, f.used, f.sha256, f.size, f.role, f.name, f.location, f.original FROM files f "
            "JOIN runs r ON r.id = f.run WHERE r.label = ? ORDER BY f.rank, f.rowid", (run,)).fetchall()
        return [{**dict(zip(keys, row)), "run": run, "used": bool(row[1])} for row in rows]

    def label_of(self, run_dir: PathLike) -> Optional[str]:
        """The label (``experiment/run_N``) of the indexed run in ``run_dir`` (None when it is not under the root)."""
        if self.root is None:
            return None
        try:
            rel = Path(run_dir).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        row = self.db.execute("SELECT label FROM runs WHERE dir = ?", (rel,)).fetchone()
        return None if row is None else row[0]

    @_resilient
    def run_info(self, run: str) -> Dict[str, Any]:
        """The status and source commit of the run labelled ``run`` (empty when it is not indexed)."""
        row = self.db.execute("SELECT status, data FROM runs WHERE label = ?", (run,)).fetchone()
        if row is None:
            return {}
        source = json.loads(row[1]).get("source") or {}
        return {"status": row[0], "commit": source.get("git_commit") or source.get("commit")}

    @_resilient
    def counts(self) -> Dict[str, Dict[str, int]]:
        """``{folder: {status: runs}}`` (``""``: the runs right under the root); a running run whose
        process died counts as ``killed (needs recover)``."""
        out: Dict[str, Dict[str, int]] = {}
        for folder, status, n in self.db.execute(
                "SELECT CASE WHEN instr(dir, '/') = 0 THEN '' ELSE substr(dir, 1, instr(dir, '/') - 1) END, "
                "CASE WHEN recorded_status = 'running' AND needs != '[]' THEN 'killed (needs recover)' "
                "ELSE recorded_status END, COUNT(*) FROM runs GROUP BY 1, 2"):
            out.setdefault(folder, {})[status] = n
        return out

    def _run_dir(self, rel: str) -> Path:
        if self.url is not None:
            return Path(self.url.split("://", 1)[1]) / rel
        return self.root if rel == "." else self.root / rel

    def runs(self) -> List[RunRecord]:
        """Every indexed run, in experiment then run-id order."""
        return [record for record, _figures in self.select(series=True)[0]]

    @_resilient
    def files(self, sha256: str) -> List[Dict[str, Any]]:
        """The runs' files with this content digest: ``{run, run_dir, rank, used, role, name, location, ...}``."""
        rows = self.db.execute(
            "SELECT r.dir, r.label, f.rank, f.used, f.role, f.name, f.location, f.original, f.size FROM files f "
            "JOIN runs r ON r.id = f.run WHERE f.sha256 = ? ORDER BY r.o1, r.o2, r.o3, r.o4, r.o5, r.o6, f.rank",
            (sha256,)).fetchall()
        keys = ("run_dir", "run", "rank", "used", "role", "name", "location", "original", "size")
        return [{**dict(zip(keys, row)), "run_dir": self._run_dir(row[0]), "used": bool(row[3])} for row in rows]


class Corrupt(sqlite3.DatabaseError):
    """The database opened, but what it holds is not what this module wrote: it is made again."""


def _crc(rel: str, status: str, needs: str, data: str) -> int:
    return zlib.crc32(f"{rel}\0{status}\0{needs}\0{data}".encode("utf-8", "surrogatepass"))


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# ------------------------------------------------------------------------------------------------ scanning
def _dirs(path: PathLike) -> List[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return [e for e in it if not e.name.startswith(".") and e.is_dir()]
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []


def _holds_run(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return any(RANK_FILE.match(e.name) for e in it)
    except OSError:
        return False


def _stamp(st: os.stat_result, now_ns: int) -> str:
    if now_ns - st.st_mtime_ns < RACY_S * 1e9:
        return f"racy {now_ns}"  # never equal to a later stamp: read again next time
    return f"{st.st_ino}:{st.st_mtime_ns}"


def _rel_order(rel: str) -> tuple:
    """The sort columns of a run directory relative to the root: its folder's place, then its own."""
    if rel == ".":
        return (0, 0, "", -1, 0, "")
    first, _, second = rel.partition("/")
    return _order(first) + (_order(second) if second else (-1, 0, ""))


def _order(name: str) -> Tuple[int, int, str]:
    """Run folders by id, then other folders by name (as :func:`prov4ml.runs.find_run_dirs` lists them)."""
    if name.startswith("run_") and name[4:].isdigit():
        return (0, int(name[4:]), "")
    return (1, 0, name)


def _unreadable(run_dir: Path, why: str) -> Entry:
    record = RunRecord(run_dir=run_dir, experiment=None, run_id=run_dir.name, status="unreadable", ranks=[],
                       error_message=why, recorded_status="unreadable")
    return Entry(record, from_summaries=False)


# ------------------------------------------------------------------------------------------------ records as JSON
_RECORD_FIELDS = ("experiment", "run_id", "ranks", "final_folds", "error_type", "error_message", "command", "user",
                  "host", "recorded_status", "source")
_SERIES_FIELDS = ("name", "context", "rank", "count", "nan_count", "min", "max", "last", "mean", "first_step",
                  "last_step", "unit", "source", "sampler", "location")


def _record_json(r: RunRecord, figures: Dict[str, Dict[str, Any]]) -> str:
    """The record as the index keeps it (JSON with NaN and infinities as Python writes them: only this module reads it)."""
    data: Dict[str, Any] = {f: getattr(r, f) for f in _RECORD_FIELDS}
    data["start"], data["end"] = _text(r.start, iso=True), _text(r.end, iso=True)
    data["params"] = {k: encode(v) for k, v in r.params.items()}
    data["final_metrics"] = {k: encode(v) for k, v in r.final_metrics.items()}
    data["series"] = [[getattr(s, f) for f in _SERIES_FIELDS] for s in r.series]
    data["figures"] = figures
    return json.dumps(data)


def _record_of(run_dir: Path, data: Dict[str, Any], status: str, needs: List[int], series: bool) -> Row:
    record = RunRecord(run_dir=run_dir, status=status, needs_recovery=needs,
                       **{f: data[f] for f in _RECORD_FIELDS})
    record.start = _time(data["start"])
    record.end = _time(data["end"])
    record.params = {k: decode(v) for k, v in data["params"].items()}
    record.final_metrics = {k: decode(v) for k, v in data["final_metrics"].items()}
    if series:
        record.series = [Series(**dict(zip(_SERIES_FIELDS, s))) for s in data["series"]]
    return record, data["figures"]


def _ts(t: Optional[datetime]) -> Optional[float]:
    return None if t is None else t.timestamp()


def _text(t: Optional[datetime], iso: bool = False) -> Optional[str]:
    return None if t is None else (t.isoformat() if iso else str(t))


def _time(text: Optional[str]) -> Optional[datetime]:
    return None if text is None else datetime.fromisoformat(text)


# ------------------------------------------------------------------------------------------------ fields as SQL
def _typed(value: Any) -> Tuple[Optional[str], Optional[float], Optional[str]]:
    """``(kind, number, text)`` of a value: kind n(umber), x (NaN), t(ime), b(oolean), s(tring); None: missing."""
    if value is None:
        return ("s", None, "None")  # a parameter logged as None: as text, as `ls` compares it
    if isinstance(value, bool):
        return ("b", None, str(value))
    if isinstance(value, (int, float)):
        if value != value:
            return ("x", None, "nan")
        try:
            return ("n", float(value) if isinstance(value, int) and abs(value) >= 2 ** 63 else value, str(value))
        except OverflowError:  # an int beyond a double: compared as text
            return ("s", None, str(value))
    if isinstance(value, datetime):
        return ("t", value.timestamp(), str(value))
    return ("s", None, str(value))


def _fixed(name: str, now: float) -> Tuple[str, str, str]:
    """``(kind, number, text)`` SQL expressions of a fixed field of run ``r``."""
    if name in ("run", "experiment", "status"):
        column = {"run": "r.label", "experiment": "r.experiment", "status": "r.status"}[name]
        return (f"CASE WHEN {column} IS NOT NULL THEN 's' END", "NULL", column)
    if name == "run_id":
        return ("CASE WHEN r.run_num IS NOT NULL THEN 'n' ELSE 's' END", "r.run_num", "r.run_text")
    if name in ("start", "end"):
        column = f'r."{name}"'
        return (f"CASE WHEN {column} IS NOT NULL THEN 't' END", column, f"r.{name}_text")
    if name == "ranks":
        return ("'n'", "r.nranks", "CAST(r.nranks AS TEXT)")
    span = f"(COALESCE(r.\"end\", CASE WHEN r.status = 'running' THEN {now!r} END) - r.start)"
    return (f"CASE WHEN {span} IS NOT NULL THEN 'n' END", span, "''")


def _metric(alias: str, stat: str) -> Tuple[str, str, str]:
    bit = 1 << _STATS.index(stat)
    return (f"CASE WHEN {alias}.{stat} IS NOT NULL THEN 'n' WHEN {alias}.nan & {bit} THEN 'x' END",
            f"{alias}.{stat}", f"CASE WHEN {alias}.nan & {bit} THEN 'nan' ELSE '' END")


def _compare(c: Condition, k: str, num: str, text: str) -> Tuple[str, List[Any]]:
    """SQL that holds where ``c`` holds for the value ``(k, num, text)``, as :class:`Condition` decides in Python."""
    op = {"==": "=", "!=": "!="}.get(c.op_text, c.op_text)
    parts: List[str] = []
    args: List[Any] = []
    if c.number is not None and c.number != c.number:  # NaN: equal to nothing, different from every number
        if c.op_text == "!=":
            parts.append(f"{k} IN ('n', 'x')")
    elif c.number is not None:
        parts.append(f"({k} = 'n' AND {num} {op} ?)")
        args.append(c.number if not isinstance(c.number, int) or abs(c.number) < 2 ** 63 else float(c.number))
        if c.op_text == "!=":
            parts.append(f"{k} = 'x'")  # NaN differs from every number
    if c.time is not None:
        parts.append(f"({k} = 't' AND {num} {op} ?)")
        args.append(c.time.timestamp())
    if c.op_text in ("==", "!="):
        parts.append(f"({k} = 'b' AND lower({text}) {op} lower(?))")
        args.append(c.raw)
        kinds = ["s"] + (["n", "x"] if c.number is None else []) + (["t"] if c.time is None else [])
        parts.append(f"({k} IN ({', '.join(repr(x) for x in kinds)}) AND {text} {op} ?)")
        args.append(c.raw)
    return ("(" + " OR ".join(parts) + ")" if parts else "0"), args


def _condition(c: Condition, now: float) -> Tuple[str, List[Any]]:
    kind, name, stat = c.resolved  # type: ignore[misc]
    if kind == "fixed":
        return _compare(c, *_fixed(name, now))
    if kind == "param":
        sql, args = _compare(c, "p.k", "p.num", "p.text")
        return f"EXISTS (SELECT 1 FROM params p WHERE p.run = r.id AND p.name = ? AND {sql})", [name] + args
    sql, args = _compare(c, *_metric("m", stat))
    return f"EXISTS (SELECT 1 FROM metrics m WHERE m.run = r.id AND m.key = ? AND {sql})", [name] + args


def _sort_value(field: Resolved, now: float) -> Tuple[str, List[Any], Tuple[str, str, str]]:
    kind, name, stat = field
    if kind == "fixed":
        return "", [], _fixed(name, now)
    if kind == "param":
        return "LEFT JOIN params s ON s.run = r.id AND s.name = ?", [name], ("s.k", "s.num", "s.text")
    return "LEFT JOIN metrics s ON s.run = r.id AND s.key = ?", [name], _metric("s", stat)
