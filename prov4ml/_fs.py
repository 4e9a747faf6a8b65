"""File-system helpers: safe names, atomic writes, hashing."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, IO, Tuple, Union

__all__ = ["slug", "atomic_write", "atomic_write_text", "hash_path", "is_url"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HASHED = re.compile(r"-[0-9a-f]{6}$")
_ATOMIC = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # atomic_write's temporary: mkstemp's 8 random characters


def is_url(path: object) -> bool:
    """True for ``proto://...`` strings (``s3://``, ``gs://``, ``file://``, ...), False for local paths."""
    return isinstance(path, str) and bool(_URL.match(path))


def slug(text: str) -> str:
    """A file-name-safe form of ``text``.

    Characters outside ``[A-Za-z0-9._-]`` become ``_``; when anything was
    replaced, or the name is longer than 80 characters, or it ends like a hashed
    name, it is cut and a short hash of the original is appended, so ``"a/b"``
    and ``"a_b"`` never share a file and no name exceeds what a file system holds.
    """
    safe = _UNSAFE.sub("_", text).strip("._") or "_"
    # A name that already ends like a hashed one is hashed too, so "100%" (100-fae31e) and a
    # literal "100-fae31e" never share a folder.
    if safe != text or len(safe) > 80 or _HASHED.search(safe):  # also well under the 255-byte limit of file systems
        safe = f"{safe[:80]}-{hashlib.sha1(text.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"
    return safe


def is_temporary(rel: str) -> bool:
    """Whether ``rel`` (a '/'-separated path in a run directory) is a temporary of prov4ml's: an atomic write's,
    or in ``metrics/`` a recovery's side file or a conversion's. A file of the user's named ``x.tmp`` is not."""
    name = rel.rpartition("/")[2]
    return bool(_ATOMIC.match(name)) or (rel.startswith("metrics/") and name.endswith((".recovering", ".tmp")))


def remove_if_empty(path: Union[str, Path]) -> None:
    """Remove a metric file that holds no row: empty, or its header line alone (one made ahead of rows that
    never came)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return
    if head == b"" or (len(head) < 4096 and head.endswith(b"\n") and head.count(b"\n") == 1):
        try:
            os.unlink(path)
        except OSError:
            pass


def atomic_write(path: Union[str, Path], write: Callable[[IO[bytes]], None], fsync: bool = False) -> Path:
    """Write through ``write(fh)`` into a temporary file, then rename it over ``path``.

    Readers see the old file or the new one, never half of one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are meant to be read
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: Union[str, Path], text: str, fsync: bool = False) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), fsync=fsync)


def hash_path(path: Path) -> Tuple[str, int]:
    """SHA-256 and size in bytes of a file, or of a directory's files (names and contents)."""
    digest = hashlib.sha256()
    if path.is_dir():
        size = 0
        for sub in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(sub.relative_to(path).as_posix().encode() + b"\0")
            size += _feed(digest, sub)
        return digest.hexdigest(), size
    size = _feed(digest, path)
    return digest.hexdigest(), size


def _feed(digest, path: Path) -> int:
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size
