"""The Run: one active run per process, its lifecycle, flush policy and failure capture."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sys
import threading
import time
import warnings
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _compat, _lifecycle, layout
from ._fs import atomic_write_text, slug
from ._version import __version__
from .artifacts import ArtifactStore
from .context import Context, LoggingItemKind, resolve_context
from .exceptions import InvalidValueError
from .metrics.folds import FinalMetric
from .metrics.formats import get_format
from .metrics.samplers import Sampler, make_sampler
from .metrics.series import MetricSeries
from .metrics.writer import BackgroundWriter
from .records import (
    ArtifactRecord,
    DatasetRecord,
    ModelRecord,
    ModelVersionRecord,
    ParamRecord,
    RunSnapshot,
    SeriesSummary,
)

__all__ = ["Run", "OPTIONS"]

_time = time.time

#: start_run keywords beyond the named parameters, with their defaults.
OPTIONS: Dict[str, Any] = {
    "metric_samplers": None,  # {metric name: Sampler or name}
    "default_sampler": None,
    "metrics_file_type": "csv",
    "csv_separator": ",",
    "use_compressor": False,  # also write <run_dir>.zip at end_run
    "run_id": None,  # join/force a run id (ranks launched without torch.distributed)
    "capture": True,  # reproducibility capture: True/False or {part: bool}
    "capture_env_vars": False,
    "disable_codecarbon": False,
    "carbon_country": "USA",
    "prov_flush_interval": 0.2,  # seconds between PROV-JSON rewrites at most
    "writer_process": True,  # format metric files in a child process (False: in the writer thread)
    "user": None,  # the user agent's name; default: the login name
    "default_context": None,
    # accepted for code written for the reference library; see docs/api.md
    "use_run_id": True,
    "unify_experiments": True,
}

def _timestamp(value: Any) -> float:
    """Unix seconds from a user timestamp: milliseconds (as the reference), seconds or a datetime."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000.0 if value > 1e11 else float(value)
    raise InvalidValueError(f"timestamp must be Unix time in milliseconds (int) or a datetime, got {value!r}")


def _dt(seconds: Optional[float]) -> Optional[datetime]:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


def _step(step: Any) -> int:
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    item = getattr(step, "item", None)  # a NumPy integer or a 0-d tensor
    if callable(item):
        value = item()
        if isinstance(value, int):
            return value
    raise InvalidValueError(f"step must be an integer, got {step!r} ({type(step).__name__})")


def _step_and_time(step: Any, timestamp: Any) -> Tuple[Optional[int], Optional[datetime]]:
    """The optional step and timestamp of a file record, checked."""
    return (None if step is None else _step(step)), (None if timestamp is None else _dt(_timestamp(timestamp)))


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
        if not isinstance(prov_user_namespace, str) or not prov_user_namespace.strip():
            raise InvalidValueError(
                "prov_user_namespace must be a non-empty string such as 'www.example.org'"
            )
        if not isinstance(save_after_n_logs, int) or isinstance(save_after_n_logs, bool) or save_after_n_logs < 1:
            raise InvalidValueError(f"save_after_n_logs must be an integer >= 1, got {save_after_n_logs!r}")
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            warnings.warn(
                f"start_run: unknown option(s) {', '.join(map(repr, unknown))} ignored; "
                f"known options: {', '.join(sorted(OPTIONS))}",
                stacklevel=3,
            )
        self.options = {**OPTIONS, **{k: v for k, v in options.items() if k in OPTIONS}}
        self.user_namespace = prov_user_namespace
        self.experiment_name = experiment_name or _default_experiment_name()
        if not isinstance(self.experiment_name, str):
            raise InvalidValueError(f"experiment_name must be a string, got {experiment_name!r}")
        self.rank = layout.detect_rank(rank)
        self.collect_all_processes = bool(collect_all_processes)
        #: False on ranks > 0 unless collect_all_processes: every call is accepted and ignored.
        self.recording = self.collect_all_processes or self.rank == 0
        self.save_after_n_logs = save_after_n_logs
        self.default_context = resolve_context(self.options["default_context"])

        self._format = get_format(self.options["metrics_file_type"])
        self._samplers = dict(self.options["metric_samplers"] or {})
        for spec in list(self._samplers.values()) + [self.options["default_sampler"]]:
            make_sampler(spec)  # validate now, not at the first log_metric

        self.save_dir = Path(provenance_save_dir or "prov").expanduser().resolve()
        self.experiment_dir = self.save_dir / slug(self.experiment_name)
        self.run_id, self.run_dir = layout.allocate_run_dir(
            self.experiment_dir, self.rank, self.options["run_id"]
        )
        self.prov_path = self.run_dir / f"prov_rank{self.rank}.json"
        self.metrics_dir = self.run_dir / "metrics"
        self.artifacts = ArtifactStore(self.run_dir, self.rank)

        self.start_time = _time()
        self.end_time: Optional[float] = None
        self.status = "running"
        self.error: Optional[Tuple[str, str]] = None
        self.user = self.options["user"] or _login_name()

        self._lock = threading.RLock()
        self._by_context: Dict[Any, Dict[Any, MetricSeries]] = {}
        self._series: Dict[Tuple[Context, str], MetricSeries] = {}
        self._countdown = save_after_n_logs  # log calls left before the next hand-over
        self._params: List[ParamRecord] = []
        self._param_values: Dict[str, Any] = {}
        self._artifacts: List[ArtifactRecord] = []
        self._models: List[ModelRecord] = []
        self._versions: List[ModelVersionRecord] = []
        self._last_version: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._last_version_by_name: Dict[str, int] = {}
        self._datasets: List[DatasetRecord] = []
        self._folds: Dict[str, FinalMetric] = {}
        self._contexts: Dict[Context, List[Optional[float]]] = {}
        self._notes: Dict[str, Any] = {}
        self._environment: Dict[str, Any] = {}
        self._source_code: Optional[str] = None
        self._command = " ".join(sys.argv) if sys.argv and sys.argv[0] else None
        self._collectors: Dict[str, Any] = {}
        self._ended = False

        self._capture_thread: Optional[threading.Thread] = None
        self._writer: Optional[BackgroundWriter] = None
        if self.recording:  # a rank that records nothing writes nothing and starts no thread
            self.metrics_dir.mkdir(exist_ok=True)
            self.artifacts.root.mkdir(parents=True, exist_ok=True)
            self._writer = BackgroundWriter(
                self.metrics_dir,
                self._format,
                self.options["csv_separator"],
                snapshot=self._write_snapshot,
                on_values=self._fold_values,
                interval=float(self.options["prov_flush_interval"]),
                use_process=bool(self.options["writer_process"]),
            )
            self._writer.submit(())  # the first document, written by the writer thread right away
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
        """Record one point. The common case touches no lock, no I/O and no PROV object."""
        if not self.recording:
            return
        try:
            s = self._by_context[context][key]
        except (KeyError, TypeError):
            s = self._new_series(key, context, source)
        if step is None:
            step = s.n
        elif type(step) is not int:
            step = _step(step)
        s.n += 1
        if type(value) is not float or s.sampler is not None:
            value = self._admit(s, value)
            if value is None:
                return
        s.buf.extend((step, value, _time() if timestamp is None else _timestamp(timestamp)))
        self._countdown -= 1
        if self._countdown <= 0:
            self._hand_over()

    def _new_series(self, key: Any, context: Any, source: Optional[LoggingItemKind], unit: Optional[str] = None) -> MetricSeries:
        if not isinstance(key, str) or not key:
            raise InvalidValueError(f"metric key must be a non-empty string, got {key!r}")
        if source is not None and not isinstance(source, LoggingItemKind):
            raise InvalidValueError(f"source must be a prov4ml.LoggingItemKind, got {source!r}")
        ctx = self.default_context if context is None else resolve_context(context)
        with self._lock:
            s = self._series.get((ctx, key))
            if s is None:
                spec = self._samplers.get(key, self.options["default_sampler"])
                s = MetricSeries(
                    key, ctx, source or LoggingItemKind.METRIC, make_sampler(spec),
                    f"{slug(key)}_{slug(str(ctx))}_rank{self.rank}", unit,
                )
                self._series[(ctx, key)] = s
                self._touch(ctx)
            elif unit is not None and s.unit is None:
                s.unit = unit
            # Also index by what the caller passed ("Training", an Enum, ...) so the next call hits.
            try:
                self._by_context.setdefault(context, {})[key] = s
            except TypeError:
                pass
            return s

    def _admit(self, s: MetricSeries, value: Any) -> Any:
        """Coerce a non-float value and run the series' sampler; ``None`` means skip."""
        sampler: Optional[Sampler] = s.sampler
        if callable(value) and not _compat.is_tensor(value):
            compute = value
            if sampler is None:
                return self._coerce(s, compute())
            return sampler.next_eval(lambda: self._coerce(s, compute()))
        value = self._coerce(s, value)
        return value if sampler is None else sampler.next(value)

    @staticmethod
    def _coerce(s: MetricSeries, value: Any) -> Any:
        value = _compat.metric_value(value, s.name)
        if type(value) is not float:
            s.odd = True  # a tensor: the writer converts the chunk in one batch
        return value

    def log_metrics(self, metrics: Dict[str, Any], context: Any = None, step: Optional[int] = None, **kw: Any) -> None:
        if not isinstance(metrics, dict):
            raise InvalidValueError(f"log_metrics takes a dict of name -> value, got {type(metrics).__name__}")
        for key, value in metrics.items():
            self.log_metric(key, value, context, step, **kw)

    def record_reading(self, key: str, value: float, unit: str, context: Any, step: Optional[int], kind: LoggingItemKind, timestamp: Any = None) -> None:
        """A collector's measurement: a metric point whose series carries a unit."""
        if not self.recording:
            return
        ctx = self.default_context if context is None else resolve_context(context)
        if (ctx, key) not in self._series:
            self._new_series(key, ctx, kind, unit)
        self.log_metric(key, value, ctx, step, kind, timestamp)

    def _hand_over(self, wait: bool = False) -> None:
        """Give every buffered point to the writer (every save_after_n_logs calls)."""
        self._countdown = self.save_after_n_logs
        chunks = [(s, s.take()) for s in list(self._series.values()) if s.buf]
        if wait:
            self._writer.flush(chunks)
        else:
            self._writer.submit(chunks)

    def flush(self) -> None:
        """Write every point logged so far and the PROV-JSON, and wait until both are on disk."""
        if self.recording and not self._ended:
            self._hand_over(wait=True)

    def _fold_values(self, series: MetricSeries, values: List[float]) -> None:
        fm = self._folds.get(series.name)
        if fm is not None:
            fm.fold(values)

    def register_final_metric(self, metric_name: str, initial_value: Any, fold_operation: Callable[[Any, Any], Any]) -> None:
        if not isinstance(metric_name, str) or not metric_name:
            raise InvalidValueError(f"metric_name must be a non-empty string, got {metric_name!r}")
        fm = FinalMetric(metric_name, initial_value, fold_operation)
        if self.recording:
            self._hand_over(wait=True)  # the fold starts exactly at this call, whatever the writer's backlog
        with self._lock:
            self._folds[metric_name] = fm

    def log_current_execution_time(self, label: str, context: Any = None, step: Optional[int] = None) -> None:
        self.record_reading(label, _time() - self.start_time, "s", context, step, LoggingItemKind.EXECUTION_TIME)

    def log_execution_start_time(self) -> None:
        self._note("execution_start_time", datetime.now(timezone.utc))

    def log_execution_end_time(self) -> None:
        self._note("execution_end_time", datetime.now(timezone.utc))

    # ------------------------------------------------------------------ records
    def _note(self, key: str, value: Any) -> None:
        if self.recording:
            with self._lock:
                self._notes[key] = value
            self._count_log()

    def _count_log(self) -> None:
        self._countdown -= 1
        if self._countdown <= 0:
            self._hand_over()

    def _touch(self, ctx: Optional[Context], when: Optional[float] = None) -> None:
        while ctx is not None:
            when_ = when if when is not None else _time()
            span = self._contexts.setdefault(ctx, [when_, when_])
            span[0] = min(span[0], when_)
            span[1] = max(span[1], when_)
            ctx = ctx.parent

    def log_param(self, key: str, value: Any, context: Any = None) -> None:
        if not isinstance(key, str) or not key:
            raise InvalidValueError(f"parameter key must be a non-empty string, got {key!r}")
        if not self.recording:
            return
        ctx = resolve_context(context) if context is not None else None
        value = _compat.param_value(value)
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
            self._params.append(ParamRecord(key_id, value, ctx))
            if ctx is not None:
                self._touch(ctx)
        self._count_log()

    def log_params(self, params: Dict[str, Any], context: Any = None) -> None:
        if not isinstance(params, dict):
            raise InvalidValueError(f"log_params takes a dict of name -> value, got {type(params).__name__}")
        for key, value in params.items():
            self.log_param(key, value, context)

    def _add_artifact(self, record: ArtifactRecord) -> ArtifactRecord:
        with self._lock:
            self._artifacts.append(record)
            if record.context is not None:
                self._touch(record.context, record.time.timestamp())
        self._count_log()
        return record

    def log_artifact(self, *args: Any, **kwargs: Any) -> Optional[ArtifactRecord]:
        a = _compat.artifact_call(args, kwargs)
        if not self.recording:
            return None
        ctx = resolve_context(a.context) if a.context is not None else None
        step, when = _step_and_time(a.step, a.timestamp)
        path = Path(a.path).expanduser()
        if a.copy:
            record = self.artifacts.copy(path, a.name, ctx, step, when, role="model" if a.is_model else "artifact")
        else:
            record = self.artifacts.reference(path, ctx, step, when)
        return self._add_artifact(record)

    def log_model(self, *args: Any, **kwargs: Any) -> None:
        model, name, log_info, as_artifact = _compat.model_call(args, kwargs)
        if not self.recording:
            return
        from .collectors.model import model_info, state_of

        info = model_info(model) if log_info else {}
        weights = architecture = None
        if as_artifact:
            weights = self.artifacts.save_state(state_of(model), f"models/{slug(name)}.pt", role="model")
        if log_info:
            architecture = self.artifacts.write_text(f"models/{slug(name)}_architecture.txt", repr(model), role="architecture")
        with self._lock:
            self._models.append(ModelRecord(name, info, weights, architecture))
        self._count_log()

    def save_model_version(self, *args: Any, **kwargs: Any) -> None:
        model, name, context, step, timestamp, incremental = _compat.version_call(args, kwargs)
        if not self.recording:
            return
        from .collectors.model import state_of

        ctx = resolve_context(context)
        step, when = _step_and_time(step, timestamp)
        if isinstance(model, os.PathLike):  # a file already written (a Lightning checkpoint): copy it in
            source = Path(model)
            record = self.artifacts.copy(source, f"models/{slug(name)}/{source.name}", ctx, step, when, role="model_version")
        else:
            file_name = f"models/{slug(name)}/{slug(name)}{'' if step is None else f'_step{step}'}.pt"
            record = self.artifacts.save_state(state_of(model), file_name, ctx, step, when)
        with self._lock:
            previous = None
            if incremental:
                previous = _last_version_of(self._last_version, model)
                if previous is None:
                    previous = self._last_version_by_name.get(name)
            index = len(self._versions)
            self._versions.append(ModelVersionRecord(name, index, record, previous))
            _remember_version(self._last_version, model, index)
            self._last_version_by_name[name] = index
            self._touch(ctx, record.time.timestamp())
        self._count_log()

    def log_dataset(self, *args: Any, **kwargs: Any) -> None:
        dataset, label = _compat.dataset_call(args, kwargs)
        if not self.recording:
            return
        from .collectors.dataset import dataset_stats

        record = DatasetRecord(label, dataset_stats(dataset))
        with self._lock:
            self._datasets.append(record)
        self._count_log()

    def log_source_code(self, path: Optional[str] = None) -> None:
        """Copy the source file or folder (default: the ``__main__`` script) into the run."""
        if not self.recording:
            return
        from .collectors.environment import main_source

        main = main_source()
        source = Path(path) if path is not None else Path(main) if main else None
        if source is None:
            raise InvalidValueError("log_source_code() found no __main__ file; pass the path of your code")
        record = self.artifacts.copy(source, f"source/{source.name}", role="source")
        with self._lock:
            self._source_code = str(source.resolve())
        self._add_artifact(record)

    def log_execution_command(self, cmd: str, path: Optional[str] = None) -> None:
        self._note("execution_command", cmd if path is None else f"{cmd} {path}")

    def log_optimizer(self, optimizer: Any) -> None:
        """The optimizer's class and hyper-parameters (of its first parameter group) as parameters."""
        self.log_param("optimizer", type(optimizer).__name__)
        groups = getattr(optimizer, "param_groups", None) or [getattr(optimizer, "defaults", {})]
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
        if not self.recording:
            return
        from .collectors.system import SystemSampler

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
        if not self.recording:
            return
        if self.options["disable_codecarbon"]:
            self._notes.setdefault("carbon", "not recorded: disable_codecarbon=True")
            return
        from .collectors.carbon import CarbonMeter

        meter = self.collector(
            "carbon", lambda: CarbonMeter(country_iso_code=self.options["carbon_country"], output_dir=str(self.run_dir))
        )
        readings = meter.measure()
        self._notes["carbon"] = meter.mode
        self._readings(readings, context, step, LoggingItemKind.CARBON_METRIC, None)

    def log_flops_per_batch(self, label: str, model: Any, batch: Any, context: Any = None, step: Optional[int] = None) -> None:
        if not self.recording:
            return
        from .collectors.flops import count_batch_flops

        self._flops(label, count_batch_flops(model, batch), context, step, LoggingItemKind.FLOPS_PER_BATCH)

    def log_flops_per_epoch(self, label: str, model: Any, dataset: Any, context: Any = None, step: Optional[int] = None) -> None:
        if not self.recording:
            return
        from .collectors.flops import count_epoch_flops

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
        try:
            from .collectors import environment

            cap = environment.capture(env_vars=bool(self.options["capture_env_vars"]), **parts)
        except Exception as exc:  # capture must never break the run
            with self._lock:
                self._notes["capture_error"] = repr(exc)
            return
        env: Dict[str, Any] = {"python": cap.python, "executable": cap.executable}
        env.update({f"host_{k}" if k != "hostname" else "host": v for k, v in (cap.host or {}).items()})
        if cap.git:
            env.update({f"git_{k}": v for k, v in cap.git.items()})
        records = []
        if cap.packages:
            text = "\n".join(f"{k}=={v}" for k, v in sorted(cap.packages.items())) + "\n"
            records.append(self.artifacts.write_text("environment/packages.txt", text))
            env["packages"] = len(cap.packages)
        if cap.diff:
            records.append(self.artifacts.write_text("environment/git.diff", cap.diff, role="diff"))
        if cap.env_vars is not None:
            records.append(self.artifacts.write_text("environment/env_vars.json", json.dumps(cap.env_vars, indent=1, sort_keys=True)))
        if cap.main_source:
            try:
                records.append(self.artifacts.copy(Path(cap.main_source), f"source/{Path(cap.main_source).name}", role="source"))
            except OSError as exc:
                env["source_copy_error"] = repr(exc)
        with self._lock:
            self._environment.update({k: v for k, v in env.items() if isinstance(v, (str, int, float, bool))})
            if cap.main_source and self._source_code is None:
                self._source_code = cap.main_source
            if cap.command:
                self._command = " ".join(cap.command)
            self._artifacts.extend(records)

    # ------------------------------------------------------------------ output
    def snapshot(self) -> RunSnapshot:
        """A copy of everything recorded so far, for the provenance builder."""
        with self._lock:
            series = [self._summary(s) for s in self._series.values()]
            for s in series:  # a context spans the points logged in it
                if s.first_time is not None:
                    self._touch(s.context, s.first_time.timestamp())
                    self._touch(s.context, s.last_time.timestamp())
            return RunSnapshot(
                user_namespace=self.user_namespace,
                user=self.user,
                experiment_name=self.experiment_name,
                run_id=self.run_id,
                rank=self.rank,
                run_dir=str(self.run_dir),
                start_time=_dt(self.start_time),
                end_time=_dt(self.end_time),
                status=self.status,
                error=self.error,
                library_version=__version__,
                params=list(self._params),
                series=series,
                artifacts=list(self._artifacts),
                models=list(self._models),
                versions=list(self._versions),
                datasets=list(self._datasets),
                final_metrics=list(self._folds.values()),
                contexts={c: (_dt(a), _dt(b)) for c, (a, b) in self._contexts.items()},
                environment=dict(self._environment),
                source_code=self._source_code,
                command=self._command,
                notes=dict(self._notes),
            )

    @staticmethod
    def _summary(s: MetricSeries) -> SeriesSummary:
        return SeriesSummary(
            name=s.name, context=s.context, source=s.kind.value, unit=s.unit,
            sampler=None if s.sampler is None else repr(s.sampler), location=s.location,
            count=s.count, nan_count=s.nan_count, min=s.min, max=s.max, last=s.last, mean=s.mean,
            first_step=s.first_step, last_step=s.last_step,
            first_time=_dt(s.first_time), last_time=_dt(s.last_time),
        )

    def _write_snapshot(self, final: bool = False) -> None:
        from .provenance import build_document, to_json

        atomic_write_text(self.prov_path, to_json(build_document(self.snapshot())), fsync=final)

    # ------------------------------------------------------------------ end
    def end(
        self,
        create_graph: bool = False,
        create_svg: bool = False,
        status: str = "finished",
        error: Optional[BaseException] = None,
        create_provenance_collection: bool = False,
    ) -> Path:
        """Drain everything, write the final PROV-JSON (and graph, SVG, collection); idempotent."""
        with self._lock:
            if self._ended:
                return self.prov_path
            self._ended = True
        _lifecycle.deactivate(self)
        if not self.recording:
            if create_provenance_collection:
                self._collection()
            return self.prov_path
        if error is not None:
            status = "failed"
            self.error = (type(error).__name__, str(error))
        background = self._collectors.get("background")
        if background is not None:
            background.shutdown(wait=True)
        carbon = self._collectors.get("carbon")
        if carbon is not None:
            carbon.stop()
        for s in list(self._series.values()):
            if s.sampler is not None:
                tail = s.sampler.end()
                if tail is not None:
                    s.buf.extend((max(s.n - 1, 0), tail, _time()))
        chunks = [(s, s.take()) for s in list(self._series.values()) if s.buf]
        final = self._writer.close(chunks)
        for s, path in final.items():
            s.location = path.relative_to(self.run_dir).as_posix()
        if self._capture_thread is not None:
            self._capture_thread.join(timeout=30)
        self.end_time = _time()
        self.status = status
        if self._writer.errors:
            self._notes["writer_errors"] = " | ".join(self._writer.errors[-5:])
        self._write_snapshot(final=True)
        if create_graph or create_svg:
            self._graphs(create_svg)
        if create_provenance_collection:
            self._collection()
        if self.options["use_compressor"]:
            shutil.make_archive(str(self.run_dir), "zip", root_dir=self.run_dir)
        return self.prov_path

    def _graphs(self, svg: bool) -> None:
        dot = self.prov_path.with_suffix(".dot")
        try:
            from . import prov2dot

            prov2dot.convert(self.prov_path, dot)
            if svg:
                from . import dot2svg

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
            from . import prov_collection

            prov_collection.create_collection(self.experiment_dir, self.experiment_dir)
        except Exception as exc:
            warnings.warn(f"end_run: the collection could not be made: {exc}", stacklevel=4)

    def __repr__(self) -> str:
        return f"<prov4ml.Run {self.experiment_name}/run_{self.run_id} rank={self.rank} status={self.status}>"


_MISSING = object()


def _last_version_of(table: "weakref.WeakKeyDictionary[Any, int]", model: Any) -> Optional[int]:
    try:
        return table.get(model)
    except TypeError:  # neither hashable nor weak-referenceable
        return None


def _remember_version(table: "weakref.WeakKeyDictionary[Any, int]", model: Any, index: int) -> None:
    try:
        table[model] = index
    except TypeError:
        pass


def _background_executor():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="prov4ml-sampler")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _default_experiment_name() -> str:
    from .collectors.environment import main_source

    main = main_source()
    return Path(main).stem if main else "experiment"
