"""The active-run registry of the process, and the hooks that end a run left open.

One run may be active per process. ``atexit`` ends it ``finished``, SIGTERM
``terminated`` (then the signal's default action runs), an uncaught
exception ``failed`` with the error, an uncaught KeyboardInterrupt
``interrupted`` (then the previous excepthook runs). While ``end_run`` writes
the run, SIGTERM and SIGINT are held and acted on once it is written. A
forked child (a DataLoader worker) never ends or writes its parent's run.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..exceptions import RunStateError

if TYPE_CHECKING:
    from .run import Run

__all__ = ["active_run", "last_ended", "require_run", "start", "deactivate", "holding_signals"]

log = logging.getLogger("prov4ml")

_active: Optional["Run"] = None
_active_lock = threading.Lock()
_starter: tuple = (None, None)  # (thread, dask task key) that started the active run
_last_ended: Optional["Run"] = None


def _no_run(*args: Any, **kwargs: Any) -> None:
    raise RunStateError("log_metric() needs an active run: call prov4ml.start_run(...) first")


#: the active run's log_metric (``prov4ml.log_metric`` calls it with no lookup of the run)
log_metric = _no_run


def active_run() -> Optional["Run"]:
    """The run started by ``start_run`` and not yet ended, or ``None``."""
    return _active


def require_run(call: str) -> "Run":
    run = _active
    if run is None:
        raise RunStateError(f"{call}() needs an active run: call prov4ml.start_run(...) first")
    return run


def last_ended() -> Optional["Run"]:
    """The run this process ended last (``end_run`` twice warns instead of raising)."""
    return _last_ended


def _task_key() -> Any:
    """The dask task this thread runs, if any (a dask worker reuses its threads for many tasks)."""
    worker = sys.modules.get("distributed.worker")
    return getattr(getattr(worker, "thread_state", None), "key", None)


def _stale(end_stale_run: bool) -> Optional[str]:
    """Why the active run belongs to a task that ended without end_run, or None."""
    run, (thread, key) = _active, _starter
    if run is None or run.pid != os.getpid():
        return None
    if thread is not None and not thread.is_alive():
        return f"the thread that started it, {thread.name}, has ended"
    if key is not None and key != _task_key():
        return f"the dask task that started it, {key!r}, has ended"
    if end_stale_run:
        return "start_run(..., end_stale_run=True)"
    return None


def start(factory: Callable[..., "Run"], *args: Any, end_stale_run: bool = False, **kwargs: Any) -> "Run":
    """Make ``factory(*args, **kwargs)`` (the :class:`Run` class) the active run of the process."""
    global _active, _starter
    reason = _stale(end_stale_run)
    if reason is not None:
        from ..calls import user_stacklevel

        stale = _active
        warnings.warn(f"prov4ml: {stale!r} was still active, but {reason}: it is ended as failed and the new run "
                      "starts", stacklevel=user_stacklevel())
        stale.end(error=RunStateError(f"the task that started this run ended without end_run ({reason})"))
    with _active_lock:
        if _active is not None and _active.pid != os.getpid():
            _active = None  # the parent's run, inherited by fork: this process starts its own
            _set_log(_no_run)
        if _active is not None:
            raise RunStateError(
                f"a run is already active ({_active!r}); call prov4ml.end_run() before starting another, or pass "
                "start_run(..., end_stale_run=True) to end it as failed (a task that died without end_run)"
            )
        _install_hooks()
        _active = factory(*args, **kwargs)
        _starter = (threading.current_thread(), _task_key())
        _set_log(_active.log_metric)
        return _active


def _set_log(fn) -> None:
    global log_metric, _bound
    log_metric = fn
    # ``prov4ml.log_metric(...)`` looks the name up at every call: while a run is active the name is
    # the run's own method, which saves a Python frame per point. A name the user replaced is left alone.
    api = sys.modules.get("prov4ml.api")
    if api is None:
        return
    public = api.between_runs_log_metric if fn is _no_run else fn
    for name in ("prov4ml", "prov4ml.api"):
        module = sys.modules.get(name)
        if module is not None and module.__dict__.get("log_metric") in (api.between_runs_log_metric, _bound):
            module.log_metric = public
    _bound = public


_bound: Any = None  # what _set_log last bound ``prov4ml.log_metric`` to


def deactivate(run: "Run") -> None:
    """Called by ``Run.end``: the process has no active run any more."""
    global _active, _last_ended
    with _active_lock:
        if _active is run:
            _active = None
            _last_ended = run
            _set_log(_no_run)


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
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signal.signal(signal.SIGINT, _on_sigint)
        except (ValueError, OSError):  # not allowed here (embedded interpreter)
            pass


def _at_exit() -> None:
    run = _active
    if run is not None and run.pid == os.getpid():
        # a Ctrl-C (a second one, say, that cut the first one's handling short) ends it as interrupted
        run.end(status="interrupted" if run._interrupted else "finished")


def _excepthook(exc_type, exc, tb) -> None:
    run = _active
    if run is not None and run.pid == os.getpid():
        try:
            run.end(error=exc)
        except KeyboardInterrupt:  # another Ctrl-C: atexit finishes the run as interrupted
            run._interrupted = True
        except Exception:
            log.exception("prov4ml: could not end the run after an uncaught exception")
    _previous_excepthook(exc_type, exc, tb)


def _on_sigterm(signum, frame) -> None:
    run = _active
    if run is not None and run.pid == os.getpid():
        run.set_outcome("terminated", signum=signum)
        run.end(status=run.status)
    _die_of(signum)


def _on_sigint(signum, frame) -> None:
    """Python's own Ctrl-C behaviour (KeyboardInterrupt), remembering that it came."""
    run = _active
    if run is not None:
        run._interrupted = True
    raise KeyboardInterrupt


def _die_of(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def holding_signals(run: "Run"):
    """SIGTERM and SIGINT that arrive while ``run`` is written are noted, then acted on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []

    def hold(signum, frame):
        held.append(signum)
        run._deferred_signal = signum

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C is the likeliest
        try:
            previous[sig] = signal.signal(sig, hold)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if signal.SIGTERM in held:
        _die_of(signal.SIGTERM)
    if signal.SIGINT in held:
        raise KeyboardInterrupt


def _in_forked_child() -> None:
    run = _active
    if run is not None:
        run.recording = False
        run.metrics.recording = False
        run.metrics.forked_warning = (
            f"prov4ml: a recording call in a forked child process (pid {os.getpid()}) is not recorded: the "
            f"run belongs to pid {run.pid}. Log from the main process, or start a run in the worker."
        )
        # it stays the active run, so that calls warn; start_run in the child replaces it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_forked_child)
