"""A run directory on object storage: its URL, its local staging copy, and the copy from the bucket.

A ``provenance_save_dir`` such as ``s3://bucket/prefix`` (any fsspec URL) is
recorded into a local staging directory, ``$PROV4ML_STAGING`` or else
``~/.cache/prov4ml/staging`` (``$XDG_CACHE_HOME`` is honoured), at
``<staging>/<protocol>/<bucket>/<prefix>/``: the same place for the run that
writes it and for every reader on the host, so a reader (or ``recover``) on
the recording host sees the freshest journal.

``pull`` brings the remote copy into that directory. A file is downloaded
when the host has none, or when the remote object changed since this host
last downloaded it and the local file is still that download; a file
written here by a run (which the bucket may hold an older copy of) is never
overwritten. The downloads are remembered, per bucket, in
``<staging>/.pulled/<protocol>/<bucket>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from .._fs import atomic_write_text, is_url
from .._optional import require
from ..exceptions import InvalidValueError, MissingDependencyError, StorageError

__all__ = ["is_url", "staging_root", "Remote", "CLAIM_FILE", "is_lease"]

#: the marker object whose create-if-absent write gives a run id to one run only
CLAIM_FILE = ".run.claimed"
#: a rank's lease (``lease.py``): read from the bucket when needed, never copied to a host
_LEASE = re.compile(r"(^|/)\.prov4ml/rank\d+/lease\.json$")


def is_lease(key: str) -> bool:
    """True for the key (or relative path) of a rank's lease object."""
    return bool(_LEASE.search(key))


def staging_root() -> Path:
    """Where runs recorded to a URL are written first (``$PROV4ML_STAGING``, else the user's cache)."""
    env = os.environ.get("PROV4ML_STAGING")
    if env:
        return Path(env).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(cache) / "prov4ml" / "staging").resolve()


def fingerprint(info: Dict[str, Any]) -> str:
    """What identifies one version of a remote object (its ETag where the store has one)."""
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or ""
    when = info.get("LastModified") or info.get("mtime") or info.get("updated") or ""
    return f"{tag}|{info.get('size')}|{when}"


class Remote:
    """One URL, the fsspec file system that reaches it, and its staging directory."""

    def __init__(self, url: str, storage_options: Optional[Dict[str, Any]] = None) -> None:
        fsspec = require("fsspec", "s3", url)
        self.storage_options = storage_options
        options = {"skip_instance_cache": True, **(storage_options or {})}
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:  # fsspec knows the protocol, its driver (s3fs, gcsfs, ...) is missing
            raise MissingDependencyError(f'{url}: {exc} (for s3:// URLs: pip install "prov4ml[s3]")') from None
        except ValueError as exc:
            raise InvalidValueError(f"provenance_save_dir {url!r} is not a URL fsspec knows: {exc}") from None
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.root = root.rstrip("/")
        parts = [p for p in self.root.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise InvalidValueError(f"{url!r} needs a bucket (and may have a prefix), without '.' or '..' parts; "
                                   f"check the URL: {protocol}://BUCKET/PREFIX")
        self.url = url.rstrip("/")
        self.protocol = protocol
        self.local = staging_root() / protocol / Path(*parts)
        self._atomic_rename = protocol in ("file", "local")  # a plain copy onto a file system is not atomic

    # ------------------------------------------------------------ mapping
    def key(self, local: Path) -> str:
        """The remote key of a file or folder under the staging directory."""
        rel = Path(local).resolve().relative_to(self.local).as_posix()
        return self.root if rel == "." else f"{self.root}/{rel}"

    def url_of(self, local: Path) -> str:
        rel = Path(local).resolve().relative_to(self.local).as_posix()
        return self.url if rel == "." else f"{self.url}/{rel}"

    # ------------------------------------------------------------ writing
    def upload(self, path: Path, key: str, data: Optional[bytes] = None) -> None:
        """One file (or ``data`` read from it earlier) to one object, atomically: readers see the old object or the new one."""
        target = f"{key}.{os.getpid()}.uploading" if self._atomic_rename else key  # a file copy is not atomic
        if self._atomic_rename:
            self.fs.makedirs(self.fs._parent(key), exist_ok=True)
        if data is None and path.suffix == ".csv" and path.stat().st_size < 64 << 20:
            data = path.read_bytes()
            data = data[: data.rfind(b"\n") + 1]  # a metric file grows while the run records: its complete lines
        if data is not None:
            self.fs.pipe_file(target, data)
        else:
            self.fs.put_file(str(path), target)
        if self._atomic_rename:
            self.fs.mv(target, key)

    def remove(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(key)

    def claim(self, run_dir: Path, run_id: int) -> bool:
        """Create ``run_<id>/.run.claimed`` here and in the bucket, only if absent there; False if taken.

        Object stores with conditional writes (S3's ``If-None-Match: *``, and
        file systems through ``O_EXCL``) let exactly one of several racing
        runs create the marker, so two hosts never get the same run id.
        """
        marker = run_dir / CLAIM_FILE
        text = json.dumps({"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})
        marker.write_text(text)
        key = self.key(marker)
        try:
            if self._atomic_rename:  # object stores have no folders to make
                self.fs.makedirs(self.fs._parent(key), exist_ok=True)
            with self.fs.open(key, "xb") as fh:
                fh.write(text.encode())
            return True
        except FileExistsError:
            marker.unlink()
            return False
        except Exception as exc:
            marker.unlink()
            raise self.storage_error(self.url_of(marker), exc) from None

    @staticmethod
    def storage_error(url: str, exc: BaseException) -> StorageError:
        """The error for a store that cannot be reached or used, naming what to check."""
        return StorageError(
            f"cannot use {url} ({type(exc).__name__}: {exc}); check the URL, the storage_options, the endpoint "
            "(AWS_ENDPOINT_URL or storage_options={'endpoint_url': ...}) and the credentials (docs/storage.md)"
        )

    def first_free(self, exp_dir: Path) -> int:
        """One more than the highest run id the bucket holds under the experiment."""
        try:
            names = self.fs.ls(self.key(exp_dir), detail=False, refresh=True)
        except FileNotFoundError:
            return 0
        except Exception as exc:
            raise self.storage_error(self.url_of(exp_dir), exc) from None
        ids = [int(m.group(1)) for n in names if (m := re.match(r"^run_(\d+)$", n.rstrip("/").rsplit("/", 1)[-1]))]
        return max(ids, default=-1) + 1

    # ------------------------------------------------------------ reading
    def _exists(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(key))
        except Exception as exc:
            raise self.storage_error(self.url, exc) from None

    def listing(self) -> Dict[str, Dict[str, Any]]:
        """``{key: info}`` of every object under this URL, as the store says it now (empty when none)."""
        self.fs.invalidate_cache()
        try:
            return self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            return {}
        except Exception as exc:
            raise self.storage_error(self.url, exc) from None

    def pull(self, skip: Optional[Callable[[str], bool]] = None, empty_ok: bool = False) -> Path:
        """Bring the remote copy of this URL into the staging directory; returns the local path.

        ``skip(relative key)``: True for objects to leave in the bucket for now (:meth:`fetch` brings one).
        ``empty_ok``: an empty prefix of a bucket that exists is an empty directory (a reader that waits
        for runs), not an error.
        """
        listing = self.listing()
        if not listing and not self.local.exists():
            bucket = self.root.split("/", 1)[0]
            if not self._exists(bucket):
                raise StorageError(f"{self.url}: there is no bucket {bucket!r} at this store; check the URL "
                                   "and the endpoint (AWS_ENDPOINT_URL or storage_options={'endpoint_url': ...})")
            if not empty_ok:
                raise StorageError(f"{self.url} holds nothing; check the URL (a run is <prefix>/<experiment>/run_<id>)")
            self.local.mkdir(parents=True, exist_ok=True)
        with _pulled(self) as seen:
            wanted = {}  # key -> (local path, fingerprint)
            for key, info in listing.items():
                if info.get("type") == "directory" or key.endswith(".uploading") or is_lease(key):
                    continue
                if skip is not None and skip(key[len(self.root):].lstrip("/")):
                    continue
                local = self._local_of(key)
                tag, stamp, known = fingerprint(info), _stat(local), seen.get(key)
                if stamp is None or (known is not None and known[1] == stamp and known[0] != tag):
                    wanted[key] = (local, tag)  # missing here, or changed there and not here
            self._download(wanted, seen)
            prefix = self.root + "/"
            for key in [k for k in seen if k.startswith(prefix) and k not in listing]:
                local = self._local_of(key)
                if _stat(local) == seen[key][1]:
                    local.unlink()  # gone from the bucket, and this host never changed its copy
                del seen[key]
        return self.local

    def fetch(self, local: Path) -> bool:
        """Download the one object whose staging copy is ``local``; False when the bucket has none."""
        key = self.key(local)
        try:
            info = self.fs.info(key)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self.storage_error(self.url_of(local), exc) from None
        if info.get("type") == "directory":
            return False
        with _pulled(self) as seen:
            self._download({key: (local, fingerprint(info))}, seen)
        return True

    def read_head(self, local: Path, size: int) -> bytes:
        """The first ``size`` bytes of the object whose staging copy is ``local``, read from the bucket by
        a ranged request (the rest never crosses); FileNotFoundError when the bucket has no such object."""
        key = self.key(local)
        try:
            return self.fs.cat_file(key, start=0, end=size)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise self.storage_error(self.url_of(local), exc) from None

    def _local_of(self, key: str) -> Path:
        return self.local / key[len(self.root):].lstrip("/")

    def _download(self, wanted: Dict[str, Tuple[Path, str]], seen: Dict[str, Any]) -> None:
        """Every wanted object in one batch (the store's driver fetches them side by side), each file atomically."""
        temps = []
        for key, (local, _) in wanted.items():
            local.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".tmp", dir=local.parent)
            os.close(fd)
            temps.append(tmp)
        try:
            if wanted:
                self.fs.get(list(wanted), temps)
            for tmp, (key, (local, tag)) in zip(temps, wanted.items()):
                os.replace(tmp, local)
                seen[key] = (tag, _stat(local))
        except Exception as exc:
            raise self.storage_error(self.url, exc) from None
        finally:
            for tmp in temps:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)


def _stat(path: Path) -> Optional[Tuple[int, int]]:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_size, st.st_mtime_ns)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` between processes of this host."""
    with open(path, "a") as lock:
        try:
            import fcntl
        except ImportError:  # Windows: one writer at a time is the user's to keep
            yield
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _pulled(remote: Remote):
    """The bucket's download record, locked for the time of one pull (readers may run side by side)."""
    bucket = remote.root.split("/", 1)[0]
    path = staging_root() / ".pulled" / remote.protocol / f"{bucket}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_suffix(".lock")):
        try:
            raw: Dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            raw = {}
        seen = {k: (v[0], tuple(v[1]) if v[1] else None) for k, v in raw.items()}
        try:
            yield seen
        finally:  # what was downloaded before a failure is known too
            atomic_write_text(path, json.dumps({k: [t, list(s) if s else None] for k, (t, s) in seen.items()}))

