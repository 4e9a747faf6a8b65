"""The call forms of every generation of the reference library's API, brought to one.

The seed API puts the object first (``log_model(model, "name")``,
``start_run(namespace, experiment)``); 2.x puts the name first and the step
right after the context (``save_model_version("name", model, context, step)``);
3.2.x puts a ``source`` there (``save_model_version("name", model, context,
source, step)``). Keywords always mean what they say; positional arguments are
read by their values (:class:`Form`): a name is a string, a model or a dataset
never is, an int after a context is a step, a bool where 3.2.x has a context or
a source is the flag 2.x had there, a namespace looks like a host name or an
IRI. docs/porting.md lists every form of every published version.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import functools
import numbers
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from ._values import DEFAULT_NAMESPACE, _short, check_name, check_namespace, looks_like_namespace, param_value
from .context import Context
from .exceptions import ArgumentError, InvalidValueError
from .redact import redact_value

__all__ = [
    "Form", "read_forms", "ARTIFACT_FORMS", "MODEL_FORMS", "VERSION_FORMS", "DATASET_FORMS", "SOURCE_CODE_FORMS",
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


# ---------------------------------------------------------------- positional forms
@dataclass(frozen=True)
class Form:
    """One published order of a function's positional arguments, chosen when ``matches(args, kwargs)`` holds."""

    generation: str
    names: Tuple[str, ...]
    matches: Callable[[Tuple[Any, ...], Mapping[str, Any]], bool] = lambda args, kwargs: True


def read_forms(*forms: Form) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a function whose keywords are the 3.2.x names: positional arguments are named by the first
    form that matches them (the last form should match anything), then passed by keyword."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            if not args:
                return func(**kwargs)
            form = next(f for f in forms if f.matches(args, kwargs))
            if len(args) > len(form.names):
                raise ArgumentError(
                    f"{func.__name__}() takes at most {len(form.names)} positional arguments in the {form.generation} "
                    f"form ({', '.join(form.names)}); {len(args)} given. Pass the others by keyword"
                )
            for name, value in zip(form.names, args):
                if name in kwargs:
                    raise ArgumentError(
                        f"{func.__name__}() got {name!r} twice: by position (the {form.generation} form reads "
                        f"position {form.names.index(name) + 1} as {name}) and by keyword"
                    )
                kwargs[name] = value
            return func(**kwargs)
        return call
    return decorate


def _is_step(value: Any) -> bool:
    """An int (not a bool), as 2.x passes a step."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _at(args: Tuple[Any, ...], index: int, kind: Callable[[Any], bool]) -> bool:
    return len(args) > index and kind(args[index])


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _object_first(args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """The seed order: the model (dataset) comes first, its name second."""
    return args[0] is not None and not isinstance(args[0], str)


def _seed_artifact(args: Tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """``log_artifact(artifact_path, context, step, timestamp)``: a path first, then a context (or nothing)."""
    if "artifact_path" in kwargs or "artifact_name" in kwargs:
        return False
    if len(args) == 1:
        return True
    second = args[1]
    return _is_context(second) or (isinstance(second, str) and not _is_path(second) and _is_path(args[0]))


MODEL_FORMS = (
    Form("seed", ("model", "model_name", "log_model_info", "log_as_artifact"), _object_first),
    Form("2.0.0-2.0.6", ("model_name", "model", "log_model_info", "log_model_layers", "is_input"),
         lambda a, k: _at(a, 2, _is_bool)),
    Form("2.0.7-2.0.10", ("model_name", "model", "context", "log_model_info", "log_model_layers", "is_input"),
         lambda a, k: _at(a, 3, _is_bool)),
    Form("3.2.x", ("model_name", "model", "context", "source", "log_model_info", "log_model_layers",
                   "log_copy_in_prov_directory", "is_input", "other_attrs")),
)
VERSION_FORMS = (
    Form("seed", ("model", "model_name", "context", "step", "timestamp"), _object_first),
    Form("2.x", ("model_name", "model", "context", "step", "incremental", "is_input"), lambda a, k: _at(a, 3, _is_step)),
    Form("3.2.x", ("model_name", "model", "context", "source", "step", "incremental", "is_input",
                   "log_copy_in_prov_directory", "other_attrs")),
)
DATASET_FORMS = (
    Form("seed", ("dataset", "dataset_label"), _object_first),
    Form("2.0.0-2.0.6", ("dataset_label", "dataset", "log_dataset_info"), lambda a, k: _at(a, 2, _is_bool)),
    Form("2.0.7-2.0.10", ("dataset_label", "dataset", "context", "log_dataset_info"), lambda a, k: _at(a, 3, _is_bool)),
    Form("3.2.x", ("dataset_label", "dataset", "context", "source", "log_dataset_info", "other_attrs")),
)
ARTIFACT_FORMS = (
    Form("seed", ("artifact_path", "context", "step", "timestamp"), _seed_artifact),
    Form("2.x", ("artifact_name", "artifact_path", "context", "step", "log_copy_in_prov_directory", "is_model", "is_input"),
         lambda a, k: _at(a, 3, _is_step) and (len(a) < 5 or _is_bool(a[4]))),
    # the seed's named form: a time where 2.x has its copy flag
    Form("seed (named)", ("artifact_name", "artifact_path", "context", "step", "timestamp"), lambda a, k: _at(a, 3, _is_step)),
    Form("3.2.x", ("artifact_name", "artifact_path", "context", "source", "step", "log_copy_in_prov_directory",
                   "log_copy_subdirectory", "is_model", "is_input", "other_attrs")),
)
SOURCE_CODE_FORMS = (
    Form("3.2.7-3.2.8", ("use_git",), lambda a, k: _at(a, 0, _is_bool)),
    Form("2.x", ("path", "use_git")),
)


# ---------------------------------------------------------------- start_run
_START_REST = ("provenance_save_dir", "collect_all_processes", "save_after_n_logs", "rank")
# after the rank, 2.x has disable_codecarbon (a bool) where 3.2.x has metrics_file_type
_START_TAIL_2X = ("disable_codecarbon", "metrics_file_type", "csv_separator", "use_compressor")
_START_TAIL_32X = ("metrics_file_type", "csv_separator", "use_compressor", "use_run_id")


def start_run_arguments(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """``start_run``'s arguments by name, from the seed order or the 3.2.x order.

    Two positional strings: the one that looks like a namespace (an IRI, or a
    dotted host name) is the namespace; when both or neither do, the first is
    (the seed order). One positional string: the namespace if it looks like
    one, else the experiment name. A missing namespace is ``DEFAULT_NAMESPACE``.
    """
    kwargs = dict(kwargs)
    rest = _START_REST + (_START_TAIL_2X if len(args) > 6 and isinstance(args[6], bool) else _START_TAIL_32X)
    if len(args) > 2 + len(rest):
        raise ArgumentError(f"start_run() takes at most {2 + len(rest)} positional arguments ({len(args)} given)")
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
    for key, value in zip(rest, args[2:]):
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
    """The arguments by name (:data:`ARTIFACT_FORMS` named the positional ones); a lone path is the artifact."""
    name, path = artifact_name, artifact_path
    if path is None:  # log_artifact(artifact_name=path)
        name, path = None, artifact_name
    elif _is_path(name) and _is_path(path) and os.fspath(name) != os.fspath(path) and not os.path.isabs(name):
        # (an absolute name is refused below as a name, whichever file it is)
        raise InvalidValueError(
            f"log_artifact({name!r}, {path!r}) is ambiguous: both are existing paths; "
            "call log_artifact(artifact_name=..., artifact_path=...) instead"
        )
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
    name = model_name
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
    copy: bool  # a checkpoint file is copied into the run (else recorded where it is)
    attributes: Tuple[Tuple[str, Any], ...]


def version_call(model_name: Any, model: Any, context: Any, source: Any, step: Any, timestamp: Any,
                 incremental: bool, is_input: bool, log_copy_in_prov_directory: bool,
                 other_attrs: Optional[Mapping[str, Any]]) -> VersionCall:
    name = model_name
    if model is None or name is None:
        raise ArgumentError("save_model_version() needs a model_name and a model: save_model_version('name', model)")
    _check_model("save_model_version", model)
    check_name(name, "the name given to save_model_version()")
    return VersionCall(model, name, context, source_name(source, "save_model_version"), step, timestamp,
                       bool(incremental), bool(is_input), bool(log_copy_in_prov_directory),
                       attributes(other_attrs, "save_model_version"))


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
