"""Analysis on the laptop side: recorded runs, read from disk, as pandas DataFrames.

    python -m prov4ml.analysis report --run_dir prov/mnist/run_0 [--output report.html]
    python -m prov4ml.analysis compare --experiment_path prov/mnist [--output runs.csv]

Everything here reads what a run left on disk, the ``prov_rank<k>.json`` of
each rank and the metric files their ``provml:Metric`` entities point to with
``prov:location``; no active run is needed, and nothing recorded is changed.

===============  ===========================================================
function         returns
===============  ===========================================================
load_run         :class:`RunData`: ``params``, ``metrics`` (long format),
                 ``summary`` (one row per series), ``artifacts``, ``info``
load_experiment  :class:`ExperimentData`: every run, and the same frames
                 with a ``run_id`` column
compare_runs     one row per run: id, status, parameters, and
                 ``<metric>/<context>/<last|min|max>`` of each series
plot_metric      a matplotlib ``Axes``, a line per run, context and rank
html_report      a self-contained HTML file (inline CSS, PNG plots as data URIs)
===============  ===========================================================

pandas and matplotlib are the ``analysis`` extra (``pip install
"prov4ml[analysis]"``): they are imported inside the functions, and a missing
one raises :class:`~prov4ml.exceptions.MissingDependencyError`. A missing
directory, a directory without ``prov_rank<k>.json``, a corrupt document or a
missing metric file raises :class:`~prov4ml.exceptions.ProvFileError` naming it.
Plots draw on a ``matplotlib.figure.Figure`` with the Agg canvas: pyplot and the
global backend are left alone.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from . import _cli
from ._optional import require
from .exceptions import InvalidValueError, ProvFileError
from .storage import local_view

__all__ = [
    "RunData",
    "ExperimentData",
    "load_run",
    "load_experiment",
    "compare_runs",
    "plot_metric",
    "html_report",
    "main",
    "METRIC_READERS",
]

PathLike = Union[str, "os.PathLike[str]"]

# Canonical prefixes of the namespaces prov4ml writes; attributes are read by IRI, so a
# document re-serialised with other prefixes reads the same.
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
    ("provml:ModelArchitecture", "architecture"),
    ("provml:ModelWeights", "model"),
    ("provml:SourceDiff", "diff"),
    ("provml:SourceCode", "source"),
)
# The status of a run of several ranks is its ranks' most severe.
STATUS_SEVERITY = {"finished": 0, "running": 1, "terminated": 2, "failed": 3}
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
    per rank.
    """

    run_dir: Path
    info: Dict[str, Any]
    params: Dict[str, Any]
    metrics: Any = field(repr=False)
    summary: Any = field(repr=False)
    artifacts: Any = field(repr=False)
    rank_info: Dict[int, Dict[str, Any]] = field(default_factory=dict, repr=False)
    prov_files: Dict[int, Path] = field(default_factory=dict, repr=False)

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


def load_run(run_dir: PathLike) -> RunData:
    """Read the run in ``run_dir`` (``<save_dir>/<experiment>/run_<id>``): every rank's document and metric files."""
    pd = _pandas("prov4ml.analysis.load_run")
    run_dir = local_view(run_dir)  # a URL: its copy in the staging directory
    files = _rank_files(run_dir)
    ranks = [_read_rank(path, rank, pd) for rank, path in files.items()]

    params: Dict[str, Any] = {}
    for r in ranks:  # lowest rank first: its value wins; a parameter only another rank logged is added
        for key, value in r["params"].items():
            params.setdefault(key, value)
    metrics = _concat(pd, [f for r in ranks for f in r["frames"]], METRIC_COLUMNS)
    summary = pd.DataFrame([row for r in ranks for row in r["summary"]], columns=SUMMARY_COLUMNS)
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
    )


def load_experiment(experiment_dir: PathLike) -> ExperimentData:
    """Read every run (``run_<id>`` with a ``prov_rank<k>.json``) of ``experiment_dir``, in run-id order.

    A run directory is accepted too (an experiment of one run).
    """
    pd = _pandas("prov4ml.analysis.load_experiment")
    experiment_dir = local_view(experiment_dir)  # a URL: its copy in the staging directory
    return _experiment(Path(experiment_dir), [load_run(d) for d in _run_dirs(Path(experiment_dir))], pd)


def _experiment(experiment_dir: Path, runs: List[RunData], pd) -> ExperimentData:
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


def _run_dirs(experiment_dir: Path) -> List[Path]:
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
        if name != "prov:type":
            out[name] = _plain(value)
    return out


def _types(record: Any) -> set:
    return {_name(t) for t in record.get_asserted_types()}


def _read_rank(path: Path, rank: int, pd) -> Dict[str, Any]:
    from prov.model import ProvActivity, ProvAgent, ProvEntity

    doc = _cli.read_prov(path)
    run_dir = path.parent
    out: Dict[str, Any] = {"params": {}, "frames": [], "summary": [], "artifacts": []}
    info: Optional[Dict[str, Any]] = None
    agents: Dict[str, str] = {}
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
        elif "mls:HyperParameterSetting" in types:
            label = str(attrs.get("prov:label", record.identifier.localpart.rsplit("/", 1)[-1]))
            m = _PARAM_REPEAT.match(label)
            key, n = (m.group(1), int(m.group(2))) if m else (label, 1)
            if n >= repeats.get(key, (0, None))[0]:
                repeats[key] = (n, attrs.get("prov:value"))
        elif "provml:Metric" in types:
            row = {"name": attrs.get("provml:name"), "context": attrs.get("provml:context"), "rank": rank}
            row.update({c: attrs.get(f"provml:{c}") for c in SUMMARY_COLUMNS[3:-1]})
            row["location"] = attrs.get("prov:location")
            out["summary"].append(row)
            frame = _read_series(run_dir, row["location"], pd)
            if frame is not None:
                frame.insert(0, "rank", rank)
                frame.insert(0, "context", row["context"])
                frame.insert(0, "name", row["name"])
                out["frames"].append(frame)
        elif "provml:Artifact" in types:
            kind = next((k for t, k in ARTIFACT_KINDS if t in types), "artifact")
            out["artifacts"].append({
                "rank": rank, "kind": kind, "name": attrs.get("prov:label"), "location": attrs.get("prov:location"),
                "model_name": attrs.get("provml:model_name"), "version": attrs.get("provml:version"),
                "step": attrs.get("provml:step"), "context": attrs.get("provml:context"),
                "size_bytes": attrs.get("provml:size_bytes"), "sha256": attrs.get("provml:sha256"),
                "created": attrs.get("dcterms:created"),
            })
    if info is None:
        raise ProvFileError(f"{path} is PROV-JSON but not a prov4ml run document (no mls:Run activity)")
    info.update(agents)
    out["params"] = {key: value for key, (_n, value) in repeats.items()}
    out["info"] = info
    return out


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
    from .recovery import needs_recovery

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
def _read_csv(path: Path, pd):
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n")
    m = re.fullmatch(r"step(.)value\1time", header)
    if m is None:
        raise ProvFileError(f"{path} is not a prov4ml metric file (its header is {header!r}, not step,value,time)")
    return pd.read_csv(path, sep=m.group(1))


def _read_parquet(path: Path, pd):
    require("pyarrow", "parquet", f"reading the Parquet metric file {path.name}")
    return pd.read_parquet(path)


# How a metric file is read, by its suffix (a Parquet run still going on appends to <name>.parquet.csv).
METRIC_READERS = {".csv": _read_csv, ".parquet": _read_parquet}


def _read_series(run_dir: Path, location: Optional[str], pd):
    if not location:
        return None  # a series with no point written
    path = run_dir / location
    reader = METRIC_READERS.get(path.suffix)
    if reader is None:
        raise ProvFileError(f"{path}: unknown metric file format {path.suffix!r}; known: {', '.join(sorted(METRIC_READERS))}")
    if not path.is_file():
        raise ProvFileError(f"{path}: metric file missing (named by the run's PROV-JSON); copy the run's metrics/ directory with it")
    try:
        frame = reader(path, pd)
    except ProvFileError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise ProvFileError(f"{path}: cannot be read as a metric file ({exc})") from None
    missing = [c for c in ("step", "value", "time") if c not in frame.columns]
    if missing:
        raise ProvFileError(f"{path} lacks the column(s) {', '.join(missing)} of a prov4ml metric file")
    frame = frame[["step", "value", "time"]].copy()
    for col in ("step", "value", "time"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    if not frame["step"].isna().any():
        frame["step"] = frame["step"].astype("int64")
    return frame


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


# ---------------------------------------------------------------------------- comparing
RunsLike = Union[PathLike, ExperimentData, RunData, Sequence[Union[PathLike, RunData]]]


def _runs(data: RunsLike) -> List[RunData]:
    if isinstance(data, ExperimentData):
        return list(data.runs)
    if isinstance(data, RunData):
        return [data]
    if isinstance(data, (str, os.PathLike)):
        return [load_run(d) for d in _run_dirs(Path(data))]
    return [r if isinstance(r, RunData) else load_run(r) for r in data]


def compare_runs(runs: RunsLike, metrics: Optional[Union[str, Iterable[str]]] = None, stats: Sequence[str] = COMPARE_STATS):
    """One row per run: ``run_id``, ``experiment``, ``status``, a column per parameter,
    ``final/<name>`` per registered final metric, and ``<metric>/<context>/<stat>``
    (``stats``: ``last``, ``min``, ``max`` by default) per metric series.

    ``runs``: an experiment directory, a list of run directories, or loaded data.
    ``metrics``: only these series, each a metric name (every context) or
    ``"name/context"``. In a run of several ranks ``min`` and ``max`` are over
    all ranks; ``last``, ``mean`` and ``count`` are those of its lowest rank. A
    parameter named like a fixed column (``status``, say) becomes ``param/<name>``.
    """
    pd = _pandas("prov4ml.analysis.compare_runs")
    loaded = _runs(runs)
    bad = [s for s in stats if s not in ("count", "min", "max", "last", "mean")]
    if bad:
        raise InvalidValueError(f"unknown statistic(s) {bad}; known: count, last, max, mean, min")
    wanted = None if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
    if wanted is not None:
        known = {n for r in loaded for n, c in zip(r.summary["name"], r.summary["context"])} | {
            f"{n}/{c}" for r in loaded for n, c in zip(r.summary["name"], r.summary["context"])
        }
        unknown = [m for m in wanted if m not in known]
        if unknown:
            names = sorted({k for k in known if "/" not in k} or known)
            raise InvalidValueError(f"no metric series {unknown} in these runs; known: {', '.join(names)}")
    fixed = ("run_id", "experiment", "status")
    rows = []
    for r in loaded:
        row: Dict[str, Any] = {"run_id": r.run_id, "experiment": r.experiment, "status": r.info.get("status")}
        for key, value in r.params.items():
            row[f"param/{key}" if key in fixed else key] = value
        for key, value in (r.info.get("final_metrics") or {}).items():
            row[f"final/{key}"] = value
        for (name, context), group in r.summary.groupby(["name", "context"], sort=True, dropna=False):
            if wanted is not None and name not in wanted and f"{name}/{context}" not in wanted:
                continue
            lead = group.sort_values("rank").iloc[0]
            for stat in stats:
                col = group[stat]
                value = col.min() if stat == "min" else col.max() if stat == "max" else lead[stat]
                row[f"{name}/{context}/{stat}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- plotting
def _long_frame(data: Any, pd):
    """The long-format metric points (with a run_id column) of ``data``."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, ExperimentData):
        frame = data.metrics
    elif isinstance(data, (str, os.PathLike)):
        runs = [load_run(d) for d in _run_dirs(Path(data))]
        frame = _experiment(Path(data), runs, pd).metrics
    else:
        runs = [data] if isinstance(data, RunData) else list(data)
        frame = _experiment(Path("."), runs, pd).metrics
    missing = [c for c in ("name", "step", "value") if c not in frame.columns]
    if missing:
        raise InvalidValueError(f"the frame lacks the column(s) {', '.join(missing)}; give RunData.metrics or ExperimentData.metrics")
    return frame


def _figure(figsize: Tuple[float, float] = (6.4, 3.6)):
    """A Figure on the Agg canvas, without pyplot (no global figure manager, no backend switch)."""
    require("matplotlib", "analysis", "prov4ml.analysis plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_metric(data: Any, name: str, context: Optional[str] = None, ax: Any = None):
    """Draw ``name`` (in ``context``, else every context) against the step, a line per run, context and rank.

    ``data``: a :class:`RunData`, an :class:`ExperimentData`, a list of RunData,
    a run or experiment directory, or a metrics DataFrame. ``ax``: the Axes to
    draw on (``plt.gca()`` in a notebook); by default a new Agg figure's, saved
    with ``ax.figure.savefig(path)``. Returns the Axes.
    """
    pd = _pandas("prov4ml.analysis.plot_metric")
    require("matplotlib", "analysis", "prov4ml.analysis.plot_metric")
    frame = _long_frame(data, pd)
    sel = frame[frame["name"] == name]
    if context is not None:
        sel = sel[sel["context"] == str(context)] if "context" in sel.columns else sel.iloc[0:0]
    if sel.empty:
        known = sorted(frame["name"].dropna().unique()) if context is None else sorted(
            frame.loc[frame["name"] == name, "context"].dropna().unique()) if "context" in frame.columns else []
        what = "metrics" if context is None or not known else f"contexts of {name!r}"
        raise InvalidValueError(
            f"no points of {name!r}" + ("" if context is None else f" in context {str(context)!r}")
            + f"; {what}: {', '.join(map(str, known)) or '(none)'}"
        )
    if ax is None:
        ax = _figure().add_subplot()
    keys = [k for k in ("run_id", "context", "rank") if k in sel.columns]
    varying = [k for k in keys if sel[k].nunique(dropna=False) > 1]
    groups = sel.groupby(keys, sort=True, dropna=False) if keys else [((), sel)]
    for key, points in groups:
        key = key if isinstance(key, tuple) else (key,)
        parts = dict(zip(keys, key))
        label = ", ".join(_LABELS[k](parts[k]) for k in varying) or name
        ax.plot(points["step"].to_numpy(), points["value"].to_numpy(), label=label, marker="." if len(points) < 30 else None)
    _step_axis(ax)
    ax.set_ylabel(name)
    ax.set_title(name if context is None else f"{name} ({context})")
    if varying:
        ax.legend(fontsize="small")
    return ax


def _step_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


_LABELS = {"run_id": lambda v: f"run {v}", "context": str, "rank": lambda v: f"rank {v}"}


# ---------------------------------------------------------------------------- HTML report
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.9em}
.status{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;font-weight:600}
.warning{background:#fff3cd;border:1px solid #e0b252;padding:.5em .8em;border-radius:.3em}
.plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:.85em;color:#555}
.muted{color:#777}
"""
STATUS_COLOURS = {"finished": "#2e7d32", "running": "#1565c0", "terminated": "#ef6c00", "failed": "#c62828"}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _cell(value: Any) -> str:
    value = _native(value)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = html.escape(_fmt(value))
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def _native(value: Any) -> Any:
    """A NumPy scalar as a plain Python value, pandas' NA and NaT as None."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return value


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]], raw: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{v}</td>" if c in raw else _cell(v) for c, v in zip(columns, row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _href(target: Path, start: Path) -> str:
    return quote(Path(os.path.relpath(os.path.abspath(target), os.path.abspath(start))).as_posix())


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _series_plot(points, name: str, context: str) -> str:
    fig = _figure((6.0, 3.2))
    ax = fig.add_subplot()
    ranks = sorted(points["rank"].unique())
    for rank in ranks:
        p = points[points["rank"] == rank]
        ax.plot(p["step"].to_numpy(), p["value"].to_numpy(), label=f"rank {rank}", marker="." if len(p) < 30 else None)
    _step_axis(ax)
    ax.set_ylabel(name)
    ax.set_title(f"{name} ({context})")
    ax.grid(alpha=0.3)
    if len(ranks) > 1:
        ax.legend(fontsize="small")
    return _png(fig)


def _render_report(run: RunData, output_dir: Path) -> str:
    """The HTML text of :func:`html_report` for a loaded run; links are relative to ``output_dir``."""
    info = run.info
    status = str(info.get("status") or "unknown")
    title = f"{info.get('experiment') or run.run_dir.parent.name} — run {info.get('run_id')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p><span class="status" style="background:{STATUS_COLOURS.get(status, "#555")}">{html.escape(status)}</span> '
        f'<span class="muted">{html.escape(str(run.run_dir))}</span></p>',
    ]
    if info.get("needs_recovery"):
        parts.append(
            f'<p class="warning">The process of rank(s) {", ".join(map(str, info["needs_recovery"]))} was killed before '
            f"end_run; this report shows the last refresh. Run <code>prov4ml recover {html.escape(str(run.run_dir))}</code> "
            "to complete the run from its journal.</p>"
        )

    # -- run information
    rows = [(k, info.get(k)) for k in (
        "run_id", "experiment", "status", "start_time", "end_time", "duration_s", "ranks", "user", "host",
        "command", "error_type", "error_message",
    ) if info.get(k) not in (None, "", [])]
    skip = {k for k, _ in rows} | {"final_metrics", "final_folds", "recorded_dir", "needs_recovery"}
    rows += [(k, v) for k, v in info.items() if k not in skip and v not in (None, "")]
    for name, value in (info.get("final_metrics") or {}).items():
        fold = (info.get("final_folds") or {}).get(name)
        rows.append((f"final {name}" + (f" ({fold})" if fold else ""), value))
    parts += ["<h2>Run</h2>", _table(["field", "value"], rows)]

    # -- provenance files
    links = []
    for rank, prov in run.prov_files.items():
        items = [f'<a href="{_href(prov, output_dir)}">{html.escape(prov.name)}</a>']
        for suffix in (".svg", ".dot"):
            graph = prov.with_suffix(suffix)
            if graph.is_file():
                items.append(f'<a href="{_href(graph, output_dir)}">{html.escape(graph.name)}</a>')
        links.append(f"<li>rank {rank}: {' · '.join(items)}</li>")
    parts += ["<h2>Provenance</h2>", f"<ul>{''.join(links)}</ul>"]

    # -- parameters
    parts.append("<h2>Parameters</h2>")
    exact = [(k, repr(v) if isinstance(v, float) else v) for k, v in run.params.items()]  # 6 digits are not enough here
    parts.append(_table(["name", "value"], exact) if run.params else '<p class="muted">none recorded</p>')

    # -- metric summary and plots
    parts.append("<h2>Metrics</h2>")
    if len(run.summary):
        cols = ["name", "context", "rank", "count", "min", "max", "last", "mean", "nan_count", "first_step", "last_step"]
        parts.append(_table(cols, run.summary[cols].itertuples(index=False, name=None)))
        figures = []
        for (name, context), points in run.metrics.groupby(["name", "context"], sort=True, dropna=False):
            uri = _series_plot(points, str(name), str(context))
            alt = html.escape(f"{name} ({context}) against step")
            figures.append(f'<figure><img src="{uri}" alt="{alt}"><figcaption>{html.escape(f"{name} ({context})")}</figcaption></figure>')
        parts.append(f'<div class="plots">{"".join(figures)}</div>')
    else:
        parts.append('<p class="muted">no metric recorded</p>')

    # -- artifacts and model versions
    parts.append("<h2>Artifacts and model versions</h2>")
    if len(run.artifacts):
        rows = []
        for a in run.artifacts.astype(object).where(run.artifacts.notna(), None).itertuples(index=False):
            loc = a.location
            link = (f'<a href="{_href(run.run_dir / loc, output_dir)}">{html.escape(str(loc))}</a>'
                    if isinstance(loc, str) and loc else "")
            sha = a.sha256
            rows.append((a.kind, a.name, link, a.model_name, a.version, a.step, a.context, a.size_bytes,
                         f"<code>{html.escape(sha[:12])}</code>" if isinstance(sha, str) else ""))
        parts.append(_table(
            ["kind", "name", "location", "model", "version", "step", "context", "bytes", "sha256"], rows,
            raw=("location", "sha256"),
        ))
    else:
        parts.append('<p class="muted">none recorded</p>')
    parts.append(f'<p class="muted">Written by prov4ml.analysis on {datetime.now().isoformat(sep=" ", timespec="seconds")}.</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def html_report(run_dir: Union[PathLike, RunData], output: Optional[PathLike] = None) -> Path:
    """Write a self-contained HTML report of the run in ``run_dir`` and return its path.

    Default output: ``<run_dir>/report.html``. The file needs nothing else to
    display (inline CSS, plots as PNG data URIs); it links the run's PROV-JSON,
    graph and artifacts by relative paths. Written atomically.
    """
    run = run_dir if isinstance(run_dir, RunData) else load_run(run_dir)
    require("matplotlib", "analysis", "prov4ml.analysis.html_report")
    out = Path(output) if output is not None else run.run_dir / "report.html"
    return _cli.write_output(out, _render_report(run, out.parent))


# ---------------------------------------------------------------------------- command line
def _compare_cli(experiment_path: str, output: Optional[str]) -> Optional[Path]:
    table = compare_runs(experiment_path)
    text = table.to_csv(index=False)
    if output is None:
        print(text, end="")
        return None
    return _cli.write_output(output, text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _cli.parser("prov4ml.analysis", "Reports and comparisons of recorded runs.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="a self-contained HTML report of one run")
    r.add_argument("--run_dir", required=True, help="the run directory (<save_dir>/<experiment>/run_<id>)")
    r.add_argument("--output", default=None, help="the HTML file (default: <run_dir>/report.html)")
    c = sub.add_parser("compare", help="one CSV row per run: status, parameters, last/min/max of each metric")
    c.add_argument("--experiment_path", required=True, help="the experiment directory (<save_dir>/<experiment>)")
    c.add_argument("--output", default=None, help="the CSV file (default: print to stdout)")
    args = p.parse_args(argv)
    if args.command == "report":
        return _cli.run("prov4ml.analysis", lambda: html_report(args.run_dir, args.output))
    return _cli.run("prov4ml.analysis", lambda: _compare_cli(args.experiment_path, args.output))


if __name__ == "__main__":
    raise SystemExit(main())
