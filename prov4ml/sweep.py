"""Sweeps: run a function over configurations, every trial a prov4ml run.

    from prov4ml.sweep import configurations, sample, sweep

    results = sweep(train, configurations({"lr": [0.1, 0.01], "depth": [2, 4]}),
                    experiment_name="grid", repetitions=3, workers=4)

A *trial* is one configuration at one repetition. Each trial is one run of the
experiment (``<provenance_save_dir>/<experiment_name>/run_<id>/``): the sweep
starts it, logs the configuration and the ``sweep.*`` bookkeeping as
parameters, calls ``fn(config)`` (with ``seed=`` when ``fn`` takes it), logs a
numeric return value as metrics in ``Context.EVALUATION`` and ends the run
(``failed``, with the error, when ``fn`` raises; the sweep goes on).

Backends (``backend=``):

``serial``   one trial after another in this process (default for ``workers=1``);
``process``  a ``ProcessPoolExecutor`` of *spawned* processes (default for
             ``workers > 1``): ``fn`` must be importable by its module and name;
``ray``      Ray tasks (extra ``ray``), on this machine or a cluster; the
             provenance directory must then be shared by every node, or be
             a URL (``s3://bucket/prefix``) that every node can reach.

Ray retries nothing by itself here (``max_retries=0``): ``retries=N`` runs a
failed or lost trial again, up to N times, each attempt a new run that names
the one it retries (``sweep.retry_of``; ``prov:wasInfluencedBy`` and
``provml:retryOf`` in its document). A trial whose worker was lost (killed,
out of memory, a node gone) names the run it had started; that run is
completed from its journal (``prov4ml.recover``) and reads ``killed``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import itertools
import json
import multiprocessing
import numbers
import pickle
import random
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from . import _values, api, storage
from ._fs import atomic_write_text, slug
from .run import layout
from ._optional import require
from .context import Context
from .exceptions import InvalidValueError, Prov4MLError, RunStateError, TrialTimeoutError
from .provenance.builder import RETRY_NOTE

__all__ = ["TrialResult", "configurations", "sample", "sweep", "trial_seed", "BACKENDS", "RESERVED_PREFIX"]

BACKENDS = ("serial", "process", "ray")
#: Parameter keys the sweep logs itself; configuration keys may not start with it.
RESERVED_PREFIX = "sweep."
#: The metric name of a single number returned by ``fn``.
RESULT_METRIC = "result"


# ---------------------------------------------------------------------- configurations
def configurations(grid: Dict[str, Sequence[Any]]) -> List[Dict[str, Any]]:
    """Every combination of the grid's values (cartesian product).

    Keys keep their order; the last key varies fastest. Each value must be a
    list of choices (write ``[3]`` for a fixed value). An empty grid gives one
    empty configuration.
    """
    if not isinstance(grid, Mapping):
        raise InvalidValueError(f"configurations() takes a dict of name -> list of values, got {type(grid).__name__}")
    keys = list(grid)
    for key in keys:
        _check_key(key, "grid")
        values = grid[key]
        if not isinstance(values, list):
            raise InvalidValueError(
                f"grid value of {key!r} is {values!r}; give a list of choices (write [{values!r}] for a fixed value)"
            )
        if not values:
            raise InvalidValueError(f"grid value of {key!r} is an empty list, which leaves no configuration; give at least one choice")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def sample(space: Dict[str, Any], n: int, seed: Optional[int] = None) -> List[Dict[str, Any]]:
    """``n`` configurations drawn at random from ``space`` (independently; repeats are possible).

    Per key: a list is a set of choices (one drawn uniformly), a ``(lo, hi)``
    tuple of numbers a uniform float in [lo, hi], a callable is called with the
    ``random.Random`` and returns the value (``lambda r: 10 ** r.uniform(-4, -1)``,
    ``lambda r: r.randint(1, 8)``). The same ``seed`` gives the same list.
    """
    if not isinstance(space, Mapping):
        raise InvalidValueError(f"sample() takes a dict of name -> distribution, got {type(space).__name__}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InvalidValueError(f"sample() needs n, the number of configurations, as an integer >= 0; got {n!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InvalidValueError(f"sample() seed must be an integer or None, got {seed!r}")
    draws = {key: _distribution(key, dist) for key, dist in space.items()}
    rng = random.Random(seed)
    return [{key: draw(rng) for key, draw in draws.items()} for _ in range(n)]


def _distribution(key: Any, dist: Any) -> Callable[[random.Random], Any]:
    _check_key(key, "space")
    if isinstance(dist, list):
        if not dist:
            raise InvalidValueError(f"space value of {key!r} is an empty list; give at least one choice")
        return lambda rng: rng.choice(dist)
    if isinstance(dist, tuple):
        if len(dist) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in dist):
            raise InvalidValueError(
                f"space value of {key!r} is the tuple {dist!r}; a tuple is a (lo, hi) range of numbers "
                "(use a list for a set of choices)"
            )
        lo, hi = float(dist[0]), float(dist[1])
        if lo > hi:
            raise InvalidValueError(f"space value of {key!r}: the range ({dist[0]!r}, {dist[1]!r}) has lo > hi; write (lo, hi)")
        return lambda rng: rng.uniform(lo, hi)
    if callable(dist):
        return dist
    raise InvalidValueError(
        f"space value of {key!r} is {dist!r}; give a list of choices, a (lo, hi) tuple or a callable "
        f"taking a random.Random (write [{dist!r}] for a fixed value)"
    )


def _check_key(key: Any, what: str) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidValueError(f"{what} keys are parameter names, non-empty strings; got {key!r}")
    if key.startswith(RESERVED_PREFIX):
        raise InvalidValueError(f"{what} key {key!r}: names starting with {RESERVED_PREFIX!r} are the sweep's own; rename it")


def trial_seed(config: Mapping, repetition: int, base_seed: int = 0) -> int:
    """The seed of a trial: a hash of ``base_seed``, the configuration (as JSON) and the repetition.

    It does not depend on the order of the configurations or on other trials,
    so adding configurations to a sweep leaves the seeds of the others as they were.
    """
    text = json.dumps(config, sort_keys=True, default=repr)
    digest = hashlib.sha256(f"{base_seed}|{repetition}|{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF  # fits random, NumPy and torch seeds


# ---------------------------------------------------------------------- results
@dataclass
class TrialResult:
    """What one trial did. ``status`` is its (last) run's: ``finished``, ``failed``, or ``killed`` for a run
    whose worker was lost; ``run_dir`` is the run's directory, or its URL on object storage."""

    config: Dict[str, Any]
    repetition: int
    trial: int
    seed: int
    run_id: Optional[int] = None
    run_dir: Optional[str] = None
    status: str = "failed"
    #: ``fn``'s return value (None when it could not travel back from the worker).
    result: Any = None
    #: ``"TypeName: message"`` of the exception ``fn`` raised, else None.
    error: Optional[str] = None
    traceback: Optional[str] = field(default=None, repr=False)
    duration: float = 0.0
    #: 1 + the retries it took (``sweep(retries=...)``)
    attempts: int = 1
    #: the run ids of the earlier, failed attempts, oldest first
    retried_runs: List[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "finished"


@dataclass
class _Trial:
    """Everything a worker needs for one trial (picklable)."""

    config: Dict[str, Any]
    config_index: int
    repetition: int
    trial: int
    seed: int
    namespace: str
    experiment_name: str
    save_dir: str
    start_run_options: Dict[str, Any]
    pass_seed: bool
    in_worker: bool
    timeout: Optional[float] = None
    sweep_id: str = ""
    attempt: int = 0
    retry_of: Optional[int] = None  # the run id of the failed attempt this one retries


def _run_trial(trial: _Trial, fn: Any) -> TrialResult:
    """Run one trial as one prov4ml run; runs in the worker (or in this process for ``serial``)."""
    if isinstance(fn, bytes):
        fn = _load_fn(fn)
    out = TrialResult(dict(trial.config), trial.repetition, trial.trial, trial.seed)
    t0 = time.perf_counter()
    run = None
    try:
        with api.run(prov_user_namespace=trial.namespace, experiment_name=trial.experiment_name,
                     provenance_save_dir=trial.save_dir, **trial.start_run_options) as run:
            out.run_id, out.run_dir = run.run_id, run.url or str(run.run_dir)
            _announce(trial, out.run_id, out.run_dir)  # so a lost worker's trial still names its run
            api.log_params(trial.config)
            api.log_params({
                f"{RESERVED_PREFIX}trial": trial.trial,
                f"{RESERVED_PREFIX}config_index": trial.config_index,
                f"{RESERVED_PREFIX}repetition": trial.repetition,
                f"{RESERVED_PREFIX}seed": trial.seed,
                **({f"{RESERVED_PREFIX}attempt": trial.attempt} if trial.attempt else {}),
                **({f"{RESERVED_PREFIX}retry_of": trial.retry_of} if trial.retry_of is not None else {}),
            })
            if trial.retry_of is not None:
                run.records.note(RETRY_NOTE, trial.retry_of)
            with _deadline(trial.timeout):
                result = fn(trial.config, seed=trial.seed) if trial.pass_seed else fn(trial.config)
            _log_result(result)
    except (Exception, SystemExit) as exc:  # fn's failure is the trial's, not the sweep's
        if run is None:
            raise  # start_run refused its arguments: every trial would fail alike
        out.status = run.status
        out.error = f"{type(exc).__name__}: {exc}"
        out.traceback = traceback.format_exc()
    else:
        out.status = run.status
        out.result = _portable(result, trial) if trial.in_worker else result
    out.duration = time.perf_counter() - t0
    return out


@contextlib.contextmanager
def _deadline(seconds: Optional[float]):
    """``TrialTimeoutError`` in this (the trial's main) thread once ``seconds`` have passed.

    A SIGALRM timer: it interrupts Python code and sleeps; a native call that
    never returns to the interpreter is interrupted when it does.
    """
    if seconds is None:
        yield
        return
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        raise InvalidValueError("sweep(timeout=...) needs a POSIX system and the trial in a main thread "
                                "(backend='serial' from the main thread, or backend='process')")

    def expire(signum, frame):
        raise TrialTimeoutError(f"the trial ran longer than sweep(timeout={seconds:g}) seconds and was stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return _values.is_tensor(value) and value.numel() == 1


def _log_result(result: Any) -> None:
    """A number is the metric ``result``; a dict's numeric items are metrics by their keys."""
    if _is_number(result):
        api.log_metric(RESULT_METRIC, result, Context.EVALUATION)
    elif isinstance(result, Mapping):
        numeric = {k: v for k, v in result.items() if isinstance(k, str) and k and _is_number(v)}
        if numeric:
            api.log_metrics(numeric, Context.EVALUATION)


def _portable(result: Any, trial: _Trial) -> Any:
    """``result`` if it can be pickled back to the sweep, else None (with a warning)."""
    try:
        pickle.dumps(result)
        return result
    except Exception as exc:
        import warnings

        warnings.warn(
            f"sweep trial {trial.trial}: fn's return value ({type(result).__name__}) cannot be sent back "
            f"from the worker ({exc}); TrialResult.result is None. Return numbers, dicts or other picklable values.",
            stacklevel=2,
        )
        return None


def _load_fn(payload: bytes) -> Callable:
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise InvalidValueError(
            f"a sweep worker process could not load fn ({type(exc).__name__}: {exc}). With backend='process' "
            "fn runs in spawned processes and must be importable by its module and name: define it at the "
            "top level of a module or script (not in an interactive session, a notebook or under "
            "`if __name__ == '__main__':`), or use workers=1"
        ) from None


# ---------------------------------------------------------------------- trial markers
def _marker(trial: _Trial) -> str:
    """Where a trial's worker writes which run it started: hidden in the experiment, beside its runs."""
    return f"{trial.save_dir.rstrip('/')}/{slug(trial.experiment_name)}/.sweeps/{trial.sweep_id}/trial{trial.trial}.{trial.attempt}.json"


def _announce(trial: _Trial, run_id: int, location: str) -> None:
    """Tell the sweep which run this trial's worker started, before ``fn`` runs (a URL: an object in the bucket)."""
    if not trial.in_worker:
        return  # a serial trial reports its run itself
    text = json.dumps({"run_id": run_id, "location": location})
    path = _marker(trial)
    if storage.is_url(path):
        remote = storage.Remote(trial.save_dir, trial.start_run_options.get("storage_options"))
        remote.fs.pipe_file(remote.root + path[len(remote.url):], text.encode())
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)


def _announced(trial: _Trial) -> Optional[Dict[str, Any]]:
    """``{"run_id", "location"}`` of the run a lost trial had started, or None if it started none."""
    path = _marker(trial)
    try:
        if storage.is_url(path):
            remote = storage.Remote(trial.save_dir, trial.start_run_options.get("storage_options"))
            raw = remote.fs.cat_file(remote.root + path[len(remote.url):])
        else:
            raw = Path(path).read_bytes()
        return json.loads(raw)
    except (FileNotFoundError, ValueError):
        return None


def _forget(trials: List[_Trial]) -> None:
    """Remove the sweep's markers once every trial has reported."""
    if not trials or not trials[0].in_worker:
        return
    folder = _marker(trials[0]).rsplit("/", 1)[0]
    try:
        if storage.is_url(folder):
            remote = storage.Remote(trials[0].save_dir, trials[0].start_run_options.get("storage_options"))
            remote.fs.rm(remote.root + folder[len(remote.url):], recursive=True)
        else:
            import shutil

            shutil.rmtree(folder)
            Path(folder).parent.rmdir()  # .sweeps/, when no other sweep is running
    except Exception:  # markers left behind are hidden and harmless; the sweep's results matter more
        pass


def _lost(t: _Trial, error: str) -> TrialResult:
    """The result of a trial whose worker died: its run, if it had started one, is completed as ``killed``."""
    out = TrialResult(dict(t.config), t.repetition, t.trial, t.seed, status="failed", error=error)
    started = _announced(t)
    if started is None:
        return out
    out.run_id, out.run_dir = started["run_id"], started["location"]
    from .run.recovery import recover

    try:  # the backend saw the worker die: its pid (or lease, on another node) need not be checked
        recover(out.run_dir, force=True)
        out.status = "killed"
    except Prov4MLError as exc:
        out.error = f"{error}; its run {out.run_dir} could not be recovered ({exc}): run prov4ml recover on it"
    return out


# ---------------------------------------------------------------------- the sweep
def sweep(
    fn: Callable[..., Any],
    configs: Iterable[Dict[str, Any]],
    *,
    experiment_name: str,
    prov_user_namespace: str = "www.example.org",
    provenance_save_dir: Optional[str] = None,
    repetitions: int = 1,
    workers: Optional[int] = None,
    backend: Optional[str] = None,
    start_run_options: Optional[Dict[str, Any]] = None,
    seed: int = 0,
    progress: bool = True,
    ray_options: Optional[Dict[str, Any]] = None,
    timeout: Optional[float] = None,
    retries: int = 0,
) -> List[TrialResult]:
    """Run ``fn(config)`` for every configuration and repetition, each trial one prov4ml run.

    Returns one ``TrialResult`` per trial, in trial order (configuration by
    configuration, repetitions of one configuration together), whatever the
    order they finished in. ``timeout``: seconds one trial's ``fn`` may run;
    a trial past it is stopped and recorded as failed (``TrialTimeoutError``),
    and the sweep goes on. ``retries``: how many times a failed or lost trial
    is run again, each time as a new run naming the failed one (0: never).
    ``provenance_save_dir`` may be a URL (``s3://bucket/prefix``).
    See docs/sweeps.md and docs/cluster.md.
    """
    if not callable(fn):
        raise InvalidValueError(f"sweep() needs a callable fn(config), got {fn!r}")
    if not isinstance(experiment_name, str) or not experiment_name:
        raise InvalidValueError(f"sweep() needs experiment_name, a non-empty string; got {experiment_name!r}")
    if not isinstance(repetitions, int) or isinstance(repetitions, bool) or repetitions < 1:
        raise InvalidValueError(f"repetitions must be an integer >= 1, got {repetitions!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InvalidValueError(f"seed must be an integer, got {seed!r}")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise InvalidValueError(f"workers must be an integer >= 1 or None, got {workers!r}")
    if backend is None:
        backend = "serial" if workers in (None, 1) else "process"
    if backend not in BACKENDS:
        raise InvalidValueError(f"unknown sweep backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    if backend == "serial" and workers not in (None, 1):
        raise InvalidValueError(f"backend='serial' runs one trial at a time; use backend='process' for workers={workers}")
    options = dict(start_run_options or {})
    for taken in ("prov_user_namespace", "experiment_name", "provenance_save_dir"):
        if taken in options:
            raise InvalidValueError(f"start_run_options may not set {taken!r}; pass it to sweep() itself")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise InvalidValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    if timeout is not None and backend == "serial" and threading.current_thread() is not threading.main_thread():
        raise InvalidValueError("sweep(timeout=...) with backend='serial' must be called from the main thread; "
                                "use backend='process' from other threads")
    if ray_options is not None and backend != "ray":
        raise InvalidValueError("ray_options is for backend='ray'")
    if ray_options and {"max_retries", "retry_exceptions"} & set(ray_options):
        raise InvalidValueError("ray_options may not set max_retries or retry_exceptions: a trial Ray ran again "
                                "would record into a run left unfinished; use sweep(retries=N), which makes each "
                                "retry a new run linked to the failed one")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidValueError(f"retries must be an integer >= 0, got {retries!r}")
    if api.active_run() is not None and backend == "serial":
        raise RunStateError("sweep() starts one run per trial, but a run is active in this process; call prov4ml.end_run() first")
    if layout.distributed() is not None or layout.world_size() > 1:
        raise InvalidValueError(
            "sweep() runs every trial as a single-process run and cannot run inside a distributed launch "
            "(torch.distributed or WORLD_SIZE > 1); start the sweep from a plain `python` process"
        )

    configs = list(configs)
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise InvalidValueError(f"configuration {i} is {config!r}; every configuration must be a dict of name -> value")
        for key in config:
            _check_key(key, f"configuration {i}")
    if storage.is_url(provenance_save_dir):  # a URL stays one: each trial's run is staged and mirrored to it
        save_dir = str(provenance_save_dir).rstrip("/")
        storage.Remote(save_dir, options.get("storage_options"))  # a URL fsspec cannot reach fails here, once
    else:
        save_dir = str(Path(provenance_save_dir or "prov").expanduser().resolve())  # workers may run elsewhere
    pass_seed = _takes_seed(fn)
    in_worker = backend != "serial"
    sweep_id = uuid.uuid4().hex[:12]
    trials = [
        _Trial(dict(config), ci, rep, ci * repetitions + rep, trial_seed(config, rep, seed),
               prov_user_namespace, experiment_name, save_dir, options, pass_seed, in_worker,
               None if timeout is None else float(timeout), sweep_id)
        for ci, config in enumerate(configs) for rep in range(repetitions)
    ]
    report = _Progress(experiment_name, len(trials), progress)
    if not trials:
        return []
    results: List[Optional[TrialResult]] = [None] * len(trials)
    todo = trials
    try:
        while todo:
            for t, r in zip(todo, _run_backend(backend, fn, todo, workers, report, ray_options or {})):
                previous = results[t.trial]
                if previous is not None:
                    r.attempts, r.retried_runs = previous.attempts + 1, previous.retried_runs + (
                        [previous.run_id] if previous.run_id is not None else [])
                results[t.trial] = r
            todo = [dataclasses.replace(t, attempt=t.attempt + 1, retry_of=results[t.trial].run_id)
                    for t in todo if not results[t.trial].ok and t.attempt < retries]
            report.total += len(todo)
    finally:
        _forget(trials)
    return results  # type: ignore[return-value]


def _run_backend(backend: str, fn: Callable, trials: List[_Trial], workers: Optional[int], report: "_Progress",
                 ray_options: Dict[str, Any]) -> List[TrialResult]:
    """One result per trial of ``trials``, in their order."""
    if backend == "serial":
        return [report(_run_trial(t, fn)) for t in trials]
    if backend == "process":
        return _process_sweep(fn, trials, workers, report)
    return _ray_sweep(fn, trials, workers, report, ray_options)


def _takes_seed(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    p = params.get("seed")
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


class _Progress:
    """One line per finished trial on stderr."""

    def __init__(self, experiment: str, total: int, enabled: bool) -> None:
        self.experiment, self.total, self.enabled, self.done = experiment, total, enabled, 0

    def __call__(self, r: TrialResult) -> TrialResult:
        self.done += 1
        if self.enabled:
            where = f"run_{r.run_id}" if r.run_id is not None else "no run"
            what = r.status if r.error is None else f"{r.status} ({r.error})"
            print(
                f"[sweep {self.experiment}] {self.done}/{self.total} trial {r.trial} {where} "
                f"rep {r.repetition} {what} in {r.duration:.2f}s  {r.config}",
                file=sys.stderr, flush=True,
            )
        return r


def _pickled_fn(fn: Callable) -> bytes:
    name = getattr(fn, "__qualname__", repr(fn))
    module = getattr(fn, "__module__", None)
    if module == "__main__" and not getattr(sys.modules.get("__main__"), "__file__", None):
        raise InvalidValueError(
            f"sweep(backend='process') cannot send fn {name!r} to its worker processes: it is defined in an "
            "interactive session, which spawned processes cannot import. Move it to a module (a .py file) and "
            "import it, or use workers=1"
        )
    try:
        return pickle.dumps(fn)
    except Exception as exc:
        raise InvalidValueError(
            f"sweep(backend='process') runs fn in spawned processes, so fn must be picklable, and {name!r} is not "
            f"({type(exc).__name__}: {exc}). Use a function defined at the top level of a module "
            "(not a lambda, a nested function or a closure; functools.partial of one is fine), or use workers=1"
        ) from None


def _process_sweep(fn: Callable, trials: List[_Trial], workers: Optional[int], report: _Progress) -> List[TrialResult]:
    payload = _pickled_fn(fn)
    try:
        pickle.dumps(trials)
    except Exception as exc:
        raise InvalidValueError(
            f"sweep(backend='process') sends the configurations and start_run_options to spawned processes, "
            f"so they must be picklable ({type(exc).__name__}: {exc}); use plain values, or workers=1"
        ) from None
    n = min(workers or multiprocessing.cpu_count(), len(trials))
    results: List[Optional[TrialResult]] = [None] * len(trials)
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending = {pool.submit(_run_trial, t, payload): i for i, t in enumerate(trials)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                try:
                    r = fut.result()
                except BrokenProcessPool as exc:
                    r = _lost(trials[i], f"BrokenProcessPool: a worker process ended abruptly (killed, out of "
                                         f"memory, os._exit) while this trial was waiting or running. A script that "
                                         f"starts a sweep must do so under `if __name__ == '__main__':` ({exc})")
                results[i] = report(r)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results  # type: ignore[return-value]


def _ray_sweep(
    fn: Callable, trials: List[_Trial], workers: Optional[int], report: _Progress, ray_options: Dict[str, Any]
) -> List[TrialResult]:
    ray = require("ray", "ray", "sweep(backend='ray')")
    if not ray.is_initialized():
        ray.init()  # a local Ray; call ray.init(address=...) first to use a cluster
    # Ray would run a task whose worker died again, into a second run while the first stays unfinished:
    # retries are the sweep's own (retries=), each a new run
    task = ray.remote(_run_trial).options(max_retries=0, retry_exceptions=False, **ray_options)
    fn_ref = ray.put(fn)
    limit = workers or len(trials)
    queue = list(range(len(trials)))
    running: Dict[Any, int] = {}
    results: List[Optional[TrialResult]] = [None] * len(trials)
    try:
        while queue or running:
            while queue and len(running) < limit:
                i = queue.pop(0)
                running[task.remote(trials[i], fn_ref)] = i
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i = running.pop(ref)
                try:
                    r = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    raise cause if isinstance(cause, BaseException) else exc
                except ray.exceptions.RayError as exc:  # a worker or node died
                    r = _lost(trials[i], f"{type(exc).__name__}: the Ray worker running this trial was lost "
                                         f"({str(exc).splitlines()[0] if str(exc) else 'no message'})")
                results[i] = report(r)
    except BaseException:
        for ref in running:
            try:
                ray.cancel(ref)
            except Exception:
                pass
        raise
    return results  # type: ignore[return-value]
