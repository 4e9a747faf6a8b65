"""Reading runs from disk: every rank's ``prov_rank<k>.json`` and the metric files it names.

The documents and metric files are read by :mod:`prov4ml.runs` (the one
reader); this module lays what it read out as pandas DataFrames. Nothing here
needs an active run or changes what was recorded. pandas is imported inside
the functions (the ``analysis`` extra); ``read(..., frames=False)`` needs none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import runs
from .._optional import require
from ..exceptions import InvalidValueError
from ..runs.document import ARTIFACT_KINDS
from ..runs.record import KEY_PACKAGES
from ._progress import Progress, steps

__all__ = [
    "RunData",
    "ExperimentData",
    "load_run",
    "load_experiment",
    "runs_of",
    "experiment_data",
    "run_dirs",
    "METRIC_READERS",
    "METRIC_COLUMNS",
    "SUMMARY_COLUMNS",
    "ARTIFACT_COLUMNS",
    "ARTIFACT_KINDS",
    "STATUS_SEVERITY",
    "KEY_PACKAGES",
]

PathLike = Union[str, "os.PathLike[str]"]

METRIC_COLUMNS = ["name", "context", "rank", "step", "value", "time"]
SUMMARY_COLUMNS = [
    "name", "context", "rank", "count", "min", "max", "last", "mean",
    "nan_count", "first_step", "last_step", "unit", "source", "sampler", "location",
]
ARTIFACT_COLUMNS = [
    "rank", "kind", "name", "location", "model_name", "version", "step", "context", "size_bytes", "sha256", "created",
]
COMPARE_STATS = ("last", "min", "max")

# The status of a run of several ranks is its ranks' most severe (prov4ml.runs.SEVERITY).
STATUS_SEVERITY = runs.SEVERITY


# ---------------------------------------------------------------------------- data
@dataclass
class RunData:
    """One run (all its ranks), as read from ``run_dir``.

    ``params``: parameter name -> typed value (a key logged again with another
    value: its last value). ``metrics``: one row per point, columns ``name,
    context, rank, step, value, time`` (``time`` in Unix seconds). ``summary``:
    one row per series from the entity attributes (``count, min, max, last,
    mean, nan_count, first_step, last_step, unit, source, sampler, location``).
    ``artifacts``: one row per artifact and model version. ``info``: run id,
    experiment, status, start and end time, duration, ranks, command, error,
    user, host, ``final_metrics`` and the run's notes. ``rank_info``: ``info``
    per rank. ``environment``: what the lowest rank recorded of its
    environment (``python``, ``executable``, ``torch`` and the other
    :data:`KEY_PACKAGES` found, ``host`` and ``host_*``, ``git_commit``,
    ``git_branch``, ``git_dirty``, ``git_remote``, ``source``, ``command``,
    ``packages`` (how many)); ``rank_environment``: that of each rank.
    """

    run_dir: Path
    info: Dict[str, Any]
    params: Dict[str, Any]
    metrics: Any = field(repr=False)
    summary: Any = field(repr=False)
    artifacts: Any = field(repr=False)
    rank_info: Dict[int, Dict[str, Any]] = field(default_factory=dict, repr=False)
    prov_files: Dict[int, Path] = field(default_factory=dict, repr=False)
    rank_environment: Dict[int, Dict[str, Any]] = field(default_factory=dict, repr=False)
    record: Optional["runs.RunRecord"] = field(default=None, repr=False)  # what prov4ml.runs read
    points: Optional[List["runs.Points"]] = field(default=None, repr=False)  # every series' points, as NumPy

    @property
    def environment(self) -> Dict[str, Any]:
        return self.rank_environment[min(self.rank_environment)] if self.rank_environment else {}

    @property
    def run_id(self) -> Any:
        return self.info.get("run_id")

    @property
    def experiment(self) -> Any:
        return self.info.get("experiment")

    @property
    def ranks(self) -> List[int]:
        return sorted(self.prov_files)


@dataclass
class ExperimentData:
    """Every run of an experiment; the frames are the runs' frames with a ``run_id`` column.

    ``params`` has one row per run (``run_id`` and a column per parameter);
    ``info`` one row per run (the scalar fields of :attr:`RunData.info`).
    """

    experiment_dir: Path
    runs: List[RunData]
    metrics: Any = field(repr=False)
    params: Any = field(repr=False)
    summary: Any = field(repr=False)
    info: Any = field(repr=False)

    def run(self, run_id: int) -> RunData:
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise InvalidValueError(
            f"no run {run_id!r} in {self.experiment_dir}; runs: {', '.join(str(r.run_id) for r in self.runs)}"
        )


# ---------------------------------------------------------------------------- loading
def _pandas(feature: str):
    return require("pandas", "analysis", feature)


def read(run_dir: PathLike, progress: Progress = False, frames: bool = True) -> RunData:
    """The run in ``run_dir`` read through :mod:`prov4ml.runs`; ``frames=False`` leaves the DataFrames out
    (``metrics``, ``summary`` and ``artifacts`` None: what the reports need, without pandas)."""
    pd = _pandas("prov4ml.analysis.load_run") if frames else None
    run_dir = runs.local(run_dir)  # a URL: its copy in the staging directory
    record = runs.read_run(run_dir, details=True)
    with steps(progress, len(record.series), f"reading {run_dir.name}") as step:
        points = record.points(step)
    data = of_record(record, points)
    if pd is not None:
        data.metrics = _points_frame(pd, points)
        summary = pd.DataFrame(summary_rows(record), columns=SUMMARY_COLUMNS)
        if len(summary):
            summary = summary.sort_values(["name", "context", "rank"], kind="stable").reset_index(drop=True)
        artifacts = pd.DataFrame(artifact_rows(record), columns=ARTIFACT_COLUMNS)
        data.summary, data.artifacts = _integers(summary, _SUMMARY_INTS), _integers(artifacts, _ARTIFACT_INTS)
    return data


def of_record(record: "runs.RunRecord", points: Optional[List["runs.Points"]] = None) -> RunData:
    """A :class:`RunData` without DataFrames of a run :func:`prov4ml.runs.read_run` read (and its points)."""
    return RunData(
        run_dir=record.run_dir,
        info=record.info(),
        params=dict(record.params),
        metrics=None,
        summary=None,
        artifacts=None,
        rank_info=record.rank_info(),
        prov_files=record.prov_files,
        rank_environment=record.rank_environment(),
        record=record,
        points=points,
    )


def summary_rows(record: "runs.RunRecord") -> List[Dict[str, Any]]:
    """One dict per series (``SUMMARY_COLUMNS``), in document order."""
    return [{c: getattr(s, c) for c in SUMMARY_COLUMNS} for s in record.series]


def artifact_rows(record: "runs.RunRecord") -> List[Dict[str, Any]]:
    """One dict per artifact and model version (``ARTIFACT_COLUMNS``), rank by rank."""
    return [{c: a.get(c) for c in ARTIFACT_COLUMNS} for doc in record.documents.values() for a in doc.artifacts]


def load_run(run_dir: PathLike, progress: Progress = False) -> RunData:
    """Read the run in ``run_dir`` (``<save_dir>/<experiment>/run_<id>``): every rank's document and metric files.

    ``progress``: a ``(done, total, what)`` callback called after each metric
    file, ``True`` for a rich bar, ``None`` for one on a terminal only.
    """
    return read(run_dir, progress)


def load_experiment(experiment_dir: PathLike) -> ExperimentData:
    """Read every run (``run_<id>`` with a ``prov_rank<k>.json``) of ``experiment_dir``, in run-id order.

    A run directory is accepted too (an experiment of one run).
    """
    _pandas("prov4ml.analysis.load_experiment")
    experiment_dir = runs.local(experiment_dir)  # a URL: its copy in the staging directory
    return experiment_data(experiment_dir, [load_run(d) for d in run_dirs(experiment_dir)])


def experiment_data(experiment_dir: Path, runs: List[RunData]) -> ExperimentData:
    """An :class:`ExperimentData` of runs already loaded."""
    pd = _pandas("prov4ml.analysis.load_experiment")

    def with_id(frame, run):
        frame = frame.copy()
        frame.insert(0, "run_id", run.run_id)
        return frame

    info_rows = [{"run_id": r.run_id, **{k: v for k, v in r.info.items() if _scalar(v) and k != "run_id"}} for r in runs]
    return ExperimentData(
        experiment_dir=experiment_dir,
        runs=runs,
        metrics=_concat(pd, [with_id(r.metrics, r) for r in runs], ["run_id"] + METRIC_COLUMNS),
        params=pd.DataFrame([{"run_id": r.run_id, **r.params} for r in runs]),
        summary=_concat(pd, [with_id(r.summary, r) for r in runs], ["run_id"] + SUMMARY_COLUMNS),
        info=pd.DataFrame(info_rows),
    )


def run_dirs(experiment_dir: Path) -> List[Path]:
    """The run directories of ``experiment_dir`` in run-id order (``[experiment_dir]`` for a run directory)."""
    return runs.experiment_runs(experiment_dir)


# -- metric files ------------------------------------------------------------------
METRIC_READERS = runs.READERS  # suffix -> read(path) -> columns (a running Parquet run appends to <name>.parquet.csv)


def _points_frame(pd, points: Sequence["runs.Points"]):
    """One long frame of every series' points, built column by column (not frame by frame: 200 series
    cost a second of pandas overhead that way)."""
    points = [p for p in points if len(p)]
    if not points:
        return _concat(pd, [], METRIC_COLUMNS)
    lengths = [len(p) for p in points]
    data: Dict[str, Any] = {
        key: np.repeat(np.array([getattr(p.series, key) for p in points], dtype=object), lengths) for key in ("name", "context")
    }
    data["rank"] = np.repeat(np.array([p.series.rank for p in points], dtype="int64"), lengths)
    for col in ("step", "value", "time"):
        data[col] = np.concatenate([p[col] for p in points])
    if not np.isnan(data["step"]).any():
        data["step"] = data["step"].astype("int64")
    return pd.DataFrame(data, columns=METRIC_COLUMNS)


_EMPTY_DTYPES = {"rank": "int64", "step": "int64", "value": "float64", "time": "float64"}


def _concat(pd, frames: List[Any], columns: List[str]):
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=_EMPTY_DTYPES.get(c, "object")) for c in columns})
    return pd.concat(frames, ignore_index=True)[columns]


_SUMMARY_INTS = ("rank", "count", "nan_count", "first_step", "last_step")
_ARTIFACT_INTS = ("rank", "version", "step", "size_bytes")


def _integers(frame, columns: Sequence[str]):
    """Integer columns with gaps as pandas' nullable Int64 (not floats)."""
    for col in columns:
        try:
            frame[col] = frame[col].astype("Int64")
        except (TypeError, ValueError):  # not integers after all: leave the column as read
            pass
    return frame


def _scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple, set))


RunsLike = Union[PathLike, ExperimentData, RunData, Sequence[Union[PathLike, RunData]]]


def runs_of(data: RunsLike, frames: bool = True) -> List[RunData]:
    """The runs of an experiment directory, a run directory, loaded data, or a list of any of them
    (``frames=False``: read without pandas, :attr:`RunData.record` and ``points`` only)."""
    if isinstance(data, ExperimentData):
        return list(data.runs)
    if isinstance(data, RunData):
        return [data]
    if isinstance(data, (str, os.PathLike)):
        return [read(d, frames=frames) for d in run_dirs(runs.local(data))]
    return [r if isinstance(r, RunData) else read(r, frames=frames) for r in data]
