"""yProv4ML's data model, for code written for it: ``MetricsType``, ``get_file_type``, ``MetricInfo``, ``PROV4ML_DATA``.

``PROV4ML_DATA`` was yProv4ML's global state; here it is a **read-only view**
of the active run: reading ``PROV4ML_DATA.RUN_ID`` asks the run, assigning
any attribute raises ``AttributeError`` (pass the value to ``start_run``
instead). After ``end_run`` it keeps the values of the run that ended last,
as yProv4ML's did (scripts read ``PROV4ML_DATA.EXPERIMENT_DIR`` after
``end_run``), until the next ``start_run``. It is ``prov4ml.PROV4ML_DATA``
and, at yProv4ML's path, ``prov4ml.constants.PROV4ML_DATA``. Its attributes:

=========================  ==========================================================
attribute                  value (of the active run, else of the run ended last)
=========================  ==========================================================
``is_collecting``          ``True`` while a run records on this rank (``False``: no run, or it ended)
``metrics``                ``{(name, context): MetricInfo}`` of every series so far (``{}``: no run yet)
``metrics_file_type``      the ``MetricsType`` of its metric files
``save_metrics_after_n_logs``  ``save_after_n_logs``
``csv_separator``, ``use_compressor``, ``unify_experiments``  the ``start_run`` options
``RUN_ID``, ``EXPERIMENT_NAME``, ``USER_NAMESPACE``, ``global_rank``  run id, name, namespace, rank
``PROV_SAVE_PATH``         ``provenance_save_dir``
``EXPERIMENT_DIR``         the run's directory (yProv4ML had one directory per run too)
``METRIC_DIR``, ``ARTIFACTS_DIR``  its ``metrics/`` and artifacts folders
=========================  ==========================================================
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ..run import lifecycle as _lifecycle
from ..exceptions import InvalidValueError, ProvFileError, RunStateError
from ..metrics.formats import MetricsType, get_format

__all__ = ["MetricsType", "get_file_type", "MetricInfo", "PROV4ML_DATA", "Prov4MLDataView"]


def get_file_type(metrics_file_type: Union[MetricsType, str]) -> str:
    """For code written for yProv4ML: the suffix of the metric files of a type (``MetricsType.CSV`` -> ``".csv"``)."""
    return get_format(metrics_file_type).suffix


class MetricInfo:
    """For code written for yProv4ML: one metric series of the active run, read-only.

    ``name``, ``context``, ``source`` (a ``LoggingItemKind``),
    ``total_metric_values`` (the log calls of the series so far),
    ``unify_experiments`` and ``experiment_index`` (the run id).
    """

    def __init__(self, series: Any, run: Any) -> None:
        self._series = series
        self._run = run

    name = property(lambda self: self._series.name)
    context = property(lambda self: self._series.context)
    source = property(lambda self: self._series.kind)
    total_metric_values = property(lambda self: self._series.n)
    unify_experiments = property(lambda self: bool(self._run.options["unify_experiments"]))
    experiment_index = property(lambda self: self._run.run_id)

    def save_to_file(self, path: Union[str, "os.PathLike[str]"], file_type: Any = None, csv_separator: str = ",",
                     process: Optional[int] = None) -> str:
        """Write the series' points so far to ``<path>/<name>_<context>_GR<rank>.csv`` (``step, value, time``;
        ``<name>_<context>-2_GR<rank>.csv`` ... as its metric file, where another series makes the same name).

        The run's own metric file is not touched; ``file_type`` may only be CSV.
        Returns the path written.
        """
        if file_type is not None and get_file_type(file_type) != ".csv":
            raise InvalidValueError(f"MetricInfo.save_to_file writes CSV only, not {file_type!r}; the run writes "
                                    "its own metric files in the format chosen at start_run")
        if self._run.recording and self._run is _lifecycle.active_run():  # an ended run's files are final
            self._run.flush()
        rank = self._run.rank if process is None else process
        base = self._series.file_name.rpartition("_rank")[0]  # slug(name)_slug(context), unique in the run
        target = Path(path) / f"{base}_GR{rank}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = _read_points(self._run.run_dir / self._series.data_file) if self._series.location else []
        with open(target, "w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, delimiter=csv_separator)
            out.writerow(["step", "value", "time"])
            out.writerows(rows)
        return str(target)

    def __repr__(self) -> str:
        return f"MetricInfo({self.name!r}, {self.context!r}, total_metric_values={self.total_metric_values})"


def _read_points(path: Path):
    from ..runs import csv_rows  # the reading side, imported on first use (it brings NumPy)

    try:
        return csv_rows(path)  # the rows as the file holds them (prov4ml.runs reads every metric file)
    except ProvFileError as exc:
        raise InvalidValueError(f"{exc}: not a metric file of this run") from None


def _run(attribute: str):
    """The active run, else the run this process ended last (yProv4ML kept its values after end_run)."""
    run = _lifecycle.active_run() or _lifecycle.last_ended()
    if run is None:
        raise RunStateError(f"PROV4ML_DATA.{attribute} needs a run: call prov4ml.start_run(...) first "
                            "(after end_run it reads the values of the run that ended)")
    return run


def _file_type(run: Any) -> Any:
    chosen = run.options["metrics_file_type"]
    if isinstance(chosen, MetricsType):
        return chosen
    try:
        return MetricsType(str(chosen).lower().lstrip("."))
    except ValueError:
        return chosen


#: attribute -> its value for a run
_ATTRIBUTES = {
    "metrics_file_type": _file_type,
    "save_metrics_after_n_logs": lambda r: r.save_after_n_logs,
    "csv_separator": lambda r: r.options["csv_separator"],
    "use_compressor": lambda r: r.options["use_compressor"],
    "unify_experiments": lambda r: r.options["unify_experiments"],
    "RUN_ID": lambda r: r.run_id,
    "EXPERIMENT_NAME": lambda r: r.experiment_name,
    "USER_NAMESPACE": lambda r: r.user_namespace,
    "global_rank": lambda r: r.rank,
    "PROV_SAVE_PATH": lambda r: str(r.save_dir),
    "EXPERIMENT_DIR": lambda r: str(r.run_dir),
    "METRIC_DIR": lambda r: str(r.metrics_dir),
    "ARTIFACTS_DIR": lambda r: str(r.artifacts.root),
}


class Prov4MLDataView:
    """The class of ``PROV4ML_DATA``: a read-only view of the active run (see the module docstring)."""

    __slots__ = ()

    @property
    def is_collecting(self) -> bool:
        run = _lifecycle.active_run()
        return run is not None and bool(run.recording)

    @property
    def metrics(self) -> Dict[Tuple[str, Any], MetricInfo]:
        run = _lifecycle.active_run() or _lifecycle.last_ended()
        if run is None:
            return {}
        return {(s.name, s.context): MetricInfo(s, run) for s in list(run.metrics.series.values())}

    def __getattr__(self, name: str) -> Any:
        try:
            value_of = _ATTRIBUTES[name]
        except KeyError:
            known = sorted([*_ATTRIBUTES, "is_collecting", "metrics"])
            raise AttributeError(f"PROV4ML_DATA has no attribute {name!r}; it has {', '.join(known)}") from None
        return value_of(_run(name))

    def __setattr__(self, name: str, value: Any) -> None:
        if _lifecycle.active_run() is None and _lifecycle.last_ended() is not None:
            raise AttributeError(
                f"PROV4ML_DATA is a read-only view of the run that ended ({_lifecycle.last_ended()!r}): {name} "
                "cannot be assigned; what it recorded is final. Pass the value to the next prov4ml.start_run(...)"
            )
        raise AttributeError(
            f"PROV4ML_DATA is a read-only view of the active run: {name} cannot be assigned; "
            "pass it to prov4ml.start_run(...) instead"
        )

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def __dir__(self):
        return sorted([*_ATTRIBUTES, "is_collecting", "metrics"])

    def __repr__(self) -> str:
        run, ended = _lifecycle.active_run(), _lifecycle.last_ended()
        if run is not None:
            return f"<PROV4ML_DATA of {run!r}>"
        return f"<PROV4ML_DATA of {ended!r}, ended>" if ended is not None else "<PROV4ML_DATA: no run yet>"


#: For code written for yProv4ML: the active run (else the run ended last), read-only.
PROV4ML_DATA = Prov4MLDataView()
