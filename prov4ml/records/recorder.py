"""The Run's records other than metric points: parameters, artifacts, models, model versions,
datasets, source code, notes, and the contexts and epochs they fall in.

:class:`prov4ml.run.Run` holds one :class:`RecordsRecorder` as ``run.records``. The Run passes
in what it decides: its lock, ``check_open`` (raises on an ended run; says whether this process
records) and ``count_log`` (what a new record counts for), so nothing here reaches up to it.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import threading
import time
import warnings
import weakref
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _values, calls
from .._fs import slug
from ..context import Context, resolve_context
from ..exceptions import ArtifactError, InvalidValueError
from .._values import check_step, check_timestamp
from . import state as _state
from ..collectors.digests import DigestWorker
from .artifacts import ArtifactStore
from .journal import RecordJournal
from .model import (
    ArtifactRecord, DatasetRecord, EpochRecord, ModelRecord, ModelVersionRecord, ParamRecord, utc,
)

__all__ = ["RecordsRecorder", "replay"]

_time = time.time
_MISSING = object()
#: parameters the library writes itself start with this; a user's log_param refuses it, so they never collide
LIBRARY_PARAM_PREFIX = "prov4ml:"
OPTIMIZER_PARAM = LIBRARY_PARAM_PREFIX + "optimizer"


def _step_and_time(step: Any, timestamp: Any) -> Tuple[Optional[int], Optional[datetime]]:
    """The optional step and timestamp of a file record, checked."""
    return (None if step is None else check_step(step)), (None if timestamp is None else utc(check_timestamp(timestamp)))


class RecordsRecorder:
    """``log_param``, ``log_artifact``, ``log_model``, ``save_model_version``, ``log_dataset``,
    ``log_source_code``, ``mark_epoch`` and the notes of one Run.

    Warnings name the user's line through one more frame than the calls had when they were Run
    methods: the Run's own delegating method.
    """

    def __init__(self, store: ArtifactStore, lock: Any, check_open: Callable[[str], bool],
                 count_log: Callable[[], None], default_context: Context) -> None:
        self.store = store  # the run's ArtifactStore (``run.artifacts``)
        self.lock = lock  # the Run's lock: its snapshot reads these lists under it
        self._check_open = check_open
        self._count_log = count_log
        self.default_context = default_context
        self.params: List[ParamRecord] = []
        self.param_values: Dict[str, Any] = {}
        self.artifacts: List[ArtifactRecord] = []
        self.models: List[ModelRecord] = []
        self.versions: List[ModelVersionRecord] = []
        self._last_version: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._last_version_by_name: Dict[str, int] = {}
        self.datasets: List[DatasetRecord] = []
        self.contexts: Dict[Context, List[Optional[float]]] = {}
        self.epochs: List[Tuple[Context, int, float]] = []  # (context, epoch, start) marks
        self.notes: Dict[str, Any] = {}
        self.environment: Dict[str, Any] = {"host": socket.gethostname()}  # known at once; the capture adds the rest
        self.source_code: Optional[str] = None
        self.command = _state.redacted_command(sys.argv)
        self.journal: Optional[RecordJournal] = None  # set by the Run once its journal folder exists
        self.outcome: Optional[Tuple[str, Any, Optional[float]]] = None  # (status, error, end time) once it ended
        self.finals: Dict[str, str] = {}  # registered final metrics: name -> fold (their values live in the folds)
        self.digests = DigestWorker()  # full digests of file-backed datasets, off the training thread

    # ------------------------------------------------------------------ keeping a record
    def keep(self, kind: str, data: Any, ctx: Optional[Context] = None, when: Optional[float] = None) -> None:
        """Add a record (the caller holds the lock) and journal it: durable before the call returns."""
        when = _time() if when is None and ctx is not None else when
        _apply(self, kind, data, ctx, when)
        if self.journal is not None:
            self.journal.append(kind, (data, ctx, when))

    def start_journal(self, journal: RecordJournal) -> None:
        """From now on every record is journaled; what was recorded before goes in first."""
        with self.lock:
            self.journal = journal
            self.keep("capture", ({"host": self.environment.get("host")}, self.command, None, []))

    def close_journal(self) -> None:
        with self.lock:
            journal, self.journal = self.journal, None
        if journal is not None:
            journal.close()

    def keep_capture(self, env: Dict[str, Any], command: Optional[str], source: Optional[str],
                     artifacts: List[ArtifactRecord]) -> None:
        """What the environment capture found (the caller holds the lock)."""
        self.keep("capture", (env, command, source, artifacts))

    # ------------------------------------------------------------------ bookkeeping
    def touch(self, ctx: Optional[Context], when: Optional[float] = None) -> None:
        """Widen the time span of ``ctx`` (and of its parents) to ``when`` (default: now)."""
        while ctx is not None:
            when_ = when if when is not None else _time()
            span = self.contexts.setdefault(ctx, [when_, when_])
            span[0] = min(span[0], when_)
            span[1] = max(span[1], when_)
            ctx = ctx.parent

    def note(self, key: str, value: Any) -> None:
        """A note on the run (execution times, the command, a collector's remark)."""
        if self._check_open("log"):
            with self.lock:
                self.keep("note", (key, value))
            self._count_log()

    def epoch_records(self) -> List[EpochRecord]:
        """Each mark ends at the next mark of its context, the last at the context's last record."""
        out: List[EpochRecord] = []
        next_start: Dict[Context, float] = {}
        for ctx, epoch, start in reversed(self.epochs):
            end = next_start.get(ctx, max(start, self.contexts[ctx][1]))  # a mark touched its context
            out.append(EpochRecord(ctx, epoch, utc(start), utc(end)))
            next_start[ctx] = start
        return out[::-1]

    def snapshot_fields(self) -> Dict[str, Any]:
        """Copies of the records for a RunSnapshot (the caller holds the lock; notes apart)."""
        return dict(
            params=list(self.params),
            artifacts=list(self.artifacts),
            models=list(self.models),
            versions=list(self.versions),
            datasets=list(self.datasets),
            contexts={c: (utc(a), utc(b)) for c, (a, b) in self.contexts.items()},
            environment=dict(self.environment),
            source_code=self.source_code,
            command=self.command,
            epochs=self.epoch_records(),
        )

    # ------------------------------------------------------------------ parameters and epochs
    def log_param(self, key: str, value: Any, context: Any = None, source: Any = None, is_input: bool = True) -> None:
        if isinstance(key, str) and key.startswith(LIBRARY_PARAM_PREFIX):
            raise InvalidValueError(
                f"parameter key {key!r}: names starting with {LIBRARY_PARAM_PREFIX!r} are prov4ml's own "
                "(log_optimizer writes them); choose another name"
            )
        self._set_param(key, value, context, source, is_input)

    def _set_param(self, key: str, value: Any, context: Any = None, source: Any = None, is_input: bool = True) -> None:
        recording = self._check_open("log_param")
        if not isinstance(key, str) or not key:
            raise InvalidValueError(f"parameter key must be a non-empty string, got {key!r}")
        if not recording:
            return
        ctx = resolve_context(context) if context is not None else None
        value = _values.param_value(value)
        source = calls.source_name(source, "log_param")
        with self.lock:
            previous = self.param_values.get(key, _MISSING)
            if previous is not _MISSING and previous == value:
                return
            if previous is not _MISSING:
                warnings.warn(f"parameter {key!r} changed from {previous!r} to {value!r}; both are kept",
                              stacklevel=calls.user_stacklevel())
                key_id = f"{key}#{sum(1 for p in self.params if p.key.split('#')[0] == key) + 1}"
            else:
                key_id = key
            self.keep("param", (key, ParamRecord(key_id, value, ctx, source, bool(is_input))), ctx)
        self._count_log()

    def log_params(self, params: Dict[str, Any], context: Any = None) -> None:
        if not isinstance(params, dict):
            raise InvalidValueError(f"log_params takes a dict of name -> value, got {type(params).__name__}")
        for key, value in params.items():
            self.log_param(key, value, context)

    def log_optimizer(self, optimizer: Any) -> None:
        """The optimizer's class and the hyper-parameters of its first parameter group, as parameters named
        ``prov4ml:optimizer`` and ``prov4ml:optimizer.<name>``: a prefix users' parameters cannot take."""
        groups = getattr(optimizer, "param_groups", None) or [getattr(optimizer, "defaults", None)]
        if not isinstance(groups, (list, tuple)) or not isinstance(groups[0], dict):
            raise InvalidValueError(f"log_optimizer() needs a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self._set_param(OPTIMIZER_PARAM, type(optimizer).__name__, source="log_optimizer")
        for key, value in groups[0].items():
            if key != "params" and isinstance(value, (int, float, bool, str)):
                self._set_param(f"{OPTIMIZER_PARAM}.{key}", value, source="log_optimizer")

    def mark_epoch(self, epoch: int, context: Any = None) -> None:
        """Epoch ``epoch`` of ``context`` starts now; it lasts until the next mark of that context."""
        recording = self._check_open("mark_epoch")
        epoch = check_step(epoch)
        if not recording:
            return
        ctx = resolve_context(context) if context is not None else self.default_context
        with self.lock:
            when = _time()
            self.keep("epoch", (ctx, epoch, when), ctx, when)
        self._count_log()

    # ------------------------------------------------------------------ files and objects
    def _add_artifact(self, record: ArtifactRecord) -> ArtifactRecord:
        with self.lock:
            self.keep("artifact", record, record.context, record.time.timestamp())
        self._count_log()
        return record

    def log_written_artifact(self, path: Path, context: Any = None, step: Optional[int] = None, role: str = "artifact") -> Optional[ArtifactRecord]:
        """Record a file or folder written at ``run.artifacts.new_path(name)`` (no copy is made)."""
        if not self._check_open("log_artifact"):
            return None
        ctx = resolve_context(context) if context is not None else None
        return self._add_artifact(self.store.record_written(Path(path), ctx, _step_and_time(step, None)[0], role))

    def log_artifact(self, a: "calls.ArtifactCall") -> Optional[ArtifactRecord]:
        """Copy (or, with ``copy=False``, reference) a file or folder; see ``prov4ml.log_artifact``."""
        if not self._check_open("log_artifact"):
            return None
        ctx = resolve_context(a.context) if a.context is not None else None
        step, when = _step_and_time(a.step, a.timestamp)
        try:
            path = Path(a.path).expanduser()
        except RuntimeError:  # "~nobody/x": no such user's home
            raise ArtifactError(f"artifact path {str(a.path)[:200]!r}: its ~user has no home directory; give a full path") from None
        role = "model" if a.is_model else "artifact"
        if a.copy:
            name = a.name or path.name
            record = self.store.copy(path, f"{a.subdirectory}/{name}" if a.subdirectory else name, ctx, step, when, role)
        else:
            record = self.store.reference(path, a.name, ctx, step, when, role)
        return self._add_artifact(dataclasses.replace(
            record, name=a.name or path.name, is_input=a.is_input, source=a.source, attributes=a.attributes
        ))

    def log_model(self, m: "calls.ModelCall") -> None:
        """The model's entity: its info, weights, architecture and (``log_layers``) layer table."""
        if not self._check_open("log_model"):
            return
        from ..collectors.model import layer_table, model_info, state_of

        ctx = resolve_context(m.context) if m.context is not None else None
        checkpoint = calls.checkpoint_path(m.model)
        info = model_info(m.model) if m.log_info and checkpoint is None else {}
        weights = architecture = layers = None
        if checkpoint is not None:
            weights = (self.store.copy(checkpoint, f"models/{slug(m.name)}/{checkpoint.name}", role="model") if m.store
                       else self.store.reference(checkpoint, role="model"))
        elif m.store:
            weights = self.store.save_state(state_of(m.model), f"models/{slug(m.name)}.pt", role="model")
        if info:
            architecture = self.store.write_text(f"models/{slug(m.name)}_architecture.txt", repr(m.model), role="architecture")
        if m.log_layers and checkpoint is None:
            layers = self.store.write_text(f"models/{slug(m.name)}_layers.csv", layer_table(m.model), role="layers")
        with self.lock:
            self.keep("model", ModelRecord(m.name, info, weights, architecture, layers, ctx, m.source, m.is_input,
                                            m.attributes), ctx)
        self._count_log()

    def save_model_version(self, v: "calls.VersionCall") -> None:
        """A numbered version of the model ``v.name`` (0, 1, ... per name), derived from the previous one."""
        if not self._check_open("save_model_version"):
            return
        from ..collectors.model import state_of

        ctx = resolve_context(v.context)
        step, when = _step_and_time(v.step, v.timestamp)
        checkpoint = calls.checkpoint_path(v.model)
        if checkpoint is not None and not v.copy:  # log_copy_in_prov_directory=False: where it is
            record = self.store.reference(checkpoint, None, ctx, step, when, role="model_version")
        elif checkpoint is not None:  # a file already written (a Lightning checkpoint): copy it in
            record = self.store.copy(checkpoint, f"models/{slug(v.name)}/{checkpoint.name}", ctx, step, when, role="model_version")
        else:
            file_name = f"models/{slug(v.name)}/{slug(v.name)}{'' if step is None else f'_step{step}'}.pt"
            record = self.store.save_state(state_of(v.model), file_name, ctx, step, when)
        record = dataclasses.replace(record, is_input=v.is_input, source=v.source, attributes=v.attributes)
        with self.lock:
            previous = None
            if v.incremental:
                previous = _last_version_of(self._last_version, v.model)
                if previous is None:
                    previous = self._last_version_by_name.get(v.name)
            index = len(self.versions)
            number = sum(1 for other in self.versions if other.model_name == v.name)
            self.keep("version", ModelVersionRecord(v.name, number, record, previous), ctx, record.time.timestamp())
            _remember_version(self._last_version, v.model, index)
            self._last_version_by_name[v.name] = index
        self._count_log()

    def log_dataset(self, d: "calls.DatasetCall") -> None:
        if not self._check_open("log_dataset"):
            return
        from ..collectors.dataset import SAMPLED, dataset_paths, dataset_stats, sampled_digest

        ctx = resolve_context(d.context) if d.context is not None else None
        record = DatasetRecord(d.label, dataset_stats(d.dataset) if d.log_info else {}, ctx, d.source, d.attributes)
        paths = dataset_paths(d.dataset)
        if paths:  # file-backed: a digest now, in bounded time; the full one off this thread
            digest, size, _files = sampled_digest(paths)
            record = dataclasses.replace(record, location=str(paths[0]), digest=digest, digest_method=SAMPLED,
                                         size_bytes=size)
        with self.lock:
            self.keep("dataset", record, ctx)
        if paths:
            self.digests.submit(paths, lambda sha: self._digested(record.label, ctx, sha))
        self._count_log()

    def _digested(self, label: str, ctx: Optional[Context], sha256: str) -> None:
        with self.lock:
            self.keep("digest", (label, ctx, sha256))

    def log_source_code(self, path: Optional[str] = None, use_git: bool = False) -> None:
        """Copy the source file or folder (default: the ``__main__`` script) into the run, once;
        ``use_git=True`` records its repository's commit, branch, remote and dirty flag instead."""
        if not self._check_open("log_source_code"):
            return
        from ..collectors.environment import main_source

        main = main_source()
        source = Path(path) if path is not None else Path(main) if main else None
        if source is None:
            raise InvalidValueError("log_source_code() found no __main__ file; pass the path of your code")
        if use_git:
            git = calls.git_source(source)
            if git.get("source_code.git_commit"):
                with self.lock:
                    self.keep("source", str(source.resolve()))
                self.log_params(git)
                return
            warnings.warn(f"log_source_code(use_git=True): {source} is not in a git repository with a commit; "
                          "its files are copied instead", stacklevel=calls.user_stacklevel())
        with self.lock:  # held while copying, so that the environment capture never copies it a second time
            self.keep("source", str(source.resolve()))
            if not any(a.role == "source" and a.original == self.source_code for a in self.artifacts):
                self.keep("artifact", self.store.copy(source, f"source/{source.name}", role="source"))
        self._count_log()


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


def _apply_param(r: RecordsRecorder, keyed: Tuple[str, ParamRecord]) -> None:
    key, record = keyed
    r.params.append(record)
    r.param_values[key] = record.value


def _apply_capture(r: RecordsRecorder, found: Tuple[Dict[str, Any], Optional[str], Optional[str], list]) -> None:
    env, command, source, artifacts = found
    r.environment.update(env)
    if command:
        r.command = command
    if source and r.source_code is None:
        r.source_code = source
    r.artifacts.extend(artifacts)


def _apply_digest(r: RecordsRecorder, found: Tuple[str, Optional[Context], str]) -> None:
    """A dataset's full digest, computed after the dataset was recorded."""
    label, ctx, sha256 = found
    for i in range(len(r.datasets) - 1, -1, -1):
        d = r.datasets[i]
        if d.label == label and d.context == ctx and getattr(d, "digest", None):
            r.datasets[i] = dataclasses.replace(d, sha256=sha256)
            return


_APPLY: Dict[str, Callable[[RecordsRecorder, Any], None]] = {
    "param": _apply_param,
    "artifact": lambda r, record: r.artifacts.append(record),
    "model": lambda r, record: r.models.append(record),
    "version": lambda r, record: r.versions.append(record),
    "dataset": lambda r, record: r.datasets.append(record),
    "digest": _apply_digest,
    "epoch": lambda r, mark: r.epochs.append(mark),
    "note": lambda r, note: r.notes.__setitem__(*note),
    "source": lambda r, path: setattr(r, "source_code", path),
    "capture": _apply_capture,
    "outcome": lambda r, outcome: setattr(r, "outcome", outcome),
    "final": lambda r, final: r.finals.__setitem__(*final),
    "unreadable": lambda r, why: r.notes.__setitem__("records_unreadable", r.notes.get("records_unreadable", 0) + 1),
}


def _apply(r: RecordsRecorder, kind: str, data: Any, ctx: Optional[Context], when: Optional[float]) -> None:
    _APPLY.get(kind, _APPLY["unreadable"])(r, data)  # a kind a later version wrote: counted, not a crash
    if ctx is not None:
        r.touch(ctx, when)


def replay(frames: List[Tuple[Any, str, Any]]) -> Dict[str, Any]:
    """The records a journal holds, as RunSnapshot fields (what ``recover`` writes), the notes, the outcome and
    the final metrics registered."""
    r = RecordsRecorder(None, threading.Lock(), lambda call: True, lambda: None, None)  # type: ignore[arg-type]
    r.environment, r.command = {}, None
    for _position, kind, (data, ctx, when) in frames:
        _apply(r, kind, data, ctx, when)
    return {**r.snapshot_fields(), "notes": dict(r.notes), "outcome": r.outcome, "finals": dict(r.finals)}
