"""The mirror: copies a run's files from its staging directory to the bucket, off the training thread.

One daemon thread per run. ``push()`` (called after every document refresh)
only wakes it. A pass walks the run directory and uploads the files whose
size or mtime changed since they were last sent (the newest journal segment
is also compared by checksum: it is written through a memory mapping, which
does not reliably move the mtime); the PROV-JSON is read first and sent
last, so the bucket's document never claims a point its metric files lack. Objects of files this
mirror sent that are gone since (the journal, after a clean ``end_run``)
are deleted. A mirror of one rank sends that rank's files only, so ranks
sharing a host never overwrite each other's objects.

A pass that fails stops at the failing file (an unreachable endpoint costs
one timeout, not one per file), is logged once as a warning, and is retried
with a growing pause; local files are never touched.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from .._fs import atomic_write_text, is_temporary
from ..metrics.journal import SPARE
from ..records.state import STATE_DIR
from .remote import CLAIM_FILE, Remote, _locked, staging_root

__all__ = ["Mirror", "owner_rank", "run_dirs"]

log = logging.getLogger("prov4ml")

_OWNED = [re.compile(p) for p in (
    r"^prov_rank(\d+)\.", r"^summary_rank(\d+)\.", r"^\.rank(\d+)\.claimed$", r"^metrics/.*_rank(\d+)\.[^/]+$",
    r"^artifacts/rank(\d+)/", r"^\.prov4ml/rank(\d+)/",
)]
_RETRY = (1.0, 30.0)  # first and longest pause before a failed pass is tried again
#: set when the interpreter starts to exit, before its thread pools stop (which the stores' drivers need)
_EXITING = threading.Event()
#: the last copy of a run ended at exit (atexit): made by a fresh interpreter, whose drivers work
_CHILD = ("import json, sys; a = json.loads(sys.argv[1]); sys.path[:0] = a['path']; "
          "from prov4ml.storage import push; push(a['url'], a['options'])")
_DUTY = 0.2  # the most of the time the mirror spends uploading, on a slow link
#: a rank's state files sent before start_run returns (``Mirror._seed``)
_SEED = ("owner.json", "state.pickle")


def _watch_exit() -> None:
    if getattr(_watch_exit, "done", False):
        return
    _watch_exit.done = True  # type: ignore[attr-defined]
    try:
        threading._register_atexit(_EXITING.set)  # runs before concurrent.futures stops its pools
    except (AttributeError, RuntimeError):  # already exiting, or an interpreter without the hook
        _EXITING.set()


def owner_rank(rel: str) -> int:
    """The rank a run file belongs to, by the run layout (docs/formats.md); rank 0 for shared files."""
    for pattern in _OWNED:
        m = pattern.match(rel)
        if m:
            return int(m.group(1))
    return 0


def _files(run_dir: Path) -> Iterator[Tuple[str, Path, bool]]:
    """(relative path, path, whether it is written through a memory mapping) of every finished file."""
    for folder, dirs, names in os.walk(run_dir):
        dirs[:] = [d for d in dirs if not (d.startswith(".") and d.endswith(".partial"))]
        segments = sorted(n for n in names if n.startswith("seg."))
        for name in names:
            path = Path(folder, name)
            rel = path.relative_to(run_dir).as_posix()
            if is_temporary(rel) or name == SPARE:  # the spare segment holds nothing yet
                continue
            yield rel, path, bool(segments) and name == segments[-1]


def _stamp(path: Path, mapped: bool) -> tuple:
    st = path.stat()
    if not mapped:
        return (st.st_size, st.st_mtime_ns)
    with open(path, "rb") as fh:
        return (st.st_size, st.st_mtime_ns, zlib.crc32(fh.read()))


class Mirror:
    """Keeps ``remote``'s copy of ``run_dir`` up to date; ``rank=None`` sends every rank's files."""

    def __init__(self, remote: Remote, run_dir: Path, rank: Optional[int] = None, background: bool = True) -> None:
        self.remote = remote
        self.run_dir = Path(run_dir)
        self.rank = rank
        self.url = remote.url_of(self.run_dir)
        self.errors: List[str] = []
        self.sent = 0  # files uploaded so far
        self.closed: Optional[bool] = None  # after close(): whether the last copy was completed
        self._key = remote.key(self.run_dir)
        self._record = _Record(remote, self.run_dir)
        #: relative path -> stamp of the version in the bucket (this host's files of this rank)
        self._sent: Dict[str, tuple] = {k: v for k, v in self._record.load().items() if self._mine(k)}
        self._cond = threading.Condition()
        self._asked = 0  # passes asked for
        self._done = 0  # the newest ask that a successful pass covered
        self._closing = False
        self._stop = False
        self._pid = os.getpid()
        self._thread: Optional[threading.Thread] = None
        if background:
            _watch_exit()
            self._seed()
            self._thread = threading.Thread(target=self._loop, name="prov4ml-mirror", daemon=True)
            self._thread.start()
            self.push()

    # -- any thread --------------------------------------------------------
    def push(self) -> None:
        """Ask for a pass; returns at once."""
        with self._cond:
            self._asked += 1
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """A last pass (retried until ``timeout`` seconds have passed); True when the bucket is up to date."""
        if self._thread is None or os.getpid() != self._pid:  # a forked child never sends its parent's run
            return True
        if self.closed is not None:
            return self.closed
        if _EXITING.is_set():
            return self._close_in_child(timeout)
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._asked += 1
            target = self._asked
            self._cond.notify_all()
            while self._done < target and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            self._stop = True  # a pass still running finishes in the background; none starts after it
            self._cond.notify_all()
            self.closed = self._done >= target
            return self.closed

    def _close_in_child(self, timeout: float) -> bool:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout / 4)  # a pass in flight could send an older file after the child's
        try:
            arg = json.dumps({"url": self.url, "path": sys.path, "options": self.remote.storage_options})
        except TypeError:  # storage_options a child cannot be given: try here
            self.closed = False
            return self.closed
        try:
            child = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, timeout=timeout)
            ok, why = child.returncode == 0, (child.stderr.strip().splitlines() or ["no message"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, why = False, str(exc)
        if not ok:
            self.errors.append(f"could not copy the run to {self.url} at exit ({why})")
        self.closed = ok
        return ok

    def sync(self) -> int:
        """One pass in the calling thread; raises the first upload error. Returns the files uploaded."""
        before = self.sent
        self._pass()
        return self.sent - before

    def _seed(self) -> None:
        """Send what ``recover`` needs to rebuild a rank's document (its owner and its records) before
        ``start_run`` returns: a rank killed at once is still a run any host can complete."""
        if self.rank is None:
            return
        for name in _SEED:
            rel = f"{STATE_DIR}/rank{self.rank}/{name}"
            try:
                stamp = _stamp(self.run_dir / rel, False)
                self.remote.upload(self.run_dir / rel, f"{self._key}/{rel}")
            except FileNotFoundError:
                continue
            except Exception as exc:  # the first pass of the thread tries again
                self._report(exc)
                return
            self._sent[rel] = stamp
            self.sent += 1
        self._record.save(self._sent, self._mine)

    # -- the thread --------------------------------------------------------
    def _loop(self) -> None:
        pause = _RETRY[0]
        while True:
            with self._cond:
                while self._done == self._asked and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                target = self._asked
            began = time.monotonic()
            try:
                self._pass()
            except Exception as exc:  # an unreachable or refusing store: keep the local files, try again
                if _EXITING.is_set():
                    return  # the drivers stop with the interpreter: the last copy is made by a child (close)
                self._report(exc)
                with self._cond:
                    wake = time.monotonic() + (_RETRY[0] if self._closing else pause)
                    while not self._stop and time.monotonic() < wake:  # pushes do not shorten the pause
                        self._cond.wait(wake - time.monotonic())
                pause = min(pause * 2, _RETRY[1])
                continue
            pause = _RETRY[0]
            with self._cond:
                self._done = max(self._done, target)
                self._cond.notify_all()
                # growing metric files are sent whole each time: keep uploads to a share of the time
                rest = time.monotonic() + (time.monotonic() - began) * (1 / _DUTY - 1)
                while not self._closing and not self._stop and time.monotonic() < rest:
                    self._cond.wait(rest - time.monotonic())

    def _report(self, exc: BaseException) -> None:
        message = (f"could not copy the run to {self.url} ({type(exc).__name__}: {exc}); the run goes on in "
                   f"{self.run_dir} and the copy is retried")
        if not self.errors or self.errors[-1] != message:
            log.warning("prov4ml: %s", message)
        self.errors = self.errors[-19:] + [message]

    def _mine(self, rel: str) -> bool:
        return self.rank is None or owner_rank(rel) == self.rank

    def _pass(self) -> None:
        # The documents are read before anything else is looked at: a document describes what the metric
        # files held when it was written, and they only grow, so what this pass sends holds what it claims.
        documents = {}
        for path in self.run_dir.glob("prov_rank*.json"):
            if self._mine(path.name):
                try:
                    documents[path.name] = (_stamp(path, False), path.read_bytes())
                except FileNotFoundError:
                    pass
        seen: Dict[str, tuple] = {}
        todo = []
        for rel, path, mapped in _files(self.run_dir):
            if not self._mine(rel):
                continue
            try:
                seen[rel] = documents[rel][0] if rel in documents else _stamp(path, mapped)
            except FileNotFoundError:  # replaced or removed while we looked
                continue
            if self._sent.get(rel) != seen[rel]:
                todo.append(rel)
        gone = [r for r in self._sent if r not in seen]
        if not todo and not gone:
            return
        for rel in todo:  # written ahead: a pass cut short (an exit, a kill) leaves these marked as maybe sent
            self._sent.setdefault(rel, ())
        self._record.save(self._sent, self._mine)
        try:
            # the documents last (they claim what the rest holds); the big journal segments after the small files
            for rel in sorted(todo, key=lambda r: (r in documents, "/seg." in r, r)):
                try:
                    self.remote.upload(self.run_dir / rel, f"{self._key}/{rel}", documents.get(rel, (None, None))[1])
                except FileNotFoundError:
                    if (self.run_dir / rel).exists():
                        raise
                    continue
                self._sent[rel] = seen[rel]
                self.sent += 1
            for rel in gone:
                self.remote.remove(f"{self._key}/{rel}")
                del self._sent[rel]
        finally:
            self._record.save(self._sent, self._mine)


class _Record:
    """What this host put in the bucket under one run directory, for later mirrors of it.

    ``<staging>/.sent/<protocol>/<bucket>/<prefix>/<experiment>/run_<id>.json``:
    ``push`` after an outage and ``recover`` after a kill send only what
    changed, and delete the objects of files that are gone here (the journal)
    but never objects that another host put there. Ranks sharing a host share
    the file, each updating its own entries under a lock.
    """

    def __init__(self, remote: Remote, run_dir: Path) -> None:
        self.path = staging_root() / ".sent" / remote.protocol / f"{remote.key(run_dir)}.json"

    def load(self) -> Dict[str, tuple]:
        try:
            return {k: tuple(v) for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def save(self, sent: Dict[str, tuple], mine) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_suffix(".lock")):
            entries = {k: v for k, v in self.load().items() if not mine(k)}
            entries.update(sent)
            atomic_write_text(self.path, json.dumps(entries))


def run_dirs(directory: Path) -> Iterator[Path]:
    """``directory`` if it is a run directory, else the run directories under it."""
    if (directory / CLAIM_FILE).exists() or any(directory.glob("prov_rank*.json")) or (directory / STATE_DIR).is_dir():
        yield directory
        return
    for sub in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from run_dirs(sub)
