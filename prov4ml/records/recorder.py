"""The Run's recording of files and objects: artifacts, models, model versions, datasets, source code.

Mixed into :class:`prov4ml.run.Run`: the methods use its lock, its record
lists and its artifact store, and take the calls ``run.calls`` normalised.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

from .. import calls
from .._fs import slug
from ..context import resolve_context
from ..exceptions import ArtifactError, InvalidValueError
from .._values import check_step, check_timestamp
from .model import ArtifactRecord, DatasetRecord, ModelRecord, ModelVersionRecord, utc

__all__ = ["ItemRecording"]


def _step_and_time(step: Any, timestamp: Any) -> Tuple[Optional[int], Optional[datetime]]:
    """The optional step and timestamp of a file record, checked."""
    return (None if step is None else check_step(step)), (None if timestamp is None else utc(check_timestamp(timestamp)))


class ItemRecording:
    """``log_artifact``, ``log_model``, ``save_model_version``, ``log_dataset``, ``log_source_code`` of a Run."""

    def _add_artifact(self, record: ArtifactRecord) -> ArtifactRecord:
        with self._lock:
            self._artifacts.append(record)
            if record.context is not None:
                self._touch(record.context, record.time.timestamp())
        self._count_log()
        return record

    def log_written_artifact(self, path: Path, context: Any = None, step: Optional[int] = None, role: str = "artifact") -> Optional[ArtifactRecord]:
        """Record a file or folder written at ``self.artifacts.new_path(name)`` (no copy is made)."""
        self._check_open("log_artifact")
        if not self.recording:
            return None
        ctx = resolve_context(context) if context is not None else None
        return self._add_artifact(self.artifacts.record_written(Path(path), ctx, _step_and_time(step, None)[0], role))

    def at_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the run ends, before it stops recording (a wrapper writes its last data)."""
        with self._lock:
            self._at_end.append(callback)

    def log_artifact(self, a: "calls.ArtifactCall") -> Optional[ArtifactRecord]:
        """Copy (or, with ``copy=False``, reference) a file or folder; see ``prov4ml.log_artifact``."""
        self._check_open("log_artifact")
        if not self.recording:
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
            record = self.artifacts.copy(path, f"{a.subdirectory}/{name}" if a.subdirectory else name, ctx, step, when, role)
        else:
            record = self.artifacts.reference(path, a.name, ctx, step, when, role)
        return self._add_artifact(dataclasses.replace(
            record, name=a.name or path.name, is_input=a.is_input, source=a.source, attributes=a.attributes
        ))

    def log_model(self, m: "calls.ModelCall") -> None:
        """The model's entity: its info, weights, architecture and (``log_layers``) layer table."""
        self._check_open("log_model")
        if not self.recording:
            return
        from ..collectors.model import layer_table, model_info, state_of

        ctx = resolve_context(m.context) if m.context is not None else None
        checkpoint = calls.checkpoint_path(m.model)
        info = model_info(m.model) if m.log_info and checkpoint is None else {}
        weights = architecture = layers = None
        if checkpoint is not None:
            weights = (self.artifacts.copy(checkpoint, f"models/{slug(m.name)}/{checkpoint.name}", role="model") if m.store
                       else self.artifacts.reference(checkpoint, role="model"))
        elif m.store:
            weights = self.artifacts.save_state(state_of(m.model), f"models/{slug(m.name)}.pt", role="model")
        if info:
            architecture = self.artifacts.write_text(f"models/{slug(m.name)}_architecture.txt", repr(m.model), role="architecture")
        if m.log_layers and checkpoint is None:
            layers = self.artifacts.write_text(f"models/{slug(m.name)}_layers.csv", layer_table(m.model), role="layers")
        with self._lock:
            self._models.append(ModelRecord(m.name, info, weights, architecture, layers, ctx, m.source, m.is_input, m.attributes))
            if ctx is not None:
                self._touch(ctx)
        self._count_log()

    def save_model_version(self, v: "calls.VersionCall") -> None:
        """A numbered version of the model ``v.name`` (0, 1, ... per name), derived from the previous one."""
        self._check_open("save_model_version")
        if not self.recording:
            return
        from ..collectors.model import state_of

        ctx = resolve_context(v.context)
        step, when = _step_and_time(v.step, v.timestamp)
        checkpoint = calls.checkpoint_path(v.model)
        if checkpoint is not None:  # a file already written (a Lightning checkpoint): copy it in
            record = self.artifacts.copy(checkpoint, f"models/{slug(v.name)}/{checkpoint.name}", ctx, step, when, role="model_version")
        else:
            file_name = f"models/{slug(v.name)}/{slug(v.name)}{'' if step is None else f'_step{step}'}.pt"
            record = self.artifacts.save_state(state_of(v.model), file_name, ctx, step, when)
        record = dataclasses.replace(record, is_input=v.is_input, source=v.source, attributes=v.attributes)
        with self._lock:
            previous = None
            if v.incremental:
                previous = _last_version_of(self._last_version, v.model)
                if previous is None:
                    previous = self._last_version_by_name.get(v.name)
            index = len(self._versions)
            number = sum(1 for other in self._versions if other.model_name == v.name)
            self._versions.append(ModelVersionRecord(v.name, number, record, previous))
            _remember_version(self._last_version, v.model, index)
            self._last_version_by_name[v.name] = index
            self._touch(ctx, record.time.timestamp())
        self._count_log()

    def log_dataset(self, d: "calls.DatasetCall") -> None:
        self._check_open("log_dataset")
        if not self.recording:
            return
        from ..collectors.dataset import dataset_stats

        ctx = resolve_context(d.context) if d.context is not None else None
        record = DatasetRecord(d.label, dataset_stats(d.dataset) if d.log_info else {}, ctx, d.source, d.attributes)
        with self._lock:
            self._datasets.append(record)
            if ctx is not None:
                self._touch(ctx)
        self._count_log()

    def log_source_code(self, path: Optional[str] = None, use_git: bool = False) -> None:
        """Copy the source file or folder (default: the ``__main__`` script) into the run, once;
        ``use_git=True`` records its repository's commit, branch, remote and dirty flag instead."""
        self._check_open("log_source_code")
        if not self.recording:
            return
        from ..collectors.environment import main_source

        main = main_source()
        source = Path(path) if path is not None else Path(main) if main else None
        if source is None:
            raise InvalidValueError("log_source_code() found no __main__ file; pass the path of your code")
        if use_git:
            git = calls.git_source(source)
            if git.get("source_code.git_commit"):
                with self._lock:
                    self._source_code = str(source.resolve())
                self.log_params(git)
                return
            warnings.warn(f"log_source_code(use_git=True): {source} is not in a git repository with a commit; "
                          "its files are copied instead", stacklevel=calls.user_stacklevel())
        with self._lock:  # held while copying, so that the environment capture never copies it a second time
            self._source_code = str(source.resolve())
            if not any(a.role == "source" and a.original == self._source_code for a in self._artifacts):
                self._artifacts.append(self.artifacts.copy(source, f"source/{source.name}", role="source"))
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
