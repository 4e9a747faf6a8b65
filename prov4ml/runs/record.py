"""A run (every rank) as one record: status, times, parameters, series summaries, artifacts, environment.

:func:`read_run` reads the ranks' documents (:mod:`.document`) and merges
them: the lowest rank's parameter values win, the status is the ranks' most
severe (:mod:`.status`), the run starts with its first rank and ends with its
last. :meth:`RunRecord.points` reads the metric files (:mod:`.series`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import status as _status
from .document import RankDocument, local_attrs, read_rank
from .find import PathLike, checked_rank_files, run_id_of
from .series import Points, Series, read_series
from ..provenance.summary import HIGHER_IS_BETTER, higher_is_better

__all__ = ["RunRecord", "read_run", "merge_ranks", "metric_figures", "higher_is_better", "HIGHER_IS_BETTER", "KEY_PACKAGES"]

# Packages whose version the environment names (read from the run's environment/packages.txt).
KEY_PACKAGES = ("torch", "lightning", "pytorch-lightning", "numpy")
_PACKAGES_FILE = "environment/packages.txt"


@dataclass
class RunRecord:
    """One run (every rank), read from its documents.

    ``status`` is the most severe of the ranks' (``finished`` < ``running`` <
    ``interrupted``/``terminated`` < ``killed`` < ``failed``); a rank left
    ``running`` by a process that is gone makes it ``killed`` and lists the
    rank in ``needs_recovery`` (``recorded_status``: what the documents say).
    ``documents`` holds each rank's :class:`~prov4ml.runs.document.RankDocument`.
    """

    run_dir: Path
    experiment: Optional[str]
    run_id: Any
    status: str
    ranks: List[int]
    start: Optional[datetime] = None
    end: Optional[datetime] = None
    params: Dict[str, Any] = field(default_factory=dict)
    series: List[Series] = field(default_factory=list)
    final_metrics: Dict[str, Any] = field(default_factory=dict)
    final_folds: Dict[str, str] = field(default_factory=dict)
    needs_recovery: List[int] = field(default_factory=list)
    error_type: Optional[str] = None
    error_message: Optional[str] = None
    command: Optional[str] = None
    user: Optional[str] = None
    host: Optional[str] = None
    environment: Dict[str, Any] = field(default_factory=dict)
    source: Dict[str, Any] = field(default_factory=dict)
    artifacts: List[Dict[str, Any]] = field(default_factory=list)
    datasets: List[Dict[str, Any]] = field(default_factory=list)
    notes: Dict[str, Any] = field(default_factory=dict)
    recorded_status: Optional[str] = None
    documents: Dict[int, RankDocument] = field(default_factory=dict, repr=False)

    @property
    def duration_s(self) -> Optional[float]:
        """Seconds from start to end; for a run still running, to now."""
        if self.start is None:
            return None
        end = self.end
        if end is None and self.status == "running":
            end = datetime.now(timezone.utc)
        return None if end is None else (end - self.start).total_seconds()

    @property
    def label(self) -> str:
        """``experiment/run_<id>``, as RUN arguments take it."""
        run = f"run_{self.run_id}" if isinstance(self.run_id, int) else self.run_dir.name
        return f"{self.experiment or self.run_dir.parent.name}/{run}"

    @property
    def shown_status(self) -> str:
        return _status.KILLED if self.needs_recovery else self.status

    @property
    def prov_files(self) -> Dict[int, Path]:
        if not self.documents:
            return {rank: self.run_dir / f"prov_rank{rank}.json" for rank in self.ranks}
        return {rank: doc.path for rank, doc in self.documents.items()}

    def points(self, step: Optional[Callable[[str], None]] = None) -> List[Points]:
        """Every series' points, rank by rank in document order; ``step(what)`` after each file."""
        out = []
        for s in self.series:
            out.append(read_series(self.run_dir, s))
            if step is not None:
                step(f"{s.name} ({s.context})")
        return out

    def info(self) -> Dict[str, Any]:
        """The run's fields as :attr:`prov4ml.analysis.RunData.info` holds them (status as recorded)."""
        info: Dict[str, Any] = dict.fromkeys(_INFO_ORDER)
        if self.documents:
            info.update((k, v) for k, v in rank_info(self.documents[self.ranks[0]]).items() if k != "rank")
        else:  # read from an index: the record's own fields
            info.update(experiment=self.experiment, command=self.command, user=self.user, host=self.host,
                        final_metrics=dict(self.final_metrics), final_folds=dict(self.final_folds), **self.notes)
        info["run_id"] = self.run_id
        info["ranks"] = list(self.ranks)
        info["needs_recovery"] = list(self.needs_recovery)
        info["status"] = self.recorded_status
        info["start_time"], info["end_time"] = self.start, self.end
        if self.start is not None and self.end is not None:
            info["duration_s"] = (self.end - self.start).total_seconds()
        info["error_type"], info["error_message"] = self.error_type, self.error_message
        return info

    def rank_info(self) -> Dict[int, Dict[str, Any]]:
        return {rank: rank_info(doc) for rank, doc in self.documents.items()}

    def rank_environment(self) -> Dict[int, Dict[str, Any]]:
        """What each rank recorded of its environment, with the versions of :data:`KEY_PACKAGES`."""
        return {rank: _environment(doc, self.run_dir) for rank, doc in self.documents.items()}


_INFO_ORDER = (
    "run_id", "experiment", "status", "start_time", "end_time", "duration_s", "ranks", "user", "host",
    "command", "error_type", "error_message", "final_metrics", "final_folds", "recorded_dir", "needs_recovery",
)


def rank_info(doc: RankDocument) -> Dict[str, Any]:
    """One rank's fields: the run activity's, its times as ``start_time``/``end_time``, user and host, notes."""
    info = {k: v for k, v in doc.info.items() if k not in ("start", "end", "notes")}
    info["start_time"], info["end_time"] = doc.info["start"], doc.info["end"]
    info.update(doc.info["notes"])
    info["final_metrics"] = dict(doc.info["final_metrics"])
    info["final_folds"] = dict(doc.info["final_folds"])
    info.update(doc.agents)
    return info


def _environment(doc: RankDocument, run_dir: Path) -> Dict[str, Any]:
    env = {k[len("provml:"):]: v for k, v in doc.environment.items() if k.startswith("provml:")}
    if doc.source:  # the source code: its git facts, and where it is
        env.update((k, v) for k, v in local_attrs(doc.source).items() if k.startswith("git_"))
        env["source"] = doc.source.get("prov:location")
    env.setdefault("host", doc.agents.get("host"))  # the host is an agent of the run (its label: the host name)
    out = {k: env.get(k) for k in ("python", "executable")}
    listing = next((a["location"] for a in doc.artifacts if a["name"] == _PACKAGES_FILE and a["location"]), None)
    if listing:
        try:
            text = (run_dir / listing).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""  # copied without its artifacts: the versions are simply not known
        versions = dict(line.partition("==")[::2] for line in text.splitlines() if "==" in line)
        out.update((name, versions[name]) for name in KEY_PACKAGES if name in versions)
    out.update((k, v) for k, v in env.items() if k not in out)
    out["command"] = doc.info.get("command")
    return {k: v for k, v in out.items() if v is not None}


def read_run(run_dir: PathLike, details: bool = True) -> RunRecord:
    """The run in ``run_dir`` from its ranks' PROV-JSON; :class:`ProvFileError` names a bad document.

    ``details=False`` reads only the status, times, parameters and metric series
    (what ``ls`` and ``watch`` show): artifacts, datasets, environment, user
    and host stay empty.
    """
    run_dir = Path(run_dir)
    files = checked_rank_files(run_dir)
    return merge_ranks(run_dir, {rank: read_rank(path, rank, details) for rank, path in files.items()})


def merge_ranks(run_dir: Path, docs: Dict[int, RankDocument], journal: bool = True) -> RunRecord:
    """One run from its ranks (lowest rank first); ``journal``: a ``running`` rank's journal says if it was killed."""
    ranks = list(docs.values())
    first = ranks[0]
    info = first.info
    run_id = info.get("run_id")
    if run_id is None:
        run_id = run_id_of(run_dir)
    params: Dict[str, Any] = {}
    for r in ranks:  # the lowest rank's value wins; one only another rank logged is added
        for key, value in r.params.items():
            params.setdefault(key, value)
    statuses = [r.info.get("status") or "running" for r in ranks]
    recorded = _status.merge(statuses)
    status = recorded
    needs: List[int] = []
    if "running" in statuses and journal:
        needs = _status.needs_recovery(run_dir)
        if needs and _status.SEVERITY.get(status, 1) < _status.SEVERITY["killed"]:
            status = "killed"
    starts = [r.info["start"] for r in ranks if r.info.get("start") is not None]
    ends = [r.info.get("end") for r in ranks]
    failed = next((r.info for r in ranks if r.info.get("error_type")), {})
    plan = first.source
    source = {}
    if plan:
        source = {"source_file": plan.get("prov:location"),
                  **{k: v for k, v in local_attrs(plan).items() if k != "location"}}
    return RunRecord(
        run_dir=run_dir,
        experiment=info.get("experiment"),
        run_id=run_id,
        status=status,
        ranks=list(docs),
        start=min(starts) if starts else None,
        end=max(ends) if ends and all(e is not None for e in ends) else None,  # type: ignore[type-var]
        params=params,
        series=[s for r in ranks for s in r.series],
        final_metrics=dict(info.get("final_metrics", {})),
        final_folds={k: v for k, v in info.get("final_folds", {}).items() if v is not None},
        needs_recovery=needs,
        error_type=failed.get("error_type"),
        error_message=failed.get("error_message"),
        command=info.get("command"),
        user=first.agents.get("user"),
        host=first.agents.get("host"),
        environment=local_attrs(first.environment),
        source=source,
        artifacts=[{k: v for k, v in a.items() if k != "created"} for r in ranks for a in r.artifacts],
        datasets=[d for r in ranks for d in r.datasets],
        notes=dict(info.get("notes", {})),
        recorded_status=recorded,
        documents=docs,
    )


# ---------------------------------------------------------------- metric figures
def metric_figures(run: RunRecord) -> Dict[str, Dict[str, Any]]:
    """``{"name/context": {count, last, best, min, max, mean, last_step, source}}`` of ``run``.

    Over several ranks ``min``, ``max`` (and so ``best``) are over all ranks;
    ``last``, ``count``, ``mean`` and ``last_step`` are the lowest rank's (as
    :func:`prov4ml.analysis.compare_runs` reads them).
    """
    grouped: Dict[str, List[Series]] = {}
    for s in sorted(run.series, key=lambda s: s.rank):
        grouped.setdefault(s.key, []).append(s)
    out: Dict[str, Dict[str, Any]] = {}
    for key, group in sorted(grouped.items()):
        lead = group[0]
        mins = [s.min for s in group if isinstance(s.min, (int, float))]
        maxs = [s.max for s in group if isinstance(s.max, (int, float))]
        low, high = (min(mins) if mins else None), (max(maxs) if maxs else None)
        best = high if higher_is_better(lead.name, run.final_folds.get(lead.name)) else low
        out[key] = {"count": lead.count, "last": lead.last, "best": best, "min": low, "max": high,
                    "mean": lead.mean, "last_step": lead.last_step, "source": lead.source}
    return out
