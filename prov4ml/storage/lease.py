"""A rank's lease in the bucket: a small object it renews, so that any host can tell a live rank from a dead one.

Another host cannot check a pid. A rank recorded to a URL therefore writes
``<run>/.prov4ml/rank<k>/lease.json`` (``{"host", "pid", "rank", "renewed",
"ttl"}``) straight to the bucket when it starts, and again every ``ttl / 3``
seconds from a daemon thread of the training process; a clean end deletes it.
A rank whose lease was renewed less than ``ttl`` seconds ago is alive; one
whose lease expired (its process was killed, its node lost) or is gone is
not. The times are the hosts' clocks: keep them synchronised (NTP), within a
small part of ``ttl``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from .remote import Remote

__all__ = ["Lease", "LeaseState", "read_leases", "remove_lease", "LEASE_FILE", "DEFAULT_TTL"]

log = logging.getLogger("prov4ml")

LEASE_FILE = "lease.json"
#: seconds after its last renewal that a lease expires (start_run(..., lease_ttl=...))
DEFAULT_TTL = 30.0


def _key(remote: Remote, run_dir: Path, rank: int) -> str:
    return f"{remote.key(run_dir)}/.prov4ml/rank{rank}/{LEASE_FILE}"


@dataclass
class LeaseState:
    """What a rank's lease says, read by any host."""

    rank: int
    host: str
    pid: int
    renewed: float
    ttl: float

    @property
    def alive(self) -> bool:
        return time.time() - self.renewed <= self.ttl

    def describe(self) -> str:
        age = time.time() - self.renewed
        return f"rank {self.rank} (pid {self.pid} on {self.host}, lease renewed {age:.0f} s ago, expires after {self.ttl:g} s)"


class Lease:
    """Keeps one rank's lease renewed until ``release``; made by the run, in its training process."""

    def __init__(self, remote: Remote, run_dir: Path, rank: int, ttl: float = DEFAULT_TTL) -> None:
        self.remote, self.rank, self.ttl = remote, rank, float(ttl)
        self.key = _key(remote, run_dir, rank)
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._renew()  # a rank is alive from the moment start_run returns
        self._thread = threading.Thread(target=self._loop, name="prov4ml-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        text = json.dumps({"host": socket.gethostname(), "pid": self._pid, "rank": self.rank,
                           "renewed": time.time(), "ttl": self.ttl})
        try:
            self.remote.fs.pipe_file(self.key, text.encode())
        except Exception as exc:  # the store is out of reach: the lease may expire, the run goes on
            log.warning("prov4ml: could not renew the lease %s (%s: %s)", self.key, type(exc).__name__, exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self._renew()

    def release(self) -> None:
        """The rank ended: stop renewing and delete the lease (a forked child never releases its parent's)."""
        if os.getpid() != self._pid or self._stop.is_set():
            return
        self._stop.set()
        try:
            self.remote.remove(self.key)
        except Exception:  # at exit the store's driver may be gone: the lease then simply expires
            pass


def read_leases(remote: Remote, run_dir: Path) -> Dict[int, LeaseState]:
    """``{rank: LeaseState}`` of the leases the bucket holds for the run at ``run_dir`` (its staging path)."""
    prefix = f"{remote.key(run_dir)}/.prov4ml/"
    try:
        keys = [k for k in remote.fs.find(prefix) if k.endswith(f"/{LEASE_FILE}")]
        found = remote.fs.cat(keys) if keys else {}
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise remote.storage_error(remote.url_of(run_dir), exc) from None
    out = {}
    for raw in found.values():
        try:
            data = json.loads(raw)
            state = LeaseState(int(data["rank"]), str(data["host"]), int(data["pid"]), float(data["renewed"]),
                               float(data["ttl"]))
        except (ValueError, KeyError, TypeError):
            continue  # half of a lease: no rank claims it
        out[state.rank] = state
    return out


def remove_lease(remote: Remote, run_dir: Path, rank: int) -> None:
    """Delete a dead rank's lease (``recover`` completed it)."""
    remote.remove(_key(remote, run_dir, rank))
