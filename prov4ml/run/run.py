"""The Run: one active run per process, its lifecycle, flush policy and failure capture."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import sys
import threading
import time
import warnings
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _values, calls, storage
from ..records import state as _state
from . import layout, lifecycle as _lifecycle
from .._fs import atomic_write_text, slug
from ..records.recorder import ItemRecording
from .._version import __version__
from ..records.artifacts import ArtifactStore
from ..context import Context, LoggingItemKind, resolve_context
from ..exceptions import ArgumentError, InvalidValueError, RunStateError, StorageError
from ..metrics.folds import FinalMetric
from ..metrics.formats import archives_run, get_format
from .._values import check_name, check_step, check_timestamp
from ..metrics.recorder import MetricRecorder
from ..metrics.samplers import make_sampler
from ..metrics.writer import Refresher
from ..records.model import (
    utc,
    ArtifactRecord,
    DatasetRecord,
    EpochRecord,
    FinalValue,
    ModelRecord,
    ModelVersionRecord,
    ParamRecord,
    RunSnapshot,
)

__all__ = ["Run", "OPTIONS"]

_time = time.time
_CAPTURE_DELAY = 1.0  # seconds between start_run and the environment capture
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


class Run(ItemRecording):
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
        calls.warn_unknown_options(set(options) - set(OPTIONS), OPTIONS)
        self.options = {**OPTIONS, **{k: v for k, v in options.items() if k in OPTIONS}}
        if not self.options["disable_codecarbon"]:
            self.options["carbon_country"] = _values.check_country(self.options["carbon_country"])
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
        min_interval = _interval(self.options, "prov_flush_interval")
        max_interval = max(min_interval, _interval(self.options, "flush_interval"))
        separator = self._separator = _separator(self.options["csv_separator"])
        self._format = get_format(self.options["metrics_file_type"], self.options["use_compressor"])
        samplers = dict(self.options["metric_samplers"] or {})
        for spec in list(samplers.values()) + [self.options["default_sampler"]]:
            make_sampler(spec)  # validate now, not at the first log_metric

        if provenance_save_dir is not None and not isinstance(provenance_save_dir, (str, os.PathLike)):
            raise InvalidValueError(f"provenance_save_dir must be a path, got {provenance_save_dir!r}")
        self._mirror_timeout = _interval(self.options, "mirror_timeout")
        self._remote = storage.remote_for(provenance_save_dir, self.options["storage_options"])  # None: a local path
        try:
            self.save_dir = self._remote.local if self._remote else Path(provenance_save_dir or "prov").expanduser().resolve()
        except RuntimeError:
            raise InvalidValueError(f"provenance_save_dir {provenance_save_dir!r}: its ~user has no home directory") from None
        self.experiment_dir = self.save_dir / slug(self.experiment_name)
        try:
            self.run_id, self.run_dir = layout.allocate_run_dir(
                self.experiment_dir, self.rank, self.options["run_id"], claim=self._remote
            )
        except StorageError:
            raise  # the bucket's own message
        except OSError as exc:
            raise StorageError(
                f"cannot create the run directory under {self.save_dir}: {exc.strerror or exc}; pass a writable "
                "provenance_save_dir (start_run(..., provenance_save_dir='path/you/can/write'))"
            ) from None
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
        self._params: List[ParamRecord] = []
        self._param_values: Dict[str, Any] = {}
        self._artifacts: List[ArtifactRecord] = []
        self._models: List[ModelRecord] = []
        self._versions: List[ModelVersionRecord] = []
        self._last_version: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._last_version_by_name: Dict[str, int] = {}
        self._datasets: List[DatasetRecord] = []
        self._contexts: Dict[Context, List[Optional[float]]] = {}
        self._epochs: List[Tuple[Context, int, float]] = []  # (context, epoch, start) marks
        self._notes: Dict[str, Any] = {}
        self._environment: Dict[str, Any] = {"host": socket.gethostname()}  # known at once; the capture adds the rest
        self._source_code: Optional[str] = None
        self._command = _state.redacted_command(sys.argv)
        self._collectors: Dict[str, Any] = {}
        self._ended = False
        self._ending = False
        self._deferred_signal: Optional[int] = None
        self._interrupted = False  # a Ctrl-C reached this process while the run was active
        self._last_written: Optional[tuple] = None  # what the document on disk describes
        self._last_saved: Optional[tuple] = None  # what state.pickle holds (when the sink writes the document)
        self._at_end: List[Callable[[], None]] = []  # see at_end

        self._capture_thread: Optional[threading.Thread] = None
        self._capture_now = threading.Event()
        self._refresher: Optional[Refresher] = None
        self._mirror: Optional[storage.Mirror] = None
        self.metrics = MetricRecorder(
            str(self.journal_dir), self._format, self.rank, save_after_n_logs, samplers,
            self.options["default_sampler"], self.default_context, self._poke,
        )
        if not self.recording:  # a rank that records nothing writes nothing and starts no thread
            self.metrics.recording = False
            self.log_metric = self.metrics.log_metric
            return
        try:
            self.metrics.open()
            self.metrics_dir.mkdir(exist_ok=True)
            self.artifacts.root.mkdir(parents=True, exist_ok=True)
            _state.write_owner(self.journal_dir, self.pid, self.start_time, separator, self._format.suffix.lstrip("."),
                               self._format.compressor)
            self._write_snapshot()  # a readable document exists when start_run returns
            if self._remote is not None:
                self._mirror = storage.Mirror(self._remote, self.run_dir, self.rank)
        except OSError as exc:
            self.metrics.close()
            raise StorageError(
                f"cannot record into {self.run_dir}: {exc.strerror or exc}; pass a writable "
                "provenance_save_dir with free space"
            ) from None
        self.log_metric = self.metrics.log_metric  # the hot path: no extra call layer
        self._refresher = Refresher(
            str(self.journal_dir), str(self.run_dir), separator, self._refresh,
            min_interval, max_interval, use_process=bool(self.options["writer_process"]),
            save_records=self._save_records, document_writer=LIVE_DOCUMENT_WRITER,
        )
        self._start_capture()

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

    def _poke(self) -> None:
        if self._refresher is not None:
            self._refresher.poke()

    def flush(self, timeout: float = 60.0) -> None:
        """Bring the metric files and the PROV-JSON up to date, and wait until both are on disk."""
        self._check_open("flush")
        if self.recording:
            self.metrics.journal_deferred()
            self._refresher.flush(timeout)

    def register_final_metric(self, metric_name: str, initial_value: Any, fold_operation: Callable[[Any, Any], Any]) -> None:
        self._check_open("register_final_metric")
        check_name(metric_name, "metric_name")
        fm = FinalMetric(metric_name, initial_value, fold_operation)
        if self.recording:
            self.metrics.journal_deferred()
            self.metrics.register_fold(fm)  # the fold starts exactly at this call

    def log_current_execution_time(self, label: str, context: Any = None, step: Optional[int] = None) -> None:
        self.record_reading(label, _time() - self.start_time, "s", context, step, LoggingItemKind.EXECUTION_TIME)

    def log_execution_start_time(self) -> None:
        self._note("execution_start_time", datetime.now(timezone.utc))

    def log_execution_end_time(self) -> None:
        self._note("execution_end_time", datetime.now(timezone.utc))

    def _check_open(self, call: str) -> None:
        """Calls on an ended run raise; in a forked child they warn once (see _lifecycle)."""
        if self._ended and self.pid == os.getpid():
            raise RunStateError(f"{call}(): this run has ended; start a new one with prov4ml.start_run(...)")
        if not self.recording:
            self.metrics.refuse()

    # ------------------------------------------------------------------ records
    def _note(self, key: str, value: Any) -> None:
        self._check_open("log")
        if self.recording:
            with self._lock:
                self._notes[key] = value
            self._count_log()

    def _count_log(self) -> None:
        """A record was added: it counts as a log call, and the document shows it within ~50 ms."""
        self.metrics.count_log()
        if self._refresher is not None:
            self._refresher.poke_soon()

    def _touch(self, ctx: Optional[Context], when: Optional[float] = None) -> None:
        while ctx is not None:
            when_ = when if when is not None else _time()
            span = self._contexts.setdefault(ctx, [when_, when_])
            span[0] = min(span[0], when_)
            span[1] = max(span[1], when_)
            ctx = ctx.parent

    def log_param(self, key: str, value: Any, context: Any = None, source: Any = None, is_input: bool = True) -> None:
        self._check_open("log_param")
        if not isinstance(key, str) or not key:
            raise InvalidValueError(f"parameter key must be a non-empty string, got {key!r}")
        if not self.recording:
            return
        ctx = resolve_context(context) if context is not None else None
        value = _values.param_value(value)
        source = calls.source_name(source, "log_param")
        with self._lock:
            previous = self._param_values.get(key, _MISSING)
            if previous is not _MISSING and previous == value:
                return
            if previous is not _MISSING:
                warnings.warn(f"parameter {key!r} changed from {previous!r} to {value!r}; both are kept", stacklevel=3)
                key_id = f"{key}#{sum(1 for p in self._params if p.key.split('#')[0] == key) + 1}"
            else:
                key_id = key
            self._param_values[key] = value
            self._params.append(ParamRecord(key_id, value, ctx, source, bool(is_input)))
            if ctx is not None:
                self._touch(ctx)
        self._count_log()

    def log_params(self, params: Dict[str, Any], context: Any = None) -> None:
        if not isinstance(params, dict):
            raise InvalidValueError(f"log_params takes a dict of name -> value, got {type(params).__name__}")
        for key, value in params.items():
            self.log_param(key, value, context)

    def mark_epoch(self, epoch: int, context: Any = None) -> None:
        """Epoch ``epoch`` of ``context`` starts now; it lasts until the next mark of that context."""
        self._check_open("mark_epoch")
        epoch = check_step(epoch)
        if not self.recording:
            return
        ctx = resolve_context(context) if context is not None else self.default_context
        with self._lock:
            when = _time()
            self._epochs.append((ctx, epoch, when))
            self._touch(ctx, when)
        self._count_log()

    def _epoch_records(self) -> List[EpochRecord]:
        """Each mark ends at the next mark of its context, the last at the context's last record."""
        out: List[EpochRecord] = []
        next_start: Dict[Context, float] = {}
        for ctx, epoch, start in reversed(self._epochs):
            end = next_start.get(ctx, max(start, self._contexts[ctx][1]))  # a mark touched its context
            out.append(EpochRecord(ctx, epoch, utc(start), utc(end)))
            next_start[ctx] = start
        return out[::-1]

    def log_execution_command(self, cmd: str, path: Optional[str] = None) -> None:
        self._note("execution_command", cmd if path is None else f"{cmd} {path}")

    def log_optimizer(self, optimizer: Any) -> None:
        """The optimizer's class and hyper-parameters (of its first parameter group) as parameters."""
        groups = getattr(optimizer, "param_groups", None) or [getattr(optimizer, "defaults", None)]
        if not isinstance(groups, (list, tuple)) or not isinstance(groups[0], dict):
            raise InvalidValueError(f"log_optimizer() needs a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.log_param("optimizer", type(optimizer).__name__)
        for key, value in groups[0].items():
            if key != "params" and isinstance(value, (int, float, bool, str)):
                self.log_param(f"optimizer.{key}", value)

    # ------------------------------------------------------------------ collectors
    def collector(self, name: str, factory: Callable[[], Any]) -> Any:
        """The run's instance of a collector, made on first use."""
        with self._lock:
            obj = self._collectors.get(name)
            if obj is None:
                obj = self._collectors[name] = factory()
            return obj

    def _readings(self, readings, context: Any, step: Optional[int], kind: LoggingItemKind, timestamp: Any) -> None:
        for r in readings:
            self.record_reading(r.name, r.value, r.unit, context, step, kind, timestamp)

    def log_system_metrics(self, context: Any = None, step: Optional[int] = None, synchronous: bool = True, timestamp: Any = None) -> None:
        self._check_open("log_system_metrics")
        if not self.recording:
            return
        from ..collectors.system import SystemSampler

        sampler = self.collector("system", SystemSampler)
        if timestamp is None:
            timestamp = datetime.now(timezone.utc)
        if synchronous:
            self._system_sample(sampler, context, step, timestamp)
        else:
            self.collector("background", _background_executor).submit(self._system_sample, sampler, context, step, timestamp)

    def _system_sample(self, sampler: Any, context: Any, step: Optional[int], timestamp: Any) -> None:
        readings = sampler.sample()
        self._notes.setdefault("gpu", sampler.gpu_status)
        self._readings(readings, context, step, LoggingItemKind.SYSTEM_METRIC, timestamp)

    def log_carbon_metrics(self, context: Any = None, step: Optional[int] = None) -> None:
        self._check_open("log_carbon_metrics")
        if not self.recording:
            return
        if self.options["disable_codecarbon"]:
            self._notes.setdefault("carbon", "not recorded: disable_codecarbon=True")
            return
        from ..collectors.carbon import CarbonMeter

        meter = self.collector(
            "carbon", lambda: CarbonMeter(country_iso_code=self.options["carbon_country"], output_dir=str(self.run_dir))
        )
        readings = meter.measure()
        self._notes["carbon"] = meter.mode
        self._readings(readings, context, step, LoggingItemKind.CARBON_METRIC, None)

    def log_flops_per_batch(self, label: str, model: Any, batch: Any, context: Any = None, step: Optional[int] = None) -> None:
        self._check_open("log_flops_per_batch")
        if not self.recording:
            return
        from ..collectors.flops import count_batch_flops

        self._flops(label, count_batch_flops(model, batch), context, step, LoggingItemKind.FLOPS_PER_BATCH)

    def log_flops_per_epoch(self, label: str, model: Any, dataset: Any, context: Any = None, step: Optional[int] = None) -> None:
        self._check_open("log_flops_per_epoch")
        if not self.recording:
            return
        from ..collectors.flops import count_epoch_flops

        self._flops(label, count_epoch_flops(model, dataset), context, step, LoggingItemKind.FLOPS_PER_EPOCH)

    def _flops(self, label: str, count: Any, context: Any, step: Optional[int], kind: LoggingItemKind) -> None:
        self.record_reading(label, float(count.flops), "FLOPs", context, step, kind)
        note = f"{count.counter}; {count.convention}" + (f"; {count.note}" if count.note else "")
        self._note(f"flops_counter_{label}", note)

    # ------------------------------------------------------------------ capture
    def _start_capture(self) -> None:
        setting = self.options["capture"]
        if setting is False:
            return
        parts = dict(setting) if isinstance(setting, dict) else {}
        self._capture_thread = threading.Thread(
            target=self._capture, args=(parts,), name="prov4ml-capture", daemon=True
        )
        self._capture_thread.start()

    def _capture(self, parts: Dict[str, bool]) -> None:
        # The capture waits a moment, so that the first steps of training have the CPU to themselves;
        # end_run (or a run shorter than that) starts it at once.
        self._capture_now.wait(_CAPTURE_DELAY)
        try:
            self._capture_into(parts)
        except Exception as exc:  # capture must never break the run (a full disk, a broken git)
            with self._lock:
                self._notes["capture_error"] = repr(exc)

    def _capture_into(self, parts: Dict[str, bool]) -> None:
        from . import capture; from ..collectors import environment

        main = environment.main_source()
        if main and self._source_code == str(Path(main).resolve()):
            main = None  # log_source_code() has copied it already
        request = {
            "run_dir": str(self.run_dir), "rank": self.rank, "parts": parts,
            "env_vars": bool(self.options["capture_env_vars"]), "argv": list(sys.argv), "main": main,
            # git describes the script's repository, not the one the script was started from
            "cwd": str(Path(main).parent) if main else os.getcwd(),
        }
        try:
            answer = capture.capture_in_child(request)
        except Exception as exc:  # no child process here: the same work in this thread
            self._notes["capture_process"] = f"ran in the training process: {exc}"
            answer = capture.capture_into(**request)
        records = capture.records_of(answer)
        with self._lock:
            self._environment.update(answer["env"])
            if answer["main_source"] and self._source_code is None:
                self._source_code = answer["main_source"]
            if answer["command"]:
                self._command = answer["command"]
            copied = {a.original for a in self._artifacts if a.role == "source"}
            twins = [r for r in records if r.role == "source" and r.original in copied]  # log_source_code() was faster
            self._artifacts.extend(r for r in records if r not in twins)
        for twin in twins:
            (self.run_dir / twin.location).unlink(missing_ok=True)
        self._poke()

    # ------------------------------------------------------------------ output
    def snapshot(self) -> RunSnapshot:
        """A copy of everything recorded so far, for the provenance builder."""
        with self._lock:
            series = [s.summary() for s in list(self.metrics.series.values())]
            for s in series:  # a context spans the points logged in it
                if s.first_time is not None:
                    self._touch(s.context, s.first_time.timestamp())
                    self._touch(s.context, s.last_time.timestamp())
            notes = dict(self._notes)
            problems = self._problems()
            if problems:
                notes["writer_errors"] = " | ".join(problems[-5:])
            return RunSnapshot(
                user_namespace=self.user_namespace,
                user=self.user,
                experiment_name=self.experiment_name,
                run_id=self.run_id,
                rank=self.rank,
                run_dir=str(self.run_dir) if self._remote is None else self._remote.url_of(self.run_dir),
                start_time=utc(self.start_time),
                end_time=utc(self.end_time),
                status=self.status,
                error=self.error,
                library_version=__version__,
                params=list(self._params),
                series=series,
                artifacts=list(self._artifacts),
                models=list(self._models),
                versions=list(self._versions),
                datasets=list(self._datasets),
                final_metrics=[FinalValue(f.name, f.value, f.operation_name, f.failed) for f in list(self.metrics.folds.values())],
                contexts={c: (utc(a), utc(b)) for c, (a, b) in self._contexts.items()},
                environment=dict(self._environment),
                source_code=self._source_code,
                command=self._command,
                notes=notes,
                epochs=self._epoch_records(),
            )

    def _problems(self) -> List[str]:
        problems = list(self.metrics.fold_errors)
        journal = self.metrics.journal
        if journal is not None and journal.error:
            problems.append(journal.error)
        if journal is not None and journal.dropped:
            problems.append(f"{journal.dropped:,} points were not kept: the disk stayed full past the spare journal segment")
        if self._refresher is not None:
            problems += self._refresher.errors
        return problems

    def _apply_report(self, report: Dict[str, Any]) -> None:
        """Take the consumer's summaries: the document describes what the files hold."""
        by_sid = self.metrics.by_sid
        for sid, stats in report.get("series", {}).items():
            by_sid[int(sid)].update(stats)

    def _upkeep(self, report: Optional[Dict[str, Any]]) -> None:
        if report is not None:
            self._apply_report(report)
        self.metrics.apply_folds()
        self.metrics.journal.retry()
        if self.options["fsync"]:
            self.metrics.journal.sync()

    def _refresh(self, report: Dict[str, Any]) -> None:
        """The refresher's work when this process writes the document: summaries, folds, the document if changed."""
        self._upkeep(report)
        state = (tuple(sorted((k, v[0]) for k, v in report.get("series", {}).items())), self._records_state())
        if state != self._last_written:
            self._write_snapshot()
            self._last_written = state
        if self._mirror is not None:
            self._mirror.push()  # returns at once: the copy is made by the mirror's thread

    def _save_records(self, report: Optional[Dict[str, Any]]) -> None:
        """The refresher's work when the sink writes the document: save the records if they changed."""
        self._upkeep(report)
        state = self._records_state()
        if state != self._last_saved:
            _state.save_snapshot(self.journal_dir, self.snapshot())
            self._last_saved = state
        if self._mirror is not None:
            self._mirror.push()  # returns at once; it copies the files (and the sink's last document) in its thread

    def _records_state(self) -> tuple:
        """Changes whenever something the document says, other than the series summaries, changes."""
        with self._lock:
            return (
                len(self.metrics.series), len(self._params), len(self._artifacts), len(self._models),
                len(self._versions), len(self._datasets), len(self._environment), repr(sorted(self._notes.items(), key=str)), len(self._epochs),
                tuple((f.name, f.count, f.failed) for f in list(self.metrics.folds.values())),
                len(self._problems()), self._source_code, self._command, tuple(self._contexts.items()),
            )

    def _write_snapshot(self, final: bool = False) -> None:
        from ..provenance import build_document, to_json

        snap = self.snapshot()
        text = to_json(build_document(snap), indent=1 if final else None)  # the final one is for people to read
        atomic_write_text(self.prov_path, text, fsync=final)
        _state.save_snapshot(self.journal_dir, snap)

    # ------------------------------------------------------------------ end
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
    ) -> Path:
        """Write every point and the final PROV-JSON (and graph, SVG, collection); idempotent.

        A SIGTERM or Ctrl-C that arrives meanwhile is held until the run is
        written, then acted on. Storage failures are warned about and recorded,
        not raised (unless the run was started with ``strict=True``).
        """
        with _lifecycle.holding_signals(self):
            self._run_at_end()
            try:
                return self._end(create_graph, create_svg, status, error, create_provenance_collection, timeout,
                                 crate_ro_crate, create_card)
            finally:
                storage.finish(self._mirror, self._mirror_timeout)

    def _run_at_end(self) -> None:
        with self._lock:
            if self._ended or self.pid != os.getpid():
                return
            callbacks, self._at_end = self._at_end, []
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:  # the run is saved without that data; say so
                warnings.warn(f"end_run: {callback!r} failed: {type(exc).__name__}: {exc}", stacklevel=4)
                self._notes[f"at_end_error_{len(self._notes)}"] = f"{type(exc).__name__}: {exc}"

    def _end(self, create_graph: bool, create_svg: bool, status: str, error: Optional[BaseException],
             create_provenance_collection: bool, timeout: float, crate: bool = False, card: bool = False) -> Path:
        with self._lock:
            if self._ended:
                return self.prov_path
            self._ended = True
        _lifecycle.deactivate(self)
        if self.pid != os.getpid():  # a forked child never finalises its parent's run
            self.metrics.recording = False
            return self.prov_path
        if not self.recording:
            self.metrics.close()
            if create_provenance_collection:
                self._collection()
            return self.prov_path
        self._finish(status, error, timeout, card, crate)
        if self.options["strict"]:
            problems = self._problems()
            if problems:
                raise StorageError(f"end_run: the run is saved, but not everything could be written: {problems[-1]}")
        if create_graph or create_svg:
            self._graphs(create_svg)
        if create_provenance_collection:
            self._collection()
        if crate and self.rank == 0:  # one crate per run directory
            from ..provenance.crate import write_crate

            self._extra_output("RO-Crate", lambda: write_crate(self.snapshot(), self.run_dir))
        if archives_run(self.options["use_compressor"]):
            try:
                shutil.make_archive(str(self.run_dir), "zip", root_dir=self.run_dir)
            except OSError as exc:
                warnings.warn(f"end_run: the run is saved, but the zip could not be written: {exc}", stacklevel=3)
        return self.prov_path

    def set_outcome(self, status: str, error: Optional[BaseException] = None, signum: Optional[int] = None) -> None:
        """How the run ended: an error marks it failed, Ctrl-C interrupted, SIGTERM terminated."""
        if isinstance(error, KeyboardInterrupt):
            status, signum = "interrupted", signum or signal.SIGINT
        elif error is not None:
            status = "failed"
            self.error = (type(error).__name__, str(error))
        if signum is not None:
            self._notes["signal"] = signal.Signals(signum).name
            if status == "finished":
                status = "terminated" if signum == signal.SIGTERM else "interrupted"
        self.status = status

    def _finish(self, status: str, error: Optional[BaseException], timeout: float, card: bool = False, crate: bool = False) -> None:
        signum = {"interrupted": signal.SIGINT, "terminated": signal.SIGTERM}.get(status) if error is None else None
        self.set_outcome(status, error, signum)
        pool = self._collectors.get("background")
        if pool is not None:
            pool.shutdown(wait=True)
        carbon = self._collectors.get("carbon")
        if carbon is not None:
            try:
                carbon.stop()
            except Exception as exc:
                self._notes["carbon_error"] = repr(exc)
        self.metrics.ending = True
        self.metrics.recording = False  # from here on a log call raises RunStateError
        if any(t is not threading.current_thread() and not t.name.startswith("prov4ml-") for t in threading.enumerate()):
            time.sleep(4 * sys.getswitchinterval())  # a call another thread is in the middle of completes first
        self.metrics.journal_deferred()
        self.metrics.end_samplers()
        report = self._refresher.close(timeout)
        self._apply_report(report)
        self.metrics.apply_folds(final=True)
        if self._capture_thread is not None:
            self._capture_now.set()
            self._capture_thread.join(timeout=30)
        self._finalize_files()
        if card:  # before the end time: the run generates its card
            from ..provenance.card import write_card

            record = self._extra_output("model card", lambda: write_card(self.snapshot(), self.run_dir, crate and self.rank == 0))
            if record is not None:
                self._artifacts.append(record)
        self.end_time = max(_time(), self.start_time)
        if self._deferred_signal is not None:
            self.set_outcome(self.status, signum=self._deferred_signal)
        complete = not report.get("backlog")
        try:
            self._write_snapshot(final=True)
        except OSError as exc:
            complete = False
            self._refresher.report("final", f"could not write the final PROV-JSON ({exc}); `prov4ml recover "
                                   f"{self.run_dir}` completes it from the journal when the disk has room")
        self.metrics.close()
        if complete and not self.options["keep_journal"]:
            _state.remove(self.journal_dir)

    def _finalize_files(self) -> None:
        """Convert the appended files to the chosen format (Parquet, netCDF, Zarr), keeping the CSV on failure."""
        for s in list(self.metrics.series.values()):
            if not s.count:
                continue
            target = self.run_dir / f"metrics/{s.file_name}{self._format.suffix}"
            data = self.run_dir / s.data_file
            if data == target:
                continue
            try:
                meta = {"name": s.name, "context": str(s.context), "kind": s.kind.value, "unit": s.unit}
                s.location = self._format.finalize(data, target, self._separator, meta).relative_to(self.run_dir).as_posix()
            except Exception as exc:  # keep the other series' files
                self._refresher.report(f"finalize {s.sid}", f"could not convert {data.name}: {exc}")

    def _extra_output(self, what: str, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except Exception as exc:  # the run is saved; a card or a crate is a bonus
            warnings.warn(f"end_run: the run is saved, but the {what} could not be written: {exc}", stacklevel=5)
            return None

    def _graphs(self, svg: bool) -> None:
        dot = self.prov_path.with_suffix(".dot")
        try:
            from ..provenance import dot as prov2dot

            prov2dot.convert(self.prov_path, dot)
            if svg:
                from ..provenance import svg as dot2svg

                dot2svg.convert(dot, self.prov_path.with_suffix(".svg"))
        except Exception as exc:  # the run is saved; a graph is a bonus
            warnings.warn(f"end_run: the PROV-JSON is saved, but the graph could not be made: {exc}", stacklevel=4)

    def _collection(self) -> None:
        """Rank 0 links every document of the experiment, once every rank has written its own."""
        dist = layout.distributed()
        if dist is not None and dist.get_world_size() > 1:
            dist.barrier()  # every rank calls end_run(create_provenance_collection=True)
        if self.rank != 0:
            return
        try:
            from ..provenance import collection as prov_collection

            prov_collection.create_collection(self.experiment_dir, self.experiment_dir)
        except Exception as exc:
            warnings.warn(f"end_run: the collection could not be made: {exc}", stacklevel=4)

    def __repr__(self) -> str:
        return f"<prov4ml.Run {self.experiment_name}/run_{self.run_id} rank={self.rank} status={self.status}>"


_MISSING = object()


def _background_executor():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="prov4ml-sampler")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _default_experiment_name() -> str:
    from ..collectors.environment import main_source

    main = main_source()
    return Path(main).stem if main else "experiment"
