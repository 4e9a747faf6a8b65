"""The run's private state beside its journal: who records it, and its records at the last refresh.

``<run_dir>/.prov4ml/rank<k>/`` holds the metric journal (``metrics/journal.py``),
``owner.json`` (pid, host and start of the recording process, so ``recover``
can refuse a live run) and ``state.pickle`` (the run's records at the last
refresh, so ``recover`` can rewrite the document). A clean ``end_run`` removes
the folder: the metric files and the PROV-JSON then hold everything.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import socket
from pathlib import Path
from typing import Any, Dict, Optional

from .._fs import atomic_write, atomic_write_text
from ..redact import redact_command

__all__ = ["journal_dir", "write_owner", "read_owner", "save_snapshot", "load_snapshot", "retire", "remove", "redacted_command", "STATE_DIR"]

STATE_DIR = ".prov4ml"


def journal_dir(run_dir: Path, rank: int) -> Path:
    return run_dir / STATE_DIR / f"rank{rank}"


def write_owner(directory: Path, pid: int, start: float, separator: str, fmt: str, compressor: Any = None) -> None:
    """Who records the run, and how its files are written (``recover`` rebuilds them the same way)."""
    directory.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": socket.gethostname(), "start": start, "separator": separator, "format": fmt,
             "compressor": getattr(compressor, "value", compressor)}
    atomic_write_text(directory / "owner.json", json.dumps(owner))


def read_owner(directory: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads((directory / "owner.json").read_text())
    except (OSError, ValueError):
        return None


def owner_alive(owner: Optional[Dict[str, Any]]) -> bool:
    """True when the recording process still runs on this host (another host: assumed alive)."""
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _dead(int(owner["pid"])) and _started_before(int(owner["pid"]), float(owner.get("start", 0)))


def _dead(pid: int) -> bool:
    """A pid that answers signals but no longer runs: a zombie its parent has not reaped yet (a supervisor
    that has not waited, a container whose init never reaps orphans). Linux's /proc says; elsewhere, no."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]  # the name in parentheses may hold spaces
    except (OSError, IndexError):
        return False
    return state in (b"Z", b"X")


def _started_before(pid: int, start: float) -> bool:
    """A live pid is the owner only if it started before the run did (pids are reused)."""
    try:
        import psutil

        return psutil.Process(pid).create_time() <= start + 1.0
    except Exception:
        return True


def save_snapshot(directory: Path, snapshot: Any) -> None:
    atomic_write(directory / "state.pickle", lambda fh: pickle.dump(snapshot, fh, protocol=4))


class _RecordsOnly(pickle.Unpickler):
    """Loads the run's own records and nothing else (a pickle can name any callable)."""

    _ALLOWED_MODULES = ("prov4ml.records.model", "prov4ml.context")
    _ALLOWED = {("datetime", "datetime"), ("datetime", "timezone"), ("datetime", "timedelta"),
                ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex")}

    def find_class(self, module: str, name: str) -> Any:
        if module in self._ALLOWED_MODULES or (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"state.pickle names {module}.{name}, which a run's records never hold")


def load_snapshot(directory: Path) -> Any:
    with open(directory / "state.pickle", "rb") as fh:
        return _RecordsOnly(io.BytesIO(fh.read())).load()


#: a rank's journal folder being removed is first renamed to this prefix: one step ends its recovery
REMOVING = ".removing-"


def retire(directory: Path) -> Path:
    """Rename a complete rank's journal folder out of ``recover``'s sight, in one step (a kill after it leaves no
    rank that looks killed); returns the new name, for :func:`remove`. The journal's files stay open and mapped."""
    doomed = directory.with_name(f"{REMOVING}{directory.name}-{os.getpid()}")
    try:
        os.rename(directory, doomed)
    except OSError:
        return directory
    return doomed


def remove(doomed: Path) -> None:
    """Remove a journal folder :func:`retire` renamed (``recover`` removes what a kill half-way leaves), then
    ``.prov4ml/`` once no rank has state left."""
    shutil.rmtree(doomed, ignore_errors=True)
    try:
        doomed.parent.rmdir()
    except OSError:
        pass


def redacted_command(argv: Any) -> Optional[str]:
    if not argv or not argv[0]:
        return None
    return " ".join(redact_command([str(a) for a in argv]))
