"""The runs under the UI's directory, read with :mod:`prov4ml.runs` and kept while unchanged.

Lists and comparisons need only what each ``prov_rank<k>.json`` says (status,
times, parameters, each series' summary), so they read the documents alone
(:func:`prov4ml.runs.read_run` with ``details=False``), never the metric
files: a running run's document is rewritten every few seconds, and reading
its points again each time would cost as much as the run's whole history. A
run's page reads the run in full (``details=True``). Both are read again only
when a document changed. Neither pandas nor matplotlib is needed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .. import runs
from .._fs import is_url
from ..exceptions import InvalidValueError, Prov4MLError
from ..runs.document import local_attrs
from ..runs.fields import conditions
from ..runs.index import Index
from ..storage.remote import Remote

__all__ = ["Store", "RunHead", "Section", "configuration", "sweep_groups", "metric_files", "environment", "duration_s",
           "native", "SWEEP_EXCLUDED", "STATUS_ORDER", "SERIES_FIELDS"]

# Parameters that tell repetitions of one configuration apart rather than configurations.
SWEEP_EXCLUDED = ("sweep.", "seed")
# The status of a run of several ranks is its ranks' most severe.
STATUS_ORDER = tuple(sorted(runs.SEVERITY, key=runs.SEVERITY.__getitem__))
SERIES_FIELDS = ("name", "context", "rank", "count", "min", "max", "last", "mean", "first_step", "last_step", "unit")


def native(value: Any) -> Any:
    """A NumPy scalar as a Python value; pandas' NA and NaT as None."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str) else value


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
    record: Optional[runs.RunRecord] = field(default=None, repr=False)  # what the documents say (no details)

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


@dataclass
class Section:
    """An experiment in the runs list: ``counts`` of its runs by status, how many of them match the
    filter (``matching``: all of them without one), and the newest of those (``runs``, in run-id order)."""

    key: str
    counts: Dict[str, int]
    matching: int
    runs: List[RunHead]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _read_head(head: RunHead, record: runs.RunRecord) -> RunHead:
    head.record = record
    head.run_id, head.experiment_name = record.run_id, record.experiment
    head.params = dict(record.params)
    for s in sorted(record.series, key=lambda s: s.rank):  # lowest rank first: its last values win
        row = {f: getattr(s, f) for f in SERIES_FIELDS}
        head.series.append(row)
        head.last.setdefault(f"{s.name}/{s.context}", s.last)
    head.ranks = list(record.ranks)
    head.series.sort(key=lambda r: (str(r["name"]), str(r["context"]), r["rank"]))
    head.status = record.recorded_status or record.status
    head.start, head.end = record.start, record.end
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
        params = {k: v for k, v in members[0].params.items() if k in dict(config)}
        out.append({"params": dict(sorted(params.items())), "runs": [r.key for r in members], "metrics": metrics})
    return out


def metric_files(record: runs.RunRecord) -> List[Dict[str, Any]]:
    """Every metric series of every rank of a run: ``key`` (``name/context/rank``), ``name``,
    ``context``, ``rank``, ``location`` (relative to the run directory)."""
    return [{"key": f"{s.name}/{s.context}/{s.rank}", "name": s.name, "context": s.context, "rank": s.rank,
             "location": s.location} for s in record.series if s.location]


def environment(record: runs.RunRecord) -> Dict[str, Any]:
    """The environment and source-code attributes (git, host, Python...) of the run's lowest rank."""
    if not record.documents:
        return {}
    doc = record.documents[min(record.documents)]
    out: Dict[str, Any] = dict(local_attrs(doc.environment, drop=("prov:type",)))
    for label, value in local_attrs(doc.source, drop=("prov:type",)).items():
        out.setdefault({"label": "source", "location": "source_location"}.get(label, label), value)
    return out


class Store:
    """The experiments and runs under ``root`` (a provenance save dir, an experiment dir or a run dir)."""

    #: seconds between two copies of a URL's changes into its staging directory
    PULL_EVERY = 2.0

    def __init__(self, root: "Path | str") -> None:
        #: the runs' URL (``s3://...``), read through its staging copy, which the runs list keeps up to date;
        #: artifacts are left in the bucket until a page needs one (:meth:`file`)
        self._remote = Remote(str(root)) if is_url(str(root)) else None
        self.url = self._remote.url if self._remote else None
        self._pulled = time.monotonic()
        self.root = (self._remote.pull(skip=_artifact, empty_ok=True) if self._remote else Path(root)).resolve()
        if not self.root.is_dir():
            raise InvalidValueError(f"{root}: no such directory; give the provenance_save_dir of your runs (e.g. prov)")
        self._heads: Dict[Path, Tuple[Tuple, RunHead]] = {}
        self._full: Dict[Path, Tuple[Tuple, runs.RunRecord]] = {}
        self._lock = threading.Lock()
        self._index: Optional[Index] = None

    # -- finding runs
    def run_dirs(self) -> List[Path]:
        """Directories holding a ``prov_rank<k>.json``: the root, its children and grandchildren."""
        return runs.walk(self.root)

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
        if not runs.rank_files(run_dir):
            raise InvalidValueError(f"no run {key!r} under {self.root}")
        return self._head(run_dir)

    def runs(self) -> List[RunHead]:
        """Every run, from the index (:mod:`prov4ml.runs.index`), brought up to date first."""
        with self._lock:
            rows, _total = self._indexed().select(series=True)
        return [self._listed(record, figures) for record, figures in rows]

    def overview(self, newest: int, where: str = "") -> List[Section]:
        """Each experiment's :class:`Section`: its ``newest`` runs (without series) of those matching ``where``.

        ``where`` is ``prov4ml ls --where``'s grammar, conditions joined by ``and``
        (:func:`prov4ml.runs.fields.conditions`), applied by the index to every
        run, not only to those shown; :class:`InvalidValueError` says what is wrong with it.
        """
        wanted = conditions([where], "filter") if where.strip() else []  # a typo costs nothing: before any reading
        with self._lock:
            index = self._indexed()
            if wanted:
                fields = index.fields()
                for condition in wanted:
                    condition.bind(fields)
            out = []
            for folder, counts in sorted(index.counts().items()):
                rows, matching = index.select(wanted, folder=folder, limit=newest, last=True)
                out.append(Section(folder or ".", counts, matching, [self._listed(r, f) for r, f in rows]))
        return out

    def _indexed(self) -> Index:
        if self._remote and time.monotonic() - self._pulled > self.PULL_EVERY:  # other hosts' runs, as they go
            self._remote.pull(skip=_artifact)
            self._pulled = time.monotonic()
        if self._index is None:
            self._index = Index(self.root)
        self._index.refresh()
        return self._index

    def _listed(self, record: runs.RunRecord, figures: Dict[str, Dict[str, Any]]) -> RunHead:
        run_dir = Path(record.run_dir)
        key = self.key(run_dir)
        head = RunHead(key, key.rpartition("/")[0] or ".", run_dir)
        if record.status == "unreadable":
            head.error = record.error_message
            return head
        _read_head(head, record)
        head.last = {k: f["last"] for k, f in figures.items()}  # the lowest rank's, as the series say
        head.needs_recovery = list(record.needs_recovery)
        return head

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

    def file(self, head: RunHead, location: str) -> Optional[Path]:
        """The local path of a file of run ``head`` (``location`` relative to the run directory), downloaded
        from the bucket first for runs on object storage; None when the run has no such file."""
        path = (head.run_dir / location).resolve()
        if head.run_dir not in path.parents:
            raise InvalidValueError(f"{location!r} is outside run {head.key!r}")
        if not path.is_file() and self._remote is not None:
            self._remote.fetch(path)
        return path if path.is_file() else None

    def read_head(self, head: RunHead, location: str, size: int) -> bytes:
        """The first ``size`` bytes of a file of run ``head`` (for a preview): from the local copy where
        there is one, else from the bucket by a ranged read, never the whole file; FileNotFoundError
        when the run has no such file."""
        path = (head.run_dir / location).resolve()
        if head.run_dir not in path.parents:
            raise InvalidValueError(f"{location!r} is outside run {head.key!r}")
        if path.is_file() or self._remote is None:
            with open(path, "rb") as fh:
                return fh.read(size)
        return self._remote.read_head(path, size)

    @contextlib.contextmanager
    def index(self) -> Iterator[Index]:
        """The index, brought up to date and held for the caller's queries (lineage asks several)."""
        with self._lock:
            yield self._indexed()

    def full(self, head: RunHead) -> runs.RunRecord:
        """The run in full (:func:`prov4ml.runs.read_run`), read again when a document changed."""
        sig = _signature(head.run_dir)
        with self._lock:
            cached = self._full.get(head.run_dir)
        if cached is not None and cached[0] == sig:
            return cached[1]
        data = runs.read_run(head.run_dir, details=True)
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
                _read_head(head, runs.read_run(run_dir, details=False))
            except (Prov4MLError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # cut short or not ours
                head = RunHead(head.key, head.experiment, run_dir, error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._heads[run_dir] = (sig, head)
        if head.status == "running":
            # a kill leaves the document as it was: the journal says whether the process is gone
            head.needs_recovery = runs.needs_recovery(run_dir, quiet=True)
        return head


def _artifact(key: str) -> bool:
    """Whether a key of the bucket is a run's artifact (copied to this host only when a page shows it)."""
    return "/artifacts/" in f"/{key}"


def _signature(run_dir: Path) -> Tuple:
    out = []
    for name, path in runs.rank_files(run_dir).items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((name, st.st_mtime_ns, st.st_size))
    return tuple(out)
