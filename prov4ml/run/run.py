"""The Run: one active run per process, its ids, status, lifecycle and flush policy.

The Run composes the parts that do the work, each held as an attribute: ``metrics``
(:class:`~prov4ml.metrics.recorder.MetricRecorder`), ``records``
(:class:`~prov4ml.records.recorder.RecordsRecorder`) and ``collectors``
(:class:`~prov4ml.run.collecting.Collectors`); :mod:`prov4ml.run.outputs` writes its document
while it runs and :mod:`prov4ml.run.ending` ends it.
"""

from __future__ import annotations

import functools
import getpass
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _values, calls, storage
from ..records import state as _state
from . import ending, layout, lifecycle as _lifecycle, outputs
from .._fs import slug
from ..records.journal import RecordJournal
from ..records.recorder import RecordsRecorder
from ..records.artifacts import ArtifactStore
from ..context import LoggingItemKind, resolve_context
from ..exceptions import ArgumentError, InvalidValueError, RunStateError, StorageError
from ..metrics.folds import FinalMetric
from ..metrics.formats import get_format
from .._values import check_name, check_step, check_timestamp
from ..redact import redact_command_line, redact_value
from ..metrics.recorder import MetricRecorder
from ..metrics.samplers import make_sampler
from ..metrics.writer import Refresher
from ..records.model import ArtifactRecord, RunSnapshot
from .collecting import Collectors

__all__ = ["Run", "OPTIONS"]

_time = time.time
# What the sink process calls to write the running run's document (named, so the sink imports it only there).
LIVE_DOCUMENT_WRITER = "prov4ml.provenance.live:write_live"

#: start_run keywords beyond the named parameters, with their defaults.
OPTIONS: Dict[str, Any] = {
    "metric_samplers": None,  # {metric name: Sampler or name}
    "default_sampler": None,
    "metrics_file_type": "csv",
    "csv_separator": ",",
    "use_compressor": False,  # True / CompressorType: the metric files' codec; True and ZIP also write <run_dir>.zip
    "run_id": None,  # join/force a run id (ranks launched without torch.distributed)
    "capture": True,  # reproducibility capture: True/False or {part: bool}
    "capture_env_vars": False,
    "disable_codecarbon": False,
    "carbon_country": "USA",
    "prov_flush_interval": 2.0,  # seconds between two refreshes at least (a tight loop does not rewrite more often)
    "flush_interval": 5.0,  # seconds between two refreshes at most, even when nothing is logged
    "writer_process": True,  # write metric files in a child process (False: in the refresher thread)
    "fsync": False,  # also push the journal and files to the disk at every refresh (power-loss durability)
    "keep_journal": False,  # keep the point journal after a clean end_run
    "strict": False,  # end_run raises StorageError when something could not be written
    "user": None,  # the user agent's name; default: the login name
    "storage_options": None,  # for a provenance_save_dir URL: passed to fsspec (docs/storage.md)
    "mirror_timeout": 60.0,  # seconds end_run waits for the last copy to a provenance_save_dir URL
    "lease_ttl": 30.0,  # a URL run's lease expires this many seconds after its last renewal (docs/cluster.md)
    "default_context": None,
    # accepted for code written for the reference library; see docs/api.md
    "use_run_id": True,
    "unify_experiments": True,
}

def _interval(options: Dict[str, Any], key: str) -> float:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 86400:
        raise InvalidValueError(f"{key} must be a number of seconds between 0 and 86400, got {value!r}")
    return float(value)


def _separator(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or value.isalnum() or value in ".-+\"'\r\n\x00e%":
        raise InvalidValueError(
            f"csv_separator must be one character that numbers never contain, such as ',' ';' '\\t' or '|'; got {value!r}"
        )
    return value


class Run:
    """One run of one process (rank). Create it with ``prov4ml.start_run``."""

    def __init__(
        self,
        prov_user_namespace: str,
        experiment_name: Optional[str] = None,
        provenance_save_dir: Optional[str] = None,
        collect_all_processes: bool = False,
        save_after_n_logs: int = 100,
        rank: Optional[int] = None,
        **options: Any,
    ) -> None:
        check_name(_values.check_namespace(prov_user_namespace), "prov_user_namespace")
        if not isinstance(save_after_n_logs, int) or isinstance(save_after_n_logs, bool) or save_after_n_logs < 1:
            raise InvalidValueError(f"save_after_n_logs must be an integer >= 1, got {save_after_n_logs!r}")
        self.options = _known_options(options)
        self.user_namespace = prov_user_namespace
        self.experiment_name = experiment_name or _default_experiment_name()
        check_name(self.experiment_name, "experiment_name")
        self.rank = layout.detect_rank(rank)
        self.collect_all_processes = bool(collect_all_processes)
        #: False on ranks > 0 unless collect_all_processes: every call is accepted and ignored.
        self.recording = self.collect_all_processes or self.rank == 0
        self.save_after_n_logs = save_after_n_logs
        self.default_context = resolve_context(self.options["default_context"])
        # Every option is checked before anything is created on disk.
        intervals, samplers, self._separator, self._format, self._mirror_timeout = _checked_options(self.options, provenance_save_dir)
        self._remote, self.save_dir = _save_dir(provenance_save_dir, self.options["storage_options"])
        self.experiment_dir = self.save_dir / slug(self.experiment_name)
        self.run_id, self.run_dir = _run_dir(self.experiment_dir, self.rank, self.options["run_id"], self._remote, self.save_dir)
        self.prov_path = self.run_dir / f"prov_rank{self.rank}.json"
        self.metrics_dir = self.run_dir / "metrics"
        self.journal_dir = _state.journal_dir(self.run_dir, self.rank)
        self.artifacts = ArtifactStore(self.run_dir, self.rank)
        self.start_time = _time()
        self.end_time: Optional[float] = None
        self.status = "running"
        self.error: Optional[Tuple[str, str]] = None
        self.user = self.options["user"] or _login_name()
        self.pid = os.getpid()
        self._lock = threading.RLock()
        self.records = RecordsRecorder(self.artifacts, self._lock, self._check_open, self._count_log, self.default_context)
        self._ended = False
        self._deferred_signal: Optional[int] = None
        self._interrupted = False  # a Ctrl-C reached this process while the run was active
        self._last_written: Optional[tuple] = None  # what the document on disk describes
        self._last_saved: Optional[tuple] = None  # what state.pickle holds (when the sink writes the document)
        self._at_end: List[Callable[[], None]] = []  # see at_end
        self._refresher: Optional[Refresher] = None
        self._mirror: Optional[storage.Mirror] = None
        self._lease: Optional[storage.Lease] = None
        self.metrics = MetricRecorder(
            str(self.journal_dir), self._format, self.rank, save_after_n_logs, samplers,
            self.options["default_sampler"], self.default_context, self._poke,
        )
        self.collectors = Collectors(self.records, self.metrics.record_reading, self._check_open, self._poke,
                                     self.options, self.run_dir, self.rank)
        if self.recording:
            self._open(*intervals)
        else:  # a rank that records nothing writes nothing and starts no thread
            self.metrics.recording = False
        self.log_metric = self.metrics.log_metric  # the hot path (C, once the recorder is open): no extra call layer

    def _open(self, min_interval: float, max_interval: float) -> None:
        """Create the files of a recording run, write its first document, start its threads."""
        try:
            _state.write_owner(self.journal_dir, self.pid, self.start_time, self._separator,
                               self._format.suffix.lstrip("."), self._format.compressor)
            self.metrics_dir.mkdir(exist_ok=True)
            self.artifacts.root.mkdir(parents=True, exist_ok=True)
            outputs.write_snapshot(self)  # before the journals: a kill never leaves a journal without records
            self.metrics.open()
            # records share the point journal's order: each frame carries the journal's position
            self.records.start_journal(RecordJournal(str(self.journal_dir), position=self.metrics.journal.mark))
            if self._remote is not None:
                self._lease = storage.Lease(self._remote, self.run_dir, self.rank, float(self.options["lease_ttl"]))
                self._mirror = storage.Mirror(self._remote, self.run_dir, self.rank)
        except OSError as exc:
            self.metrics.close()
            self.records.close_journal()
            raise StorageError(
                f"cannot record into {self.run_dir}: {exc.strerror or exc}; pass a writable "
                "provenance_save_dir with free space"
            ) from None
        self._refresher = Refresher(
            str(self.journal_dir), str(self.run_dir), self._separator, functools.partial(outputs.refresh, self),
            min_interval, max_interval, use_process=bool(self.options["writer_process"]),
            save_records=functools.partial(outputs.save_records, self), document_writer=LIVE_DOCUMENT_WRITER,
        )
        self.collectors.start_capture()

    # ------------------------------------------------------------------ metrics
    def log_metric(
        self,
        key: str,
        value: Any,
        context: Any = None,
        step: Optional[int] = None,
        source: Optional[LoggingItemKind] = None,
        timestamp: Any = None,
    ) -> None:
        """Record one point; durable against a kill when the call returns (see docs/formats.md)."""
        self.metrics.log_metric(key, value, context, step, source, timestamp)

    def log_metrics(self, metrics: Dict[str, Any], context: Any = None, step: Optional[int] = None, **kw: Any) -> None:
        """Record several points at one step: all of them, or (on a bad key or value) none."""
        if not isinstance(metrics, dict):
            raise InvalidValueError(f"log_metrics takes a dict of name -> value, got {type(metrics).__name__}")
        unknown = set(kw) - {"source", "timestamp"}
        if unknown:
            raise ArgumentError(f"log_metrics() got unexpected keyword argument(s) {sorted(unknown)}")
        if step is not None:
            step = check_step(step)
        if kw.get("timestamp") is not None:
            check_timestamp(kw["timestamp"])
        checked = {}
        for key, value in metrics.items():  # check everything before anything is recorded
            check_name(key, "metric key")
            if callable(value) and not _values.is_tensor(value) and self.metrics.has_sampler(key):
                checked[key] = value  # stays lazy: its sampler decides whether it runs
            else:
                checked[key] = _values.metric_value(_values.evaluate(value, key), key)
        for key, value in checked.items():
            self.log_metric(key, value, context, step, **kw)

    def record_reading(self, key: str, value: float, unit: str, context: Any, step: Optional[int], kind: LoggingItemKind, timestamp: Any = None) -> None:
        """A collector's measurement: a metric point whose series carries a unit."""
        self.metrics.record_reading(key, value, unit, context, step, kind, timestamp)

    def flush(self, timeout: float = 60.0) -> None:
        """Bring the metric files and the PROV-JSON up to date, and wait until both are on disk."""
        if self._check_open("flush"):
            self.metrics.journal_deferred()
            self._refresher.flush(timeout)

    def register_final_metric(self, metric_name: str, initial_value: Any, fold_operation: Callable[[Any, Any], Any]) -> None:
        recording = self._check_open("register_final_metric")
        check_name(metric_name, "metric_name")
        fm = FinalMetric(metric_name, initial_value, fold_operation)
        if recording:
            self.metrics.journal_deferred()
            self.metrics.register_fold(fm)  # the fold starts exactly at this call
            with self._lock:
                self.records.keep("final", (metric_name, fm.operation_name))

    def log_current_execution_time(self, label: str, context: Any = None, step: Optional[int] = None) -> None:
        self.record_reading(label, _time() - self.start_time, "s", context, step, LoggingItemKind.EXECUTION_TIME)

    # ------------------------------------------------------------------ the parts' calls
    def log_param(self, key: str, value: Any, context: Any = None, source: Any = None, is_input: bool = True) -> None:
        self.records.log_param(key, value, context, source, is_input)

    def log_params(self, params: Dict[str, Any], context: Any = None) -> None:
        self.records.log_params(params, context)

    def log_optimizer(self, optimizer: Any) -> None:
        """The optimizer's class and hyper-parameters (of its first parameter group) as parameters."""
        self.records.log_optimizer(optimizer)

    def mark_epoch(self, epoch: int, context: Any = None) -> None:
        """Epoch ``epoch`` of ``context`` starts now; it lasts until the next mark of that context."""
        self.records.mark_epoch(epoch, context)

    def log_artifact(self, a: "calls.ArtifactCall") -> Optional[ArtifactRecord]:
        """Copy (or, with ``copy=False``, reference) a file or folder; see ``prov4ml.log_artifact``."""
        return self.records.log_artifact(a)

    def log_written_artifact(self, path: Path, context: Any = None, step: Optional[int] = None, role: str = "artifact") -> Optional[ArtifactRecord]:
        """Record a file or folder written at ``self.artifacts.new_path(name)`` (no copy is made)."""
        return self.records.log_written_artifact(path, context, step, role)

    def log_model(self, m: "calls.ModelCall") -> None:
        """The model's entity: its info, weights, architecture and (``log_layers``) layer table."""
        self.records.log_model(m)

    def save_model_version(self, v: "calls.VersionCall") -> None:
        """A numbered version of the model ``v.name`` (0, 1, ... per name), derived from the previous one."""
        self.records.save_model_version(v)

    def log_dataset(self, d: "calls.DatasetCall") -> None:
        self.records.log_dataset(d)

    def log_source_code(self, path: Optional[str] = None, use_git: bool = False) -> None:
        """Copy the source file or folder (default: the ``__main__`` script) into the run, once;
        ``use_git=True`` records its repository's commit, branch, remote and dirty flag instead."""
        self.records.log_source_code(path, use_git)

    def log_execution_start_time(self) -> None:
        self.records.note("execution_start_time", datetime.now(timezone.utc))

    def log_execution_end_time(self) -> None:
        self.records.note("execution_end_time", datetime.now(timezone.utc))

    def log_execution_command(self, cmd: str, path: Optional[str] = None) -> None:
        self.records.note("execution_command", redact_command_line(cmd if path is None else f"{cmd} {path}"))

    def collector(self, name: str, factory: Callable[[], Any]) -> Any:
        """The run's instance of a collector, made on first use."""
        return self.collectors.collector(name, factory)

    def log_system_metrics(self, context: Any = None, step: Optional[int] = None, synchronous: bool = True, timestamp: Any = None) -> None:
        self.collectors.log_system_metrics(context, step, synchronous, timestamp)

    def log_carbon_metrics(self, context: Any = None, step: Optional[int] = None) -> None:
        self.collectors.log_carbon_metrics(context, step)

    def log_flops_per_batch(self, label: str, model: Any, batch: Any, context: Any = None, step: Optional[int] = None) -> None:
        self.collectors.log_flops_per_batch(label, model, batch, context, step)

    def log_flops_per_epoch(self, label: str, model: Any, dataset: Any, context: Any = None, step: Optional[int] = None) -> None:
        self.collectors.log_flops_per_epoch(label, model, dataset, context, step)

    def snapshot(self) -> RunSnapshot:
        """A copy of everything recorded so far, for the provenance builder."""
        return outputs.snapshot(self)

    # ------------------------------------------------------------------ lifecycle
    def _check_open(self, call: str) -> bool:
        """Calls on an ended run raise; in a forked child they warn once (see _lifecycle). True: record the call."""
        if self._ended and self.pid == os.getpid():
            raise RunStateError(f"{call}(): this run has ended; start a new one with prov4ml.start_run(...)")
        if not self.recording:
            self.metrics.refuse()
        return self.recording

    def _count_log(self) -> None:
        """A record was added: it counts as a log call, and the document shows it within ~50 ms."""
        self.metrics.count_log()
        if self._refresher is not None:
            self._refresher.poke_soon()

    def _poke(self) -> None:
        if self._refresher is not None:
            self._refresher.poke()

    def at_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the run ends, before it stops recording (a wrapper writes its last data)."""
        with self._lock:
            self._at_end.append(callback)

    def end(
        self,
        create_graph: bool = False,
        create_svg: bool = False,
        status: str = "finished",
        error: Optional[BaseException] = None,
        create_provenance_collection: bool = False,
        timeout: float = 60.0,
        crate_ro_crate: bool = False,
        create_card: bool = False,
        end_time: Optional[float] = None,
    ) -> Path:
        """Write every point and the final PROV-JSON (and graph, SVG, collection); idempotent.

        A SIGTERM or Ctrl-C that arrives meanwhile is held until the run is
        written, then acted on. Storage failures are warned about and recorded,
        not raised (unless the run was started with ``strict=True``).
        ``end_time`` (Unix seconds; default: now) and ``status="running"`` (no end
        time) are for a run imported from another tool (``prov4ml import``).
        """
        with _lifecycle.holding_signals(self):
            ending.run_at_end(self)
            try:
                return ending.end(self, create_graph, create_svg, status, error, create_provenance_collection, timeout,
                                  crate_ro_crate, create_card, end_time)
            finally:
                storage.finish(self._mirror, self._mirror_timeout, self._lease)

    @property
    def url(self) -> Optional[str]:
        """The run's URL when it is recorded to object storage (``run_dir`` is then its staging copy), else None."""
        return None if self._remote is None else self._remote.url_of(self.run_dir)

    @property
    def experiment_url(self) -> Optional[str]:
        """The experiment's URL when the run is recorded to object storage, else None."""
        return None if self._remote is None else self._remote.url_of(self.experiment_dir)

    def set_outcome(self, status: str, error: Optional[BaseException] = None, signum: Optional[int] = None) -> None:
        """How the run ended: an error marks it failed, Ctrl-C interrupted, SIGTERM terminated."""
        if isinstance(error, KeyboardInterrupt):
            status, signum = "interrupted", signum or signal.SIGINT
        elif error is not None:
            status = "failed"
            self.error = (type(error).__name__, redact_value(str(error)))
        if signum is not None:
            self.records.notes["signal"] = signal.Signals(signum).name
            if status == "finished":
                status = "terminated" if signum == signal.SIGTERM else "interrupted"
        self.status = status

    def _finalize_files(self) -> None:
        """Convert the metric files to the chosen format (``ending`` calls it through the run: a seam for tests)."""
        ending.finalize_files(self)

    def __repr__(self) -> str:
        return f"<prov4ml.Run {self.experiment_name}/run_{self.run_id} rank={self.rank} status={self.status}>"


def _known_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """start_run's keywords over their defaults; an unknown one is warned about (at the user's line) and ignored."""
    calls.warn_unknown_options(set(options) - set(OPTIONS), OPTIONS)
    known = {**OPTIONS, **{k: v for k, v in options.items() if k in OPTIONS}}
    if not known["disable_codecarbon"]:
        known["carbon_country"] = _values.check_country(known["carbon_country"])
    return known


def _checked_options(options: Dict[str, Any], provenance_save_dir: Any) -> tuple:
    """The refresh intervals, the samplers, the separator, the file format and the mirror timeout, checked
    (and the type of ``provenance_save_dir``, in the order start_run always checked them)."""
    min_interval = _interval(options, "prov_flush_interval")
    max_interval = max(min_interval, _interval(options, "flush_interval"))
    separator = _separator(options["csv_separator"])
    fmt = get_format(options["metrics_file_type"], options["use_compressor"])
    samplers = dict(options["metric_samplers"] or {})
    for spec in list(samplers.values()) + [options["default_sampler"]]:
        make_sampler(spec)  # validate now, not at the first log_metric
    _interval(options, "lease_ttl")
    if provenance_save_dir is not None and not isinstance(provenance_save_dir, (str, os.PathLike)):
        raise InvalidValueError(f"provenance_save_dir must be a path, got {provenance_save_dir!r}")
    return (min_interval, max_interval), samplers, separator, fmt, _interval(options, "mirror_timeout")


def _save_dir(provenance_save_dir: Any, storage_options: Any) -> Tuple[Optional[Any], Path]:
    """The remote storage (None: a local path) and the local folder the runs are written in."""
    remote = storage.remote_for(provenance_save_dir, storage_options)
    try:
        return remote, remote.local if remote else Path(provenance_save_dir or "prov").expanduser().resolve()
    except RuntimeError:
        raise InvalidValueError(f"provenance_save_dir {provenance_save_dir!r}: its ~user has no home directory") from None


def _run_dir(experiment_dir: Path, rank: int, run_id: Optional[int], remote: Any, save_dir: Path) -> Tuple[int, Path]:
    """The run's id and its directory, created (and claimed in the bucket)."""
    try:
        return layout.allocate_run_dir(experiment_dir, rank, run_id, claim=remote)
    except StorageError:
        raise  # the bucket's own message
    except OSError as exc:
        raise StorageError(
            f"cannot create the run directory under {save_dir}: {exc.strerror or exc}; pass a writable "
            "provenance_save_dir (start_run(..., provenance_save_dir='path/you/can/write'))"
        ) from None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _default_experiment_name() -> str:
    from ..collectors.environment import main_source

    main = main_source()
    return Path(main).stem if main else "experiment"
