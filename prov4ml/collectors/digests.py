"""Full content digests of datasets, computed off the training thread and cached per machine.

``log_dataset`` returns after a bounded digest (:func:`prov4ml.collectors.dataset.sampled_digest`);
the SHA-256 of the dataset's bytes (a file's, or a folder's names and contents,
as :func:`prov4ml._fs.hash_path` makes it for artifacts, so a dataset file and
the artifact another run wrote meet in one content entity) is computed by one
daemon thread per process. A digest is cached in
``~/.cache/prov4ml/digests.sqlite`` (``$XDG_CACHE_HOME`` honoured) under the
path and what its listing says (each file's name, size, modification time and
inode), so a dataset is read in full once per machine until it changes.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from .._fs import hash_path

__all__ = ["DigestWorker", "full_digest", "cache_path"]

Done = Callable[[str], None]


def cache_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "prov4ml" / "digests.sqlite"


def _listing(path: Path) -> str:
    """What changes when the bytes under ``path`` may have: each file's name, size, mtime and inode."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    parts = []
    for p in files:
        st = p.stat()
        parts.append(f"{p.relative_to(path.parent).as_posix()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _cached(path: Path, key: str) -> Optional[str]:
    try:
        with sqlite3.connect(cache_path(), timeout=10) as db:
            row = db.execute("SELECT sha256 FROM digests WHERE path = ? AND listing = ?", (str(path), key)).fetchone()
        return None if row is None else row[0]
    except sqlite3.Error:
        return None  # no cache yet, or one that cannot be read: the digest is computed


def _remember(path: Path, key: str, sha256: str) -> None:
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(cache_path(), timeout=10) as db:
            db.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, listing TEXT, sha256 TEXT)")
            db.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?)", (str(path), key, sha256))
    except (sqlite3.Error, OSError):
        pass  # a cache that cannot be written costs a second reading, never a digest


def full_digest(paths: Sequence[Path]) -> str:
    """The SHA-256 of the dataset's bytes: of its one file or folder, else of its parts' names and digests."""
    digests: List[Tuple[str, str]] = []
    for path in paths:
        key = _listing(path)
        sha = _cached(path, key)
        if sha is None:
            sha = hash_path(path)[0]
            if _listing(path) == key:  # unchanged while it was read
                _remember(path, key, sha)
        digests.append((path.name, sha))
    if len(digests) == 1:
        return digests[0][1]
    return hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in digests).encode("utf-8", "surrogatepass")).hexdigest()


class DigestWorker:
    """One daemon thread computing full digests in turn; ``wait`` returns once every one asked is done."""

    def __init__(self) -> None:
        self._queue: "queue.Queue[Tuple[Sequence[Path], Done]]" = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self.errors: List[str] = []

    def submit(self, paths: Sequence[Path], done: Done) -> None:
        with self._cond:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="prov4ml-digests", daemon=True)
                self._thread.start()
        self._queue.put((paths, done))

    def wait(self, timeout: float) -> bool:
        """True when every digest asked for is done (and given to its callback) within ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def _loop(self) -> None:
        while True:
            paths, done = self._queue.get()
            try:
                done(full_digest(paths))
            except Exception as exc:  # a file gone or unreadable: the sampled digest stays
                self.errors.append(f"{', '.join(map(str, paths))}: {exc}")
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()
