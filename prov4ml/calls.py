"""The call forms of every generation of the reference library's API, brought to one.

The seed API puts the object first (``log_model(model, "name")``,
``start_run(namespace, experiment)``); the 3.2.x API puts the name first
(``log_model("name", model)``, ``start_run(experiment, namespace=None)``).
Keywords always mean what they say; positional arguments are read by their
values: a name is a string, a model or a dataset never is, a namespace looks
like a host name or an IRI. docs/porting.md lists every form.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from ._values import DEFAULT_NAMESPACE, _short, check_name, check_namespace, looks_like_namespace, param_value
from .context import Context
from .exceptions import ArgumentError, InvalidValueError
from .redact import redact_value

__all__ = [
    "start_run_arguments", "warn_unknown_options", "user_stacklevel", "attributes",
    "ArtifactCall", "ModelCall", "VersionCall", "DatasetCall",
    "artifact_call", "model_call", "version_call", "dataset_call", "source_name", "checkpoint_path", "git_source",
]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_CONTEXTLIB = os.path.abspath(contextlib.__file__)
_UNSET = object()


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning, issued by this function's caller, name the user's line."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE) or frame.f_code.co_filename == _CONTEXTLIB):
        frame = frame.f_back
        level += 1
    return level


# ---------------------------------------------------------------- start_run
_START_REST = ("provenance_save_dir", "collect_all_processes", "save_after_n_logs", "rank")


def start_run_arguments(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """``start_run``'s arguments by name, from the seed order or the 3.2.x order.

    Two positional strings: the one that looks like a namespace (an IRI, or a
    dotted host name) is the namespace; when both or neither do, the first is
    (the seed order). One positional string: the namespace if it looks like
    one, else the experiment name. A missing namespace is ``DEFAULT_NAMESPACE``.
    """
    kwargs = dict(kwargs)
    if len(args) > 2 + len(_START_REST):
        raise ArgumentError(f"start_run() takes at most {2 + len(_START_REST)} positional arguments ({len(args)} given)")
    names = {key: kwargs.pop(key) for key in ("prov_user_namespace", "experiment_name") if key in kwargs}
    free = [key for key in ("prov_user_namespace", "experiment_name") if key not in names]
    leading = list(args[:2])
    if len(leading) > len(free):
        raise ArgumentError(
            f"start_run() got {sorted(names)} by name and {len(leading)} leading positional values; "
            "pass the namespace and the experiment name either by position or by name"
        )
    if len(leading) == 2:
        first, second = leading
        if looks_like_namespace(second) and (not looks_like_namespace(first) or ("://" in second and "://" not in first)):
            names.update(experiment_name=first, prov_user_namespace=second)  # 3.2.x
        else:
            names.update(prov_user_namespace=first, experiment_name=second)  # the seed order
    elif len(leading) == 1:
        key = free[0] if len(free) == 1 else (
            "prov_user_namespace" if looks_like_namespace(leading[0]) else "experiment_name"
        )
        names[key] = leading[0]
    for key, value in zip(_START_REST, args[2:]):
        if key in kwargs:
            raise ArgumentError(f"start_run() got multiple values for argument {key!r}")
        kwargs[key] = value
    namespace = names.get("prov_user_namespace")
    names["prov_user_namespace"] = DEFAULT_NAMESPACE if namespace is None else check_namespace(namespace)
    return {**names, **kwargs}


def warn_unknown_options(options: Iterable[str], known: Iterable[str]) -> None:
    """One warning naming each unknown keyword, the closest known one, and the user's line."""
    known = sorted(known) + ["prov_user_namespace", "experiment_name", *_START_REST]
    for key in sorted(options):
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "see docs/api.md for the known options"
        warnings.warn(f"start_run: unknown option {key!r} ignored; {hint}", UserWarning, stacklevel=user_stacklevel())


# ---------------------------------------------------------------- attributes
def attributes(other_attrs: Optional[Mapping[str, Any]], call: str) -> Tuple[Tuple[str, Any], ...]:
    """``other_attrs`` as (name, typed value) pairs; containers become JSON text, as parameters do."""
    if other_attrs is None:
        return ()
    if not isinstance(other_attrs, Mapping):
        raise InvalidValueError(f"{call}(other_attrs=...) takes a dict of attribute name -> value, got {type(other_attrs).__name__}")
    pairs = []
    for key, value in other_attrs.items():
        check_name(key, f"an attribute name in {call}(other_attrs=...)", limit=200)
        pairs.append((key, param_value(value)))
    return tuple(pairs)


def source_name(source: Any, call: str) -> Optional[str]:
    """Where an item comes from, as text (a ``LoggingItemKind`` gives its value)."""
    if source is None:
        return None
    value = getattr(source, "value", source)  # a LoggingItemKind
    if not isinstance(value, str):
        raise InvalidValueError(f"{call}(source=...) takes a string naming where the item comes from, got {source!r}")
    return redact_value(check_name(value, f"{call}(source=...)", limit=500))


def _is_path(value: Any) -> bool:
    return isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.exists(value))


def _is_context(value: Any) -> bool:
    return isinstance(value, (Context, enum.Enum))


# ---------------------------------------------------------------- log_artifact
@dataclass
class ArtifactCall:
    path: Any
    name: Optional[str]
    context: Any
    step: Any
    timestamp: Any
    copy: bool
    subdirectory: Optional[str]
    is_model: bool
    is_input: bool
    source: Optional[str]
    attributes: Tuple[Tuple[str, Any], ...]


def artifact_call(artifact_name: Any, artifact_path: Any, context: Any, source: Any, step: Any, timestamp: Any,
                  log_copy_in_prov_directory: bool, log_copy_subdirectory: Optional[str], is_model: bool,
                  is_input: bool, other_attrs: Optional[Mapping[str, Any]]) -> ArtifactCall:
    """``(artifact_name, artifact_path, context, source, step, ...)`` (3.2.x) or ``(artifact_path, context, step, timestamp)``."""
    name, path = artifact_name, artifact_path
    if path is None:  # log_artifact(path) or log_artifact(path, context=...)
        name, path = None, artifact_name
    elif _is_context(path) or (isinstance(path, str) and not _is_path(path) and _is_path(name)):
        # the seed form, positionally: (artifact_path, context, step, timestamp)
        if timestamp is not None or (step is not None and source is not None):
            raise ArgumentError("log_artifact(artifact_path, context, step, timestamp): too many positional values")
        name, path, context, step, timestamp = None, name, path, context if step is None else step, source
        source = None
    elif _is_path(name) and _is_path(path) and os.fspath(name) != os.fspath(path) and not os.path.isabs(name):
        # (an absolute name is refused below as a name, whichever file it is)
        raise InvalidValueError(
            f"log_artifact({name!r}, {path!r}) is ambiguous: both are existing paths; "
            "call log_artifact(artifact_name=..., artifact_path=...) instead"
        )
    elif source is not None and not isinstance(source, str) and getattr(source, "value", None) is None:
        # the seed's named form, (artifact_name, artifact_path, context, step, timestamp): no source in it
        source, step, timestamp = None, source, step if timestamp is None else timestamp
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path):
        raise InvalidValueError(f"log_artifact() needs a file or directory path (str or os.PathLike), got {_short(path)}")
    check_name(os.fspath(path), "artifact_path", limit=4096)
    if name is not None:
        check_name(name, "artifact_name")
    if log_copy_subdirectory is not None:
        check_name(log_copy_subdirectory, "log_copy_subdirectory")
    return ArtifactCall(
        path=path, name=name, context=context, step=step, timestamp=timestamp,
        copy=bool(log_copy_in_prov_directory), subdirectory=log_copy_subdirectory,
        is_model=bool(is_model), is_input=bool(is_input), source=source_name(source, "log_artifact"),
        attributes=attributes(other_attrs, "log_artifact"),
    )


# ---------------------------------------------------------------- models
def _check_model(call: str, model: Any) -> None:
    """A module, a state dict (a mapping) or a checkpoint file; anything else is a mistake worth naming."""
    if callable(getattr(model, "state_dict", None)) or isinstance(model, (Mapping, os.PathLike)):
        return
    if isinstance(model, str) and os.path.isfile(model):
        return
    raise InvalidValueError(
        f"{call}() got {_short(model)} of type {type(model).__name__}, which is not a model: pass a torch.nn.Module, "
        "its state_dict(), or the path of a checkpoint file"
    )


def checkpoint_path(model: Any) -> Optional[Path]:
    """The file, when the "model" is a checkpoint already written (a path)."""
    if isinstance(model, os.PathLike) or (isinstance(model, str) and os.path.isfile(model)):
        return Path(model)
    return None


def _model_and_name(call: str, model_name: Any, model: Any) -> Tuple[Any, Any, bool]:
    """(model, name, seed_form): the 3.2.x order is (name, model), the seed order (model, name)."""
    if isinstance(model_name, str) or model_name is None:
        return model, model_name, False
    return model_name, model, True  # the model came first


@dataclass
class ModelCall:
    model: Any
    name: str
    context: Any
    source: Optional[str]
    log_info: bool
    log_layers: bool
    store: bool  # save the weights into the run (else: reference a checkpoint file, or record no weights)
    is_input: bool
    attributes: Tuple[Tuple[str, Any], ...]


def model_call(model_name: Any, model: Any, context: Any, source: Any, log_model_info: Any, log_model_layers: bool,
               log_copy_in_prov_directory: bool, log_as_artifact: Optional[bool], is_input: bool,
               other_attrs: Optional[Mapping[str, Any]]) -> ModelCall:
    model, name, seed = _model_and_name("log_model", model_name, model)
    if seed and isinstance(context, bool):  # log_model(model, name, log_model_info, log_as_artifact)
        log_model_info, context = context, None
        if isinstance(source, bool):
            log_as_artifact, source = source, None
    if model is None:
        raise ArgumentError("log_model() needs a model: log_model('name', model)")
    _check_model("log_model", model)
    name = "default" if name is None else name
    check_name(name, "the name given to log_model()")
    store = bool(log_copy_in_prov_directory) and (log_as_artifact is None or bool(log_as_artifact))
    return ModelCall(model, name, context, source_name(source, "log_model"), bool(log_model_info), bool(log_model_layers),
                     store, bool(is_input), attributes(other_attrs, "log_model"))


@dataclass
class VersionCall:
    model: Any
    name: str
    context: Any
    source: Optional[str]
    step: Any
    timestamp: Any
    incremental: bool
    is_input: bool
    attributes: Tuple[Tuple[str, Any], ...]


def version_call(model_name: Any, model: Any, context: Any, source: Any, step: Any, timestamp: Any,
                 incremental: bool, is_input: bool, other_attrs: Optional[Mapping[str, Any]]) -> VersionCall:
    model, name, seed = _model_and_name("save_model_version", model_name, model)
    if seed and source is not None and not isinstance(source, str):
        # save_model_version(model, name, context, step, timestamp): step and timestamp arrive one place early
        source, step, timestamp = None, source, step if timestamp is None else timestamp
    if model is None or name is None:
        raise ArgumentError("save_model_version() needs a model_name and a model: save_model_version('name', model)")
    _check_model("save_model_version", model)
    check_name(name, "the name given to save_model_version()")
    return VersionCall(model, name, context, source_name(source, "save_model_version"), step, timestamp,
                       bool(incremental), bool(is_input), attributes(other_attrs, "save_model_version"))


# ---------------------------------------------------------------- datasets
@dataclass
class DatasetCall:
    dataset: Any
    label: str
    context: Any
    source: Optional[str]
    log_info: bool
    attributes: Tuple[Tuple[str, Any], ...]


def dataset_call(dataset_label: Any, dataset: Any, context: Any, source: Any, log_dataset_info: bool,
                 other_attrs: Optional[Mapping[str, Any]]) -> DatasetCall:
    if not isinstance(dataset_label, str) and isinstance(dataset, str):  # log_dataset(dataset, "label")
        dataset_label, dataset = dataset, dataset_label
    if dataset is None or dataset_label is None:
        raise ArgumentError("log_dataset() needs a dataset_label and a dataset: log_dataset('train', loader)")
    check_name(dataset_label, "the label given to log_dataset()")
    return DatasetCall(dataset, dataset_label, context, source_name(source, "log_dataset"), bool(log_dataset_info),
                       attributes(other_attrs, "log_dataset"))


def git_source(path: Path) -> Dict[str, Any]:
    """``log_source_code(use_git=True)``: the repository state that identifies the code, instead of a copy."""
    from .collectors.environment import git_state

    git, _ = git_state(str(path if path.is_dir() else path.parent))
    return {f"source_code.git_{k}": v for k, v in git.items() if v is not None and k != "root"}
