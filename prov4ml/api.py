"""The module-level functions of ``import prov4ml``: each finds the active Run and calls it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

from . import _lifecycle
from . import run as _run
from .context import Context, LoggingItemKind, create_context

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


def start_run(
    prov_user_namespace: str,
    experiment_name: Optional[str] = None,
    provenance_save_dir: Optional[str] = None,
    collect_all_processes: bool = False,
    save_after_n_logs: int = 100,
    rank: Optional[int] = None,
    **options: Any,
) -> "_run.Run":
    """Open the run of this process; see the API reference for ``options``."""
    return _lifecycle.start(
        prov_user_namespace, experiment_name, provenance_save_dir,
        collect_all_processes, save_after_n_logs, rank, **options,
    )


def end_run(
    create_graph: bool = False,
    create_svg: bool = False,
    create_provenance_collection: bool = False,
    crate_ro_crate: bool = False,
    create_card: bool = False,
) -> Path:
    """Close the run: drain the metric writer, write the final PROV-JSON; returns its path."""
    import warnings

    r = _lifecycle.require_run("end_run")
    for flag, name in ((crate_ro_crate, "crate_ro_crate"), (create_card, "create_card")):
        if flag:
            warnings.warn(f"end_run({name}=True) is not supported yet; the run is saved without it", stacklevel=2)
    return r.end(create_graph, create_svg, create_provenance_collection=create_provenance_collection)


@contextlib.contextmanager
def run(prov_user_namespace: str, *args: Any, create_graph: bool = False, create_svg: bool = False, **kwargs: Any) -> Iterator["_run.Run"]:
    """``with prov4ml.run(...) as r:`` starts a run and ends it; an exception marks it failed and propagates."""
    r = start_run(prov_user_namespace, *args, **kwargs)
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


def log_param(key: str, value: Any, context: Any = None) -> None:
    _lifecycle.require_run("log_param").log_param(key, value, context)


def log_params(params: Dict[str, Any], context: Any = None) -> None:
    _lifecycle.require_run("log_params").log_params(params, context)


def log_metric(
    key: str,
    value: Any,
    context: Any = None,
    step: Optional[int] = None,
    source: Optional[LoggingItemKind] = None,
    timestamp: Any = None,
) -> None:
    """Record one point of the series (key, context). ``value`` may be a zero-argument callable."""
    _lifecycle.log_metric(key, value, context, step, source, timestamp)


def log_metrics(metrics: Dict[str, Any], context: Any = None, step: Optional[int] = None, **kwargs: Any) -> None:
    _lifecycle.require_run("log_metrics").log_metrics(metrics, context, step, **kwargs)


def log_artifact(*args: Any, **kwargs: Any):
    """``log_artifact(artifact_path, context=None, step=None, timestamp=None)`` (or ``(artifact_name, artifact_path, ...)``)."""
    return _lifecycle.require_run("log_artifact").log_artifact(*args, **kwargs)


def log_model(*args: Any, **kwargs: Any) -> None:
    """``log_model(model, model_name="default", log_model_info=True, log_as_artifact=True)``."""
    _lifecycle.require_run("log_model").log_model(*args, **kwargs)


def save_model_version(*args: Any, **kwargs: Any) -> None:
    """``save_model_version(model, model_name, context=None, step=None, timestamp=None)``."""
    _lifecycle.require_run("save_model_version").save_model_version(*args, **kwargs)


def log_dataset(*args: Any, **kwargs: Any) -> None:
    """``log_dataset(dataset, label)``: a Dataset, Subset or DataLoader."""
    _lifecycle.require_run("log_dataset").log_dataset(*args, **kwargs)


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


def log_source_code(path: Optional[str] = None) -> None:
    _lifecycle.require_run("log_source_code").log_source_code(path)


def log_execution_command(cmd: str, path: Optional[str] = None) -> None:
    _lifecycle.require_run("log_execution_command").log_execution_command(cmd, path)


def log_optimizer(optimizer: Any) -> None:
    _lifecycle.require_run("log_optimizer").log_optimizer(optimizer)


def log_context(name: str, parent: Any = None) -> Context:
    """Create a (sub-)context, as ``create_context``; no run is needed."""
    return create_context(name, parent)


def mark_epoch(epoch: int, context: Any = None) -> None:
    """Epoch ``epoch`` of ``context`` starts now (a ``provml:Epoch`` activity until the next mark)."""
    _lifecycle.require_run("mark_epoch").mark_epoch(epoch, context)
