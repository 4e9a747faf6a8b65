"""Runs on object storage: ``start_run(..., provenance_save_dir="s3://bucket/prefix")`` (docs/storage.md).

A run is recorded into a local staging directory and mirrored to the URL
(``mirror.py``); readers see a URL through its local copy (``local_view``).
fsspec and the protocol's driver (s3fs for ``s3://``) are imported only when
a URL is used: ``pip install "prov4ml[s3]"``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..exceptions import InvalidValueError
from .lease import Lease, read_leases, remove_lease
from .mirror import Mirror, run_dirs
from .remote import Remote, is_url, staging_root

__all__ = ["local_view", "push", "staging_root", "is_url", "remote_for", "finish", "Mirror", "Remote",
           "Lease", "read_leases", "remove_lease"]

PathOrUrl = Union[str, "os.PathLike[str]"]


def local_view(path_or_url: PathOrUrl) -> Path:
    """A local path for reading ``path_or_url``: a URL's remote copy is synced into its staging directory first.

    Only what changed since the last call is downloaded; files that a run on
    this host wrote there are kept as they are (they are the newest).
    A local path is returned unchanged (as a ``Path``).
    """
    return Remote(path_or_url).pull() if is_url(path_or_url) else Path(path_or_url)


def push(path_or_url: PathOrUrl, storage_options: Optional[Dict[str, Any]] = None) -> int:
    """Upload the staging copy of ``path_or_url`` (a run or experiment URL) to it; the number of files sent.

    For a run whose last copy failed (the storage was unreachable at
    ``end_run``), or one completed by ``recover``. Raises ``StorageError``
    when the store fails.
    """
    if not is_url(path_or_url):
        raise InvalidValueError(f"push needs a URL such as s3://bucket/prefix/experiment/run_0, got {path_or_url!r}")
    remote = Remote(path_or_url, storage_options)
    if not remote.local.is_dir():
        raise InvalidValueError(f"{path_or_url}: nothing was recorded on this host under {remote.local}")
    try:
        sent = 0
        for run_dir in run_dirs(remote.local):
            sent += Mirror(remote, run_dir, background=False).sync()
            for rank in _ended_ranks(run_dir):  # a lease an outage kept end_run from deleting
                remove_lease(remote, run_dir, rank)
        return sent
    except Exception as exc:  # what was sent before the failure is remembered: the next push goes on from there
        raise remote.storage_error(str(path_or_url), exc) from None


def _ended_ranks(run_dir: Path) -> list:
    """The ranks whose document is here and whose journal is gone: they ended cleanly on this host."""
    ranks = [int(p.stem[len("prov_rank"):]) for p in run_dir.glob("prov_rank*.json") if p.stem[len("prov_rank"):].isdigit()]
    return [k for k in ranks if not (run_dir / ".prov4ml" / f"rank{k}").exists()]


def remote_for(provenance_save_dir: Any, storage_options: Optional[Dict[str, Any]] = None) -> Optional[Remote]:
    """The remote target of a run's ``provenance_save_dir``, or None for a local directory."""
    return Remote(provenance_save_dir, storage_options) if is_url(provenance_save_dir) else None


def finish(mirror: Optional[Mirror], timeout: float, lease: Optional[Lease] = None) -> None:
    """The last copy of an ended run, then its ``lease`` released (the rank is alive until the bucket holds its
    end); a warning naming the fix if the copy could not be completed in ``timeout`` s."""
    done = mirror is None or mirror.closed is not None or mirror.close(timeout)
    if lease is not None:
        lease.release()
    if done:
        return
    why = mirror.errors[-1] if mirror.errors else f"it did not finish within mirror_timeout={timeout} s"
    warnings.warn(
        f"end_run: the run is complete in {mirror.run_dir}, but its copy in {mirror.url} is not: {why}. "
        f"Upload it once the storage is reachable: prov4ml.storage.push({mirror.url!r})",
        stacklevel=4,
    )
