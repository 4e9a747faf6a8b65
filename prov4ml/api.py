"""The module-level functions of ``import prov4ml``: each finds the active Run and calls it."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Union

from . import calls
from .run import lifecycle as _lifecycle
from .run import run as _run
from .context import Context, LoggingItemKind, create_context
from .exceptions import ArgumentError

__all__ = [
    "start_run", "end_run", "run", "active_run", "get_run_id", "flush",
    "log_param", "log_params", "log_metric", "log_metrics", "log_artifact", "log_model",
    "save_model_version", "log_dataset", "register_final_metric",
    "log_current_execution_time", "log_execution_start_time", "log_execution_end_time",
    "log_system_metrics", "log_carbon_metrics", "log_flops_per_epoch", "log_flops_per_batch",
    "log_source_code", "log_execution_command", "log_optimizer", "log_context",
    "mark_epoch",
]

active_run = _lifecycle.active_run


def start_run(*args: Any, **kwargs: Any) -> "_run.Run":
    """Open the run of this process; see the API reference for the options.

    ``start_run(experiment_name, prov_user_namespace=None, ...)`` (3.2.x) and
    ``start_run(prov_user_namespace, experiment_name, ...)`` (the seed order)
    both work: by keyword always; by position, the value that looks like a
    namespace (an IRI or a dotted host name, ``www.example.org``) is the
    namespace. Without one, the namespace is ``www.example.org``.
    """
    return _lifecycle.start(_run.Run, **calls.start_run_arguments(args, kwargs))


def _start_run_signature(
    experiment_name: Optional[str] = None,
    prov_user_namespace: Optional[str] = None,
    provenance_save_dir: Optional[str] = None,
    collect_all_processes: bool = False,
    save_after_n_logs: int = 100,
    rank: Optional[int] = None,
    **options: Any,
) -> "_run.Run":
    """What ``help(prov4ml.start_run)`` shows."""


start_run.__signature__ = inspect.signature(_start_run_signature)  # type: ignore[attr-defined]


def end_run(
    create_graph: bool = False,
    create_svg: bool = False,
    crate_ro_crate: bool = False,
    create_card: bool = False,
    create_provenance_collection: bool = False,
) -> Path:
    """Close the run: drain the metric writer, write the final PROV-JSON; returns its path.

    ``create_card`` writes ``model_card_rank<k>.md``, ``crate_ro_crate`` makes the run
    directory a Process Run Crate (``ro-crate-metadata.json``, extra ``rocrate``).
    The positions are the reference's (2.x: ``end_run(graph, svg, crate)``, 3.2.5+: ``..., card``).
    """
    r = _lifecycle.active_run()
    ended = _lifecycle.last_ended()
    if r is None and ended is not None:
        warnings.warn(f"end_run(): {ended!r} has already ended; this call does nothing",
                      stacklevel=calls.user_stacklevel())
        return ended.prov_path
    r = _lifecycle.require_run("end_run")
    return r.end(create_graph, create_svg, create_provenance_collection=create_provenance_collection,
                 crate_ro_crate=crate_ro_crate, create_card=create_card)


@contextlib.contextmanager
def run(*args: Any, create_graph: bool = False, create_svg: bool = False, **kwargs: Any) -> Iterator["_run.Run"]:
    """``with prov4ml.run(...) as r:`` starts a run (as ``start_run``) and ends it; an exception marks it failed and propagates."""
    r = start_run(*args, **kwargs)
    try:
        yield r
    except BaseException as exc:
        r.end(create_graph, create_svg, error=exc)
        raise
    r.end(create_graph, create_svg)


def get_run_id() -> int:
    return _lifecycle.require_run("get_run_id").run_id


def flush() -> None:
    """Write every point logged so far and the PROV-JSON; returns when both are on disk."""
    _lifecycle.require_run("flush").flush()


def log_param(key: str, value: Any, context: Any = None, source: Optional[str] = None, is_input: bool = True) -> None:
    """One hyper-parameter, used by the run; ``is_input=False`` records a value the run produced."""
    _lifecycle.require_run("log_param").log_param(key, value, context, source, is_input)


def log_params(params: Dict[str, Any], context: Any = None) -> None:
    _lifecycle.require_run("log_params").log_params(params, context)


def log_metric(
    key: str,
    value: Any,
    context: Any = None,
    step: Optional[int] = None,
    source: Union[LoggingItemKind, str, None] = None,
    timestamp: Any = None,
) -> None:
    """Record one point of the series (key, context). ``value`` may be a zero-argument callable;
    ``source`` (a LoggingItemKind or any string) is recorded on the series."""
    _lifecycle.log_metric(key, value, context, step, source, timestamp)


#: ``log_metric`` between runs; while a run is active, ``prov4ml.log_metric`` is the run's own method
between_runs_log_metric = log_metric


def log_metrics(metrics: Dict[str, Any], context: Any = None, step: Optional[int] = None, **kwargs: Any) -> None:
    _lifecycle.require_run("log_metrics").log_metrics(metrics, context, step, **kwargs)


@calls.read_forms(*calls.ARTIFACT_FORMS)
def log_artifact(
    artifact_name: Any = None,
    artifact_path: Any = None,
    context: Any = None,
    source: Optional[str] = None,
    step: Optional[int] = None,
    log_copy_in_prov_directory: bool = True,
    log_copy_subdirectory: Optional[str] = None,
    is_model: bool = False,
    is_input: bool = False,
    other_attrs: Optional[Mapping[str, Any]] = None,
    timestamp: Any = None,
):
    """Copy a file or folder into the run (``artifacts/``) and record it; returns its record.

    ``log_artifact("plot", "plot.png")`` (3.2.x), ``log_artifact("plot", "plot.png", context, step)`` (2.x),
    ``log_artifact("plot.png")`` and ``log_artifact("plot.png", Context.TRAINING, step)`` (the seed form) all work.
    ``log_copy_in_prov_directory=False`` records the file where it is, without a copy;
    ``log_copy_subdirectory`` copies it under ``artifacts/<subdirectory>/``;
    ``is_input=True`` records it as used by the run or context (an input), not generated;
    ``other_attrs`` become attributes of its entity. A name without a suffix keeps the file's.
    """
    call = calls.artifact_call(
        artifact_name, artifact_path, context, source, step, timestamp, log_copy_in_prov_directory,
        log_copy_subdirectory, is_model, is_input, other_attrs,
    )
    return _lifecycle.require_run("log_artifact").log_artifact(call)


@calls.read_forms(*calls.MODEL_FORMS)
def log_model(
    model_name: Any = None,
    model: Any = None,
    context: Any = None,
    source: Optional[str] = None,
    log_model_info: bool = True,
    log_model_layers: bool = False,
    log_copy_in_prov_directory: bool = True,
    is_input: bool = False,
    other_attrs: Optional[Mapping[str, Any]] = None,
    log_as_artifact: Optional[bool] = None,
) -> None:
    """Record a model: its info (``log_model_info``), its weights in the run, its layer table
    (``log_model_layers``: ``models/<name>_layers.csv``).

    ``log_model("name", model)`` (3.2.x), ``log_model("name", model, Context.MODELS, True, True)`` (2.x: the
    flags after the context) and ``log_model(model, "name")`` (the seed form) all work;
    ``model`` may be a ``torch.nn.Module``, a state dict or a checkpoint file's path.
    ``log_copy_in_prov_directory=False`` (or ``log_as_artifact=False``) stores no weights in the run:
    a checkpoint file is recorded where it is. ``is_input=True``: a model the run used (a pre-trained one).
    """
    call = calls.model_call(
        model_name, model, context, source, log_model_info, log_model_layers, log_copy_in_prov_directory,
        log_as_artifact, is_input, other_attrs,
    )
    _lifecycle.require_run("log_model").log_model(call)


@calls.read_forms(*calls.VERSION_FORMS)
def save_model_version(
    model_name: Any = None,
    model: Any = None,
    context: Any = None,
    source: Optional[str] = None,
    step: Optional[int] = None,
    incremental: bool = True,
    is_input: bool = False,
    log_copy_in_prov_directory: bool = True,
    other_attrs: Optional[Mapping[str, Any]] = None,
    timestamp: Any = None,
) -> None:
    """Save the model's state as version 0, 1, 2... of ``model_name`` (numbered per name), each
    derived from the previous one (``incremental``). ``("name", model, context, source, step)`` (3.2.x),
    ``("name", model, context, step)`` (2.x: an int after the context is the step) and
    ``(model, "name", context, step)`` (the seed form) all work; ``model`` may be a checkpoint file's path,
    which ``log_copy_in_prov_directory=False`` records where it is instead of copying it.
    """
    call = calls.version_call(model_name, model, context, source, step, timestamp, incremental, is_input,
                              log_copy_in_prov_directory, other_attrs)
    _lifecycle.require_run("save_model_version").save_model_version(call)


@calls.read_forms(*calls.DATASET_FORMS)
def log_dataset(
    dataset_label: Any = None,
    dataset: Any = None,
    context: Any = None,
    source: Optional[str] = None,
    log_dataset_info: bool = True,
    other_attrs: Optional[Mapping[str, Any]] = None,
    *,
    label: Optional[str] = None,
) -> None:
    """Record a Dataset, Subset or DataLoader (its size, batch size, ...) as used by the run or ``context``.

    ``log_dataset("train", loader)`` (3.2.x), ``log_dataset("train", loader, Context.DATASETS, True)`` (2.x)
    and ``log_dataset(loader, "train")`` / ``label=`` (the seed form) all work.
    """
    if label is not None:
        if dataset_label is not None:
            raise ArgumentError("log_dataset(): give the label once, as dataset_label= or label=")
        dataset_label = label
    call = calls.dataset_call(dataset_label, dataset, context, source, log_dataset_info, other_attrs)
    _lifecycle.require_run("log_dataset").log_dataset(call)


def register_final_metric(metric_name: str, initial_value: Any, fold_operation: Callable[[Any, Any], Any]) -> None:
    _lifecycle.require_run("register_final_metric").register_final_metric(metric_name, initial_value, fold_operation)


def log_current_execution_time(label: str, context: Any = None, step: Optional[int] = None) -> None:
    _lifecycle.require_run("log_current_execution_time").log_current_execution_time(label, context, step)


def log_execution_start_time() -> None:
    _lifecycle.require_run("log_execution_start_time").log_execution_start_time()


def log_execution_end_time() -> None:
    _lifecycle.require_run("log_execution_end_time").log_execution_end_time()


def log_system_metrics(context: Any = None, step: Optional[int] = None, synchronous: bool = True, timestamp: Any = None) -> None:
    _lifecycle.require_run("log_system_metrics").log_system_metrics(context, step, synchronous, timestamp)


def log_carbon_metrics(context: Any = None, step: Optional[int] = None) -> None:
    _lifecycle.require_run("log_carbon_metrics").log_carbon_metrics(context, step)


def log_flops_per_epoch(label: str, model: Any, dataset: Any, context: Any = None, step: Optional[int] = None) -> None:
    _lifecycle.require_run("log_flops_per_epoch").log_flops_per_epoch(label, model, dataset, context, step)


def log_flops_per_batch(label: str, model: Any, batch: Any, context: Any = None, step: Optional[int] = None) -> None:
    _lifecycle.require_run("log_flops_per_batch").log_flops_per_batch(label, model, batch, context, step)


@calls.read_forms(*calls.SOURCE_CODE_FORMS)
def log_source_code(path: Optional[str] = None, use_git: bool = False) -> None:
    """Copy the code (default: the ``__main__`` script) into the run; ``use_git=True`` records the
    repository's commit, branch, remote and dirty flag as parameters instead of a copy.
    ``log_source_code(True)`` (3.2.7+) is ``use_git=True``."""
    _lifecycle.require_run("log_source_code").log_source_code(path, use_git)


def log_execution_command(cmd: str, path: Optional[str] = None) -> None:
    _lifecycle.require_run("log_execution_command").log_execution_command(cmd, path)


def log_optimizer(optimizer: Any) -> None:
    _lifecycle.require_run("log_optimizer").log_optimizer(optimizer)


def log_context(context: str, is_subcontext_of: Any = None, source_of_data: Optional[str] = None) -> Context:
    """Create a (sub-)context, as ``create_context``; no run is needed."""
    return create_context(context, is_subcontext_of, source_of_data)


def mark_epoch(epoch: int, context: Any = None) -> None:
    """Epoch ``epoch`` of ``context`` starts now (a ``provml:Epoch`` activity until the next mark)."""
    _lifecycle.require_run("mark_epoch").mark_epoch(epoch, context)
