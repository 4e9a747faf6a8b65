"""The runs under the UI's directory, read from their PROV-JSON and kept while unchanged.

Lists and comparisons need only what each ``prov_rank<k>.json`` says (status,
times, parameters, each series' summary), so they are read from the documents
as JSON, without the ``prov`` package or the metric files: a running run's
document is rewritten every few seconds, and reading its points again each
time would cost as much as the run's whole history. A run's page reads the
run in full with :func:`prov4ml.analysis.load_run`. Both are read again only
when a document changed.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..provenance.names import json_location
from .. import analysis
from ..exceptions import InvalidValueError, Prov4MLError
from ..run.recovery import needs_recovery

__all__ = ["Store", "RunHead", "configuration", "sweep_groups", "metric_files", "environment", "duration_s",
           "native", "SWEEP_EXCLUDED", "STATUS_ORDER", "SERIES_FIELDS"]

_DOC = re.compile(r"^prov_rank(\d+)\.json$")
_RUN_DIR = re.compile(r"^run_(\d+)$")
_REPEAT = re.compile(r"^(.*)#(\d+)$")  # a parameter logged again with another value: "lr#2"
# Parameters that tell repetitions of one configuration apart rather than configurations.
SWEEP_EXCLUDED = ("sweep.", "seed")
# The status of a run of several ranks is its ranks' most severe.
STATUS_ORDER = ("finished", "running", "interrupted", "terminated", "killed", "failed")
SERIES_FIELDS = ("name", "context", "rank", "count", "min", "max", "last", "mean", "first_step", "last_step", "unit")
_ENVIRONMENT_TYPES = {"provml:Environment", "prov:Plan"}
_LITERALS: Dict[str, Callable[[str], Any]] = {
    "xsd:double": float, "xsd:float": float, "xsd:decimal": float,  # float() reads prov's INF, -INF and NaN
    "xsd:int": int, "xsd:long": int, "xsd:integer": int, "xsd:short": int,
    "xsd:boolean": lambda s: s.strip().lower() in ("true", "1"),
    "xsd:dateTime": lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")),
}


def native(value: Any) -> Any:
    """A NumPy scalar as a Python value; pandas' NA and NaT as None."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str) else value


def _literal(value: Any) -> Any:
    """The Python value of a PROV-JSON attribute value (``{"$": "0.1", "type": "xsd:double"}`` -> 0.1)."""
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if not isinstance(value, dict):
        return value
    raw, kind = value.get("$"), value.get("type")
    try:
        return _LITERALS[kind](raw) if kind in _LITERALS else raw
    except (TypeError, ValueError):
        return raw


def _time(value: Any) -> Optional[datetime]:
    """prov:startTime / prov:endTime: plain ISO strings in PROV-JSON."""
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _records(doc: Dict[str, Any], kind: str) -> List[Tuple[set, Dict[str, Any]]]:
    """(prov:types, plain attributes) of each ``kind`` record ("entity", "activity") of a PROV-JSON dict."""
    out = []
    for record in (doc.get(kind) or {}).values():
        for rec in record if isinstance(record, list) else [record]:  # an identifier used twice is a list
            types = rec.get("prov:type", [])
            types = {t.get("$") if isinstance(t, dict) else t for t in (types if isinstance(types, list) else [types])}
            out.append((types, {k: _literal(v) for k, v in rec.items() if k != "prov:type"}))
    return out


def _documents(run_dir: Path) -> Dict[int, Path]:
    found = {}
    try:
        names = os.listdir(run_dir)
    except OSError:
        return found
    for name in names:
        m = _DOC.match(name)
        if m:
            found[int(m.group(1))] = run_dir / name
    return dict(sorted(found.items()))


def _load(path: Path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict):
        raise ValueError("not a PROV-JSON object")
    return doc


@dataclass
class RunHead:
    """What the runs list and the experiment page show of a run, read from its documents alone.

    ``key`` is the run directory relative to the UI's root (the URLs give it);
    ``series`` holds each series' summary (``SERIES_FIELDS``) per rank, as the
    documents say; ``last`` maps ``"name/context"`` to the last value of its lowest rank.
    ``error`` says why the run could not be read (shown, never raised).
    """

    key: str
    experiment: str
    run_dir: Path
    run_id: Any = None
    experiment_name: Optional[str] = None
    status: str = "unreadable"
    start: Optional[datetime] = None
    end: Optional[datetime] = None
    ranks: List[int] = field(default_factory=list)
    params: Dict[str, Any] = field(default_factory=dict)
    series: List[Dict[str, Any]] = field(default_factory=list)
    last: Dict[str, Any] = field(default_factory=dict)
    needs_recovery: List[int] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def label(self) -> str:
        """``running``, ``finished``, ``failed``, ``killed``..., or ``killed (needs recover)`` for a run
        whose process died before ``end_run`` and that ``prov4ml recover`` has not completed yet."""
        if self.needs_recovery and self.status == "running":
            return "killed (needs recover)"
        return self.status

    @property
    def readable(self) -> bool:
        return self.error is None


def _read_head(head: RunHead, docs: Dict[int, Path]) -> RunHead:
    statuses, starts, ends = [], [], []
    for rank, path in docs.items():  # lowest rank first: its parameter values and last values win
        doc = _load(path)
        run = next((attrs for types, attrs in _records(doc, "activity") if "mls:Run" in types), None)
        if run is None:
            raise ValueError(f"{path.name} has no mls:Run activity: not a prov4ml run document")
        statuses.append(str(run.get("provml:status") or "running"))
        starts.append(_time(run.get("prov:startTime")))
        ends.append(_time(run.get("prov:endTime")))
        if head.run_id is None:
            head.run_id, head.experiment_name = run.get("provml:run_id"), run.get("provml:experiment")
        repeats: Dict[str, Tuple[int, Any]] = {}
        for types, attrs in _records(doc, "entity"):
            if "mls:HyperParameterSetting" in types:
                m = _REPEAT.match(str(attrs.get("prov:label", "")))
                key, n = (m.group(1), int(m.group(2))) if m else (str(attrs.get("prov:label")), 1)
                if n >= repeats.get(key, (0, None))[0]:
                    repeats[key] = (n, attrs.get("prov:value"))
            elif "provml:Metric" in types:
                row = {f: attrs.get(f"provml:{f}") for f in SERIES_FIELDS}
                row["rank"] = rank
                head.series.append(row)
                head.last.setdefault(f"{row['name']}/{row['context']}", row["last"])
        for key, (_n, value) in repeats.items():
            head.params.setdefault(key, value)
    if head.run_id is None:
        m = _RUN_DIR.match(head.run_dir.name)
        head.run_id = int(m.group(1)) if m else head.run_dir.name
    head.ranks = list(docs)
    head.series.sort(key=lambda r: (str(r["name"]), str(r["context"]), r["rank"]))
    head.status = max(statuses, key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 1)
    dated = [s for s in starts if isinstance(s, datetime)]
    head.start = min(dated) if dated else None
    head.end = max(ends) if ends and all(isinstance(e, datetime) for e in ends) else None
    return head


def duration_s(head: RunHead, now: Optional[datetime] = None) -> Optional[float]:
    """The run's duration; for a run still going on, the time since it started."""
    if head.start is None:
        return None
    if head.end is not None:
        return (head.end - head.start).total_seconds()
    if head.label != "running":
        return None
    return ((now or datetime.now(timezone.utc)) - head.start).total_seconds()


def configuration(params: Dict[str, Any]) -> Tuple[Tuple[str, str], ...]:
    """The configuration of a run: its parameters less the sweep's bookkeeping and ``seed``."""
    return tuple(sorted(
        (k, json.dumps(v, sort_keys=True, default=str)) for k, v in params.items()
        if not any(k == x or (x.endswith(".") and k.startswith(x)) for x in SWEEP_EXCLUDED)
    ))


def sweep_groups(runs: Sequence[RunHead]) -> List[Dict[str, Any]]:
    """Runs sharing a configuration, with mean ± sample std of each series' last value.

    One dict per configuration held by two or more readable runs: ``params``,
    ``runs`` (keys), and ``metrics``: ``"name/context"`` -> ``{"n", "mean",
    "std"}`` over the runs' lowest rank (std is None for one value).
    """
    groups: Dict[Tuple, List[RunHead]] = {}
    for run in runs:
        if run.readable:
            groups.setdefault(configuration(run.params), []).append(run)
    out = []
    for config, members in groups.items():
        if len(members) < 2:
            continue
        values: Dict[str, List[float]] = {}
        for run in members:
            for name, last in run.last.items():
                if isinstance(last, (int, float)) and not isinstance(last, bool) and math.isfinite(last):
                    values.setdefault(name, []).append(float(last))
        metrics = {
            name: {"n": len(v), "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None}
            for name, v in sorted(values.items())
        }
        out.append({"params": {k: json.loads(v) for k, v in config}, "runs": [r.key for r in members], "metrics": metrics})
    return out


def metric_files(run_dir: Path) -> List[Dict[str, Any]]:
    """Every metric series of every rank of ``run_dir``: ``key`` (``name/context/rank``), ``name``,
    ``context``, ``rank``, ``location`` (relative to ``run_dir``). A document being replaced is skipped."""
    out = []
    for rank, path in _documents(run_dir).items():
        try:
            doc = _load(path)
        except (OSError, ValueError):
            continue  # cut short: the next poll reads it
        for types, attrs in _records(doc, "entity"):
            if "provml:Metric" in types and attrs.get("prov:location"):
                name, context = attrs.get("provml:name"), attrs.get("provml:context")
                out.append({"key": f"{name}/{context}/{rank}", "name": name, "context": context, "rank": rank,
                            "location": json_location(attrs["prov:location"])})
    return out


def environment(head: RunHead) -> Dict[str, Any]:
    """The environment and source-code attributes (git, host, Python...) of the run's lowest rank."""
    try:
        doc = _load(head.run_dir / f"prov_rank{min(head.ranks)}.json")
    except (OSError, ValueError):
        return {}
    out: Dict[str, Any] = {}
    for types, attrs in _records(doc, "entity"):
        if not types & _ENVIRONMENT_TYPES:
            continue
        plan = "prov:Plan" in types
        for key, value in attrs.items():
            label = key.split(":", 1)[-1]
            if plan:
                label = {"label": "source", "location": "source_location"}.get(label, label)
            out.setdefault(label, value)
    return out


class Store:
    """The experiments and runs under ``root`` (a provenance save dir, an experiment dir or a run dir)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidValueError(f"{root}: no such directory; give the provenance_save_dir of your runs (e.g. prov)")
        self._heads: Dict[Path, Tuple[Tuple, RunHead]] = {}
        self._full: Dict[Path, Tuple[Tuple, analysis.RunData]] = {}
        self._lock = threading.Lock()

    # -- finding runs
    def run_dirs(self) -> List[Path]:
        """Directories holding a ``prov_rank<k>.json``: the root, its children and grandchildren."""
        found, level = [], [self.root]
        for _depth in range(3):
            deeper = []
            for d in level:
                try:
                    children = sorted(os.scandir(d), key=lambda e: e.name)
                except OSError:
                    continue
                if any(_DOC.match(e.name) for e in children):
                    found.append(Path(d))
                else:
                    deeper += [Path(e.path) for e in children if e.is_dir() and not e.name.startswith(".")]
            level = deeper
        return found

    def key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path != self.root else "."

    def resolve(self, key: str) -> Path:
        """The directory of a run or experiment ``key``; refuses anything outside the root."""
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise InvalidValueError(f"{key!r} is outside {self.root}")
        return path

    # -- reading
    def head(self, key: str) -> RunHead:
        run_dir = self.resolve(key)
        if not _documents(run_dir):
            raise InvalidValueError(f"no run {key!r} under {self.root}")
        return self._head(run_dir)

    def runs(self) -> List[RunHead]:
        return [self._head(d) for d in self.run_dirs()]

    def experiments(self) -> Dict[str, List[RunHead]]:
        """Experiment key (the runs' parent directory) -> its runs, in run-id order."""
        out: Dict[str, List[RunHead]] = {}
        for run in self.runs():
            out.setdefault(run.experiment, []).append(run)
        for runs in out.values():
            runs.sort(key=lambda r: (0, r.run_id, r.key) if isinstance(r.run_id, int) else (1, 0, r.key))
        return dict(sorted(out.items()))

    def experiment(self, key: str) -> List[RunHead]:
        runs = self.experiments().get(key)
        if runs is None:
            raise InvalidValueError(f"no experiment {key!r} under {self.root}")
        return runs

    def full(self, head: RunHead) -> analysis.RunData:
        """The run in full (:func:`prov4ml.analysis.load_run`), read again when a document changed."""
        sig = _signature(head.run_dir)
        with self._lock:
            cached = self._full.get(head.run_dir)
        if cached is not None and cached[0] == sig:
            return cached[1]
        data = analysis.load_run(head.run_dir)
        with self._lock:
            self._full[head.run_dir] = (sig, data)
        return data

    def _head(self, run_dir: Path) -> RunHead:
        sig = _signature(run_dir)
        with self._lock:
            cached = self._heads.get(run_dir)
        if cached is not None and cached[0] == sig:
            head = cached[1]
        else:
            parent = run_dir.parent if run_dir != self.root else run_dir
            head = RunHead(self.key(run_dir), self.key(parent) if parent != run_dir else ".", run_dir)
            try:
                _read_head(head, _documents(run_dir))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # cut short or not ours
                head = RunHead(head.key, head.experiment, run_dir, error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._heads[run_dir] = (sig, head)
        if head.status == "running":
            # a kill leaves the document as it was: the journal says whether the process is gone
            try:
                head.needs_recovery = needs_recovery(run_dir)
            except (OSError, Prov4MLError):
                head.needs_recovery = []
        return head


def _signature(run_dir: Path) -> Tuple:
    out = []
    for name, path in _documents(run_dir).items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((name, st.st_mtime_ns, st.st_size))
    return tuple(out)
