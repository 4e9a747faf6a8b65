"""Reading runs from disk: every rank's ``prov_rank<k>.json`` and the metric files it names.

Nothing here needs an active run or changes what was recorded. pandas is
imported inside the functions (the ``analysis`` extra).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..provenance import files
from .._optional import require
from ..exceptions import InvalidValueError, ProvFileError
from ..metrics import formats
from ..provenance.names import RUNDIR, location_path
from ..storage import local_view
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

_PREFIXES = {
    "http://www.w3.org/ns/prov#": "prov",
    "http://www.w3.org/ns/mls#": "mls",
    "http://purl.org/dc/terms/": "dcterms",
    "https://prov4ml.github.io/ns/provml#": "provml",
}
_RANK_FILE = re.compile(r"^prov_rank(\d+)\.json$")
_RUN_DIR = re.compile(r"^run_(\d+)$")
_PARAM_REPEAT = re.compile(r"^(.*)#(\d+)$")  # log_param of a key again with another value: "lr#2"

METRIC_COLUMNS = ["name", "context", "rank", "step", "value", "time"]
SUMMARY_COLUMNS = [
    "name", "context", "rank", "count", "min", "max", "last", "mean",
    "nan_count", "first_step", "last_step", "unit", "source", "sampler", "location",
]
ARTIFACT_COLUMNS = [
    "rank", "kind", "name", "location", "model_name", "version", "step", "context", "size_bytes", "sha256", "created",
]
COMPARE_STATS = ("last", "min", "max")

# An artifact's kind is the first of its prov:types found in this table (else "artifact").
ARTIFACT_KINDS = (
    ("provml:ModelVersion", "model_version"),
    ("provml:LayerWeights", "layer_weights"),
    ("provml:LayerData", "layer_data"),
    ("provml:ModelArchitecture", "architecture"),
    ("provml:ModelWeights", "model"),
    ("provml:SourceDiff", "diff"),
    ("provml:SourceCode", "source"),
)
# The status of a run of several ranks is its ranks' most severe.
STATUS_SEVERITY = {"finished": 0, "running": 1, "terminated": 2, "failed": 3}
# Packages whose version RunData.environment names (read from the run's environment/packages.txt).
KEY_PACKAGES = ("torch", "lightning", "pytorch-lightning", "numpy")
_PACKAGES_FILE = "environment/packages.txt"
# Run-activity attributes that are not "notes" (they have their own place in ``info``).
_RUN_FIELDS = ("experiment", "run_id", "rank", "status", "command", "error_type", "error_message")


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


def load_run(run_dir: PathLike, progress: Progress = False) -> RunData:
    """Read the run in ``run_dir`` (``<save_dir>/<experiment>/run_<id>``): every rank's document and metric files.

    ``progress``: a ``(done, total, what)`` callback called after each metric
    file, ``True`` for a rich bar, ``None`` for one on a terminal only.
    """
    pd = _pandas("prov4ml.analysis.load_run")
    run_dir = local_view(run_dir)  # a URL: its copy in the staging directory
    files = _rank_files(run_dir)
    ranks = [_read_rank(path, rank) for rank, path in files.items()]
    series = [row for r in ranks for row in r["summary"]]
    points = []
    with steps(progress, len(series), f"reading {run_dir.name}") as step:
        for row in series:
            points.append((row, _read_series(run_dir, row["location"], pd)))
            step(f"{row['name']} ({row['context']})")

    params: Dict[str, Any] = {}
    for r in ranks:  # lowest rank first: its value wins; a parameter only another rank logged is added
        for key, value in r["params"].items():
            params.setdefault(key, value)
    metrics = _points_frame(pd, points)
    summary = pd.DataFrame(series, columns=SUMMARY_COLUMNS)
    if len(summary):
        summary = summary.sort_values(["name", "context", "rank"], kind="stable").reset_index(drop=True)
    artifacts = pd.DataFrame([row for r in ranks for row in r["artifacts"]], columns=ARTIFACT_COLUMNS)
    summary, artifacts = _integers(summary, _SUMMARY_INTS), _integers(artifacts, _ARTIFACT_INTS)
    rank_info = {rank: r["info"] for rank, r in zip(files, ranks)}
    return RunData(
        run_dir=run_dir,
        info=_run_info(rank_info, run_dir),
        params=params,
        metrics=metrics,
        summary=summary,
        artifacts=artifacts,
        rank_info=rank_info,
        prov_files=dict(files),
        rank_environment={rank: r["environment"] for rank, r in zip(files, ranks)},
    )


def load_experiment(experiment_dir: PathLike) -> ExperimentData:
    """Read every run (``run_<id>`` with a ``prov_rank<k>.json``) of ``experiment_dir``, in run-id order.

    A run directory is accepted too (an experiment of one run).
    """
    _pandas("prov4ml.analysis.load_experiment")
    experiment_dir = local_view(experiment_dir)  # a URL: its copy in the staging directory
    return experiment_data(Path(experiment_dir), [load_run(d) for d in run_dirs(Path(experiment_dir))])


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


def _rank_files(run_dir: Path) -> Dict[int, Path]:
    if not run_dir.exists():
        raise ProvFileError(f"{run_dir}: no such directory; give a run directory (<provenance_save_dir>/<experiment>/run_<id>)")
    if not run_dir.is_dir():
        raise ProvFileError(f"{run_dir} is a file, not a run directory; give the directory that holds prov_rank<k>.json")
    found = {}
    for p in run_dir.iterdir():
        m = _RANK_FILE.match(p.name)
        if m and p.is_file():
            found[int(m.group(1))] = p
    if not found:
        raise ProvFileError(
            f"{run_dir} holds no prov_rank<k>.json; give a run directory (<provenance_save_dir>/<experiment>/run_<id>)"
        )
    return dict(sorted(found.items()))


def run_dirs(experiment_dir: Path) -> List[Path]:
    """The run directories of ``experiment_dir`` in run-id order (``[experiment_dir]`` for a run directory)."""
    if not experiment_dir.exists():
        raise ProvFileError(f"{experiment_dir}: no such directory; give an experiment directory (<provenance_save_dir>/<experiment>)")
    if not experiment_dir.is_dir():
        raise ProvFileError(f"{experiment_dir} is a file; give an experiment directory (<provenance_save_dir>/<experiment>)")
    if any(_RANK_FILE.match(p.name) for p in experiment_dir.iterdir()):
        return [experiment_dir]  # a run directory: an experiment of one run
    dirs = [d for d in experiment_dir.iterdir() if d.is_dir() and any(_RANK_FILE.match(p.name) for p in d.iterdir())]
    if not dirs:
        raise ProvFileError(
            f"{experiment_dir} holds no runs (run_<id>/prov_rank<k>.json); "
            "give an experiment directory (<provenance_save_dir>/<experiment>)"
        )

    def key(d: Path) -> Tuple[int, Any]:
        m = _RUN_DIR.match(d.name)
        return (0, int(m.group(1))) if m else (1, d.name)

    return sorted(dirs, key=key)


# -- one rank's document ---------------------------------------------------------
def _name(qn: Any) -> str:
    """``provml:status`` for an attribute QualifiedName, whatever prefix the file used."""
    uri = str(getattr(qn, "uri", qn))
    for ns, prefix in _PREFIXES.items():
        if uri.startswith(ns):
            return f"{prefix}:{uri[len(ns):]}"
    return str(qn)


def _plain(value: Any) -> Any:
    """A Python value for a PROV literal: numbers, booleans, datetimes and strings as they are."""
    if isinstance(value, (bool, int, float, str, datetime)) or value is None:
        return value
    if hasattr(value, "uri"):  # a QualifiedName
        return _name(value)
    return str(getattr(value, "value", value))  # a prov Literal of another datatype


def _attributes(record: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in record.attributes:
        name = _name(key)
        if name == "prov:location":
            out[name] = location_path(value)  # a file IRI (rundir:metrics/...) as a path
        elif name != "prov:type":
            out[name] = _plain(value)
    return out


def _types(record: Any) -> set:
    return {_name(t) for t in record.get_asserted_types()}


def _read_rank(path: Path, rank: int) -> Dict[str, Any]:
    from prov.model import ProvActivity, ProvAgent, ProvEntity

    doc = files.read_prov(path)
    run_dir = path.parent
    out: Dict[str, Any] = {"params": {}, "summary": [], "artifacts": [], "finals": {}}
    info: Optional[Dict[str, Any]] = None
    agents: Dict[str, str] = {}
    env: Dict[str, Any] = {}
    repeats: Dict[str, Tuple[int, Any]] = {}
    for record in doc.get_records((ProvActivity, ProvEntity, ProvAgent)):
        types, attrs = _types(record), _attributes(record)
        if isinstance(record, ProvAgent):
            if "prov:Person" in types:
                agents.setdefault("user", attrs.get("prov:label"))
            elif "provml:Host" in types:
                agents.setdefault("host", attrs.get("prov:label"))
        elif isinstance(record, ProvActivity):
            if "mls:Run" in types and info is None:
                info = _rank_info(record, attrs, rank)
        elif "provml:Environment" in types:
            env.update(_local_attrs(attrs))
        elif "mls:Implementation" in types:  # the source code: git facts go here when it was copied
            env.update((k, v) for k, v in _local_attrs(attrs).items() if k.startswith("git_"))
            env["source"] = attrs.get("prov:location")
        elif "mls:HyperParameterSetting" in types:
            label = str(attrs.get("prov:label", record.identifier.localpart.rsplit("/", 1)[-1]))
            m = _PARAM_REPEAT.match(label)
            key, n = (m.group(1), int(m.group(2))) if m else (label, 1)
            if n >= repeats.get(key, (0, None))[0]:
                repeats[key] = (n, attrs.get("prov:value"))
        elif "provml:FinalMetric" in types:
            out["finals"][attrs.get("provml:name")] = (attrs.get("prov:value"), attrs.get("provml:fold"))
        elif "provml:Metric" in types:
            row = {"name": attrs.get("provml:name"), "context": attrs.get("provml:context"), "rank": rank}
            row.update({c: attrs.get(f"provml:{c}") for c in SUMMARY_COLUMNS[3:-1]})
            row["location"] = attrs.get("prov:location")
            out["summary"].append(row)
        elif "provml:Artifact" in types:
            kind = next((k for t, k in ARTIFACT_KINDS if t in types), "artifact")
            out["artifacts"].append({
                "rank": rank, "kind": kind, "name": attrs.get("prov:label"), "location": attrs.get("prov:location"),
                "model_name": attrs.get("provml:model_name"), "version": attrs.get("provml:version"),
                "step": attrs.get("provml:step"), "context": attrs.get("provml:context"),
                "size_bytes": attrs.get("provml:size_bytes"), "sha256": attrs.get("provml:sha256"),
                "created": attrs.get("provml:created", attrs.get("dcterms:created")),
            })
    if info is None:
        raise ProvFileError(f"{path} is PROV-JSON but not a prov4ml run document (no mls:Run activity)")
    info.update(agents)
    rundir = next((ns.uri for ns in doc.get_registered_namespaces() if ns.prefix == RUNDIR), None)
    if rundir is not None:  # where the run was recorded: the IRI its file locations are relative to
        info["recorded_dir"] = location_path(rundir).rstrip("/")
    for name, (value, fold) in out.pop("finals").items():  # one provml:FinalMetric entity each
        info["final_metrics"][name] = value
        info["final_folds"][name] = fold
    env.setdefault("host", agents.get("host"))  # the host is an agent of the run (its label: the host name)
    out["environment"] = _environment(env, run_dir, out["artifacts"], info.get("command"))
    out["params"] = {key: value for key, (_n, value) in repeats.items()}
    out["info"] = info
    return out


def _local_attrs(attrs: Dict[str, Any]) -> Dict[str, Any]:
    return {k[len("provml:"):]: v for k, v in attrs.items() if k.startswith("provml:")}


def _environment(env: Dict[str, Any], run_dir: Path, artifacts: List[Dict[str, Any]], command: Any) -> Dict[str, Any]:
    """The environment recorded by a rank, with the versions of :data:`KEY_PACKAGES` from its packages list."""
    out = {k: env.get(k) for k in ("python", "executable")}
    listing = next((a["location"] for a in artifacts if a["name"] == _PACKAGES_FILE and a["location"]), None)
    if listing:
        try:
            text = (run_dir / listing).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""  # copied without its artifacts: the versions are simply not known
        versions = dict(line.partition("==")[::2] for line in text.splitlines() if "==" in line)
        out.update((name, versions[name]) for name in KEY_PACKAGES if name in versions)
    out.update((k, v) for k, v in env.items() if k not in out)
    out["command"] = command
    return {k: v for k, v in out.items() if v is not None}


def _rank_info(record: Any, attrs: Dict[str, Any], rank: int) -> Dict[str, Any]:
    info: Dict[str, Any] = {f: attrs.get(f"provml:{f}") for f in _RUN_FIELDS}
    info["rank"] = attrs.get("provml:rank", rank)
    info["start_time"], info["end_time"] = record.get_startTime(), record.get_endTime()
    info["recorded_dir"] = attrs.get("prov:location")
    finals: Dict[str, Any] = {}
    folds: Dict[str, Any] = {}
    notes: Dict[str, Any] = {}
    for key, value in attrs.items():
        prefix, _, local = key.partition(":")
        if prefix != "provml" or local in _RUN_FIELDS:
            continue
        if local.startswith("final_"):
            finals[local[len("final_"):]] = value
        else:
            notes[local] = value
    for name in list(finals):  # final_<name>_fold is the fold of final_<name>
        if name.endswith("_fold") and name[: -len("_fold")] in finals and isinstance(finals[name], str):
            folds[name[: -len("_fold")]] = finals.pop(name)
    info["final_metrics"], info["final_folds"] = finals, folds
    info.update(notes)
    return info


_INFO_ORDER = (
    "run_id", "experiment", "status", "start_time", "end_time", "duration_s", "ranks", "user", "host",
    "command", "error_type", "error_message", "final_metrics", "final_folds", "recorded_dir", "needs_recovery",
)


def _run_info(rank_info: Dict[int, Dict[str, Any]], run_dir: Path) -> Dict[str, Any]:
    """The run's info: its lowest rank's, with the status, times and error of all ranks."""
    ranks = list(rank_info.values())
    first = ranks[0]
    info: Dict[str, Any] = dict.fromkeys(_INFO_ORDER)
    info.update((k, v) for k, v in first.items() if k != "rank")
    if info["run_id"] is None:
        m = _RUN_DIR.match(run_dir.name)
        info["run_id"] = int(m.group(1)) if m else run_dir.name
    info["ranks"] = list(rank_info)
    from ..run.recovery import needs_recovery

    info["needs_recovery"] = needs_recovery(run_dir)  # ranks killed before end_run: `prov4ml recover` completes them
    info["status"] = max((r.get("status") or "running" for r in ranks), key=lambda s: STATUS_SEVERITY.get(s, 1))
    starts = [r["start_time"] for r in ranks if r.get("start_time") is not None]
    ends = [r.get("end_time") for r in ranks]
    info["start_time"] = min(starts) if starts else None
    info["end_time"] = max(ends) if all(e is not None for e in ends) else None
    if info["start_time"] is not None and info["end_time"] is not None:
        info["duration_s"] = (info["end_time"] - info["start_time"]).total_seconds()
    failed = next((r for r in ranks if r.get("error_type")), None)
    if failed is not None:
        info["error_type"], info["error_message"] = failed["error_type"], failed.get("error_message")
    return info


# -- metric files ------------------------------------------------------------------
METRIC_READERS = formats.READERS  # suffix -> read(path) -> columns (a running Parquet run appends to <name>.parquet.csv)


def _read_series(run_dir: Path, location: Optional[str], pd) -> Optional[Dict[str, Any]]:
    """The ``step`` (int64 when whole), ``value`` and ``time`` (float64) columns of a metric file (None: no file yet)."""
    if not location:
        return None  # a series with no point written
    path = run_dir / location
    reader = METRIC_READERS.get(path.suffix)
    if reader is None:
        raise ProvFileError(f"{path}: unknown metric file format {path.suffix!r}; known: {', '.join(sorted(METRIC_READERS))}")
    if not path.exists():  # a Zarr store is a directory
        raise ProvFileError(f"{path}: metric file missing (named by the run's PROV-JSON); copy the run's metrics/ directory with it")
    try:
        columns = reader(path)
    except ProvFileError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise ProvFileError(f"{path}: cannot be read as a metric file ({exc})") from None
    missing = [c for c in ("step", "value", "time") if c not in columns]
    if missing:
        raise ProvFileError(f"{path} lacks the column(s) {', '.join(missing)} of a prov4ml metric file")
    out = {}
    for col in ("step", "value", "time"):
        data = np.asarray(columns[col])
        if col == "step" and data.dtype.kind in "iu":
            out[col] = data.astype("int64")  # exact: float64 would round 2**53 + 1
        else:
            out[col] = (data if data.dtype.kind in "iuf" else pd.to_numeric(data, errors="coerce")).astype("float64")
    return out


def _points_frame(pd, points: List[Tuple[Dict[str, Any], Optional[Dict[str, Any]]]]):
    """One long frame of every series' points, built column by column (not frame by frame: 200 series
    cost a second of pandas overhead that way)."""
    points = [(row, cols) for row, cols in points if cols is not None and len(cols["step"])]
    if not points:
        return _concat(pd, [], METRIC_COLUMNS)
    lengths = [len(cols["step"]) for _, cols in points]
    data: Dict[str, Any] = {
        key: np.repeat(np.array([row[key] for row, _ in points], dtype=object), lengths) for key in ("name", "context")
    }
    data["rank"] = np.repeat(np.array([row["rank"] for row, _ in points], dtype="int64"), lengths)
    for col in ("step", "value", "time"):
        data[col] = np.concatenate([cols[col] for _, cols in points])
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


def runs_of(data: RunsLike) -> List[RunData]:
    """The runs of an experiment directory, a run directory, loaded data, or a list of any of them."""
    if isinstance(data, ExperimentData):
        return list(data.runs)
    if isinstance(data, RunData):
        return [data]
    if isinstance(data, (str, os.PathLike)):
        return [load_run(d) for d in run_dirs(Path(data))]
    return [r if isinstance(r, RunData) else load_run(r) for r in data]
