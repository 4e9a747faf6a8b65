"""The active-run registry of the process, and the hooks that end a run left open.

One run may be active per process. ``atexit`` ends it ``finished``, SIGTERM
``terminated`` (then the signal's default action runs), an uncaught
exception ``failed`` with the error (then the previous excepthook runs).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from typing import Any, Optional

from . import run as _run
from .exceptions import RunStateError

__all__ = ["active_run", "require_run", "start", "deactivate"]

log = logging.getLogger("prov4ml")

_active: Optional["_run.Run"] = None
_active_lock = threading.Lock()


def active_run() -> Optional["_run.Run"]:
    """The run started by ``start_run`` and not yet ended, or ``None``."""
    return _active


def require_run(call: str) -> "_run.Run":
    run = _active
    if run is None:
        raise RunStateError(f"{call}() needs an active run: call prov4ml.start_run(...) first")
    return run


def start(*args: Any, **kwargs: Any) -> "_run.Run":
    global _active
    with _active_lock:
        if _active is not None:
            raise RunStateError(
                f"a run is already active ({_active!r}); call prov4ml.end_run() before starting another"
            )
        _install_hooks()
        _active = _run.Run(*args, **kwargs)
        return _active


def deactivate(run: "_run.Run") -> None:
    """Called by ``Run.end``: the process has no active run any more."""
    global _active
    with _active_lock:
        if _active is run:
            _active = None


_hooks_installed = False
_previous_excepthook = sys.excepthook


def _install_hooks() -> None:
    """atexit, SIGTERM and uncaught exceptions end the active run (once per process)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not allowed here (embedded interpreter)
            pass


def _at_exit() -> None:
    run = _active
    if run is not None:
        run.end()


def _excepthook(exc_type, exc, tb) -> None:
    run = _active
    if run is not None:
        try:
            run.end(error=exc)
        except Exception:
            log.exception("prov4ml: could not end the run after an uncaught exception")
    _previous_excepthook(exc_type, exc, tb)


def _on_sigterm(signum, frame) -> None:
    run = _active
    if run is not None:
        run.end(status="terminated")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
