"""The runs under the UI's directory, read with :mod:`prov4ml.analysis` and kept while unchanged.

A run is read again only when one of its ``prov_rank<k>.json`` changed (the
library rewrites them at every refresh), so the runs list of a large
directory costs one ``stat`` per document once it has been read.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import analysis
from ..exceptions import InvalidValueError, Prov4MLError
from ..recovery import needs_recovery

__all__ = ["Store", "RunEntry", "status_label", "configuration", "sweep_groups", "metric_files", "SWEEP_EXCLUDED"]

_DOC_PREFIX, _DOC_SUFFIX = "prov_rank", ".json"
# Parameters that tell repetitions of one configuration apart rather than configurations.
SWEEP_EXCLUDED = ("sweep.", "seed")
_ENVIRONMENT_TYPES = ("provml:Environment", "prov:Plan")
RELOAD_RUNNING_S = 2.0  # a running run's document changes at every refresh: read it again at most this often


@dataclass
class RunEntry:
    """A run of the directory: ``key`` is its path relative to the root, as the URLs give it."""

    key: str
    experiment: str
    run_dir: Path
    data: Optional[analysis.RunData]
    error: Optional[str] = None  # why the run could not be read (shown, never raised)

    @property
    def status(self) -> str:
        return status_label(self.data.info) if self.data is not None else "unreadable"


def status_label(info: Dict[str, Any]) -> str:
    """``running``, ``finished``, ``failed``, ``killed``..., or ``killed (needs recover)`` for a run
    whose process died before ``end_run`` and that ``prov4ml recover`` has not completed yet."""
    status = str(info.get("status") or "running")
    if info.get("needs_recovery") and status == "running":
        return "killed (needs recover)"
    return status


def configuration(params: Dict[str, Any]) -> Tuple[Tuple[str, str], ...]:
    """The configuration of a run: its parameters less the sweep's bookkeeping and ``seed``."""
    return tuple(sorted(
        (k, json.dumps(v, sort_keys=True, default=str)) for k, v in params.items()
        if not any(k == x or (x.endswith(".") and k.startswith(x)) for x in SWEEP_EXCLUDED)
    ))


def sweep_groups(runs: Sequence[RunEntry]) -> List[Dict[str, Any]]:
    """Runs sharing a configuration, with mean ± sample std of each series' last value.

    One dict per configuration held by two or more readable runs: ``params``,
    ``runs`` (keys), and ``metrics``: ``"name/context"`` -> ``{"n", "mean",
    "std"}`` over the runs' lowest rank (std is None for one value).
    """
    groups: Dict[Tuple, List[RunEntry]] = {}
    for run in runs:
        if run.data is not None:
            groups.setdefault(configuration(run.data.params), []).append(run)
    out = []
    for config, members in groups.items():
        if len(members) < 2:
            continue
        values: Dict[str, List[float]] = {}
        for run in members:
            for name, last in last_values(run.data).items():
                if isinstance(last, (int, float)) and math.isfinite(last):
                    values.setdefault(name, []).append(float(last))
        metrics = {
            name: {"n": len(v), "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None}
            for name, v in sorted(values.items())
        }
        out.append({"params": {k: json.loads(v) for k, v in config}, "runs": [r.key for r in members], "metrics": metrics})
    return out


def last_values(run: analysis.RunData) -> Dict[str, Any]:
    """``"name/context"`` -> last value of the series' lowest rank, from the run's summary."""
    out: Dict[str, Any] = {}
    summary = run.summary
    if not len(summary):
        return out
    for name, context, last in summary.sort_values("rank", kind="stable")[["name", "context", "last"]].itertuples(index=False):
        out.setdefault(f"{name}/{context}", _native(last))
    return out


def _native(value: Any) -> Any:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str) else value


def duration_s(info: Dict[str, Any], now: Optional[datetime] = None) -> Optional[float]:
    """The run's duration; for a run still going on, the time since it started."""
    if info.get("duration_s") is not None:
        return float(info["duration_s"])
    start = info.get("start_time")
    if start is None or status_label(info) != "running":
        return None
    return ((now or datetime.now(timezone.utc)) - start).total_seconds()


def _entities(path: Path) -> List[Tuple[set, Dict[str, Any]]]:
    """(prov:types, attributes with plain values) of each entity of the PROV-JSON ``path``; none if unreadable."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # being replaced right now, or cut short: the next poll reads it
        return []
    out = []
    for entity in (doc.get("entity") or {}).values():
        types = entity.get("prov:type", [])
        types = {t.get("$") if isinstance(t, dict) else t for t in (types if isinstance(types, list) else [types])}
        attrs = {k: v.get("$") if isinstance(v, dict) else v for k, v in entity.items() if k != "prov:type"}
        out.append((types, attrs))
    return out


def metric_files(run_dir: Path) -> List[Dict[str, Any]]:
    """Every metric series of every rank of ``run_dir``: ``key, name, context, rank, location``.

    Read from the documents directly (not :func:`prov4ml.analysis.load_run`, which
    reads every point too): the live plots ask for it every second.
    """
    out = []
    for path in sorted(run_dir.glob(f"{_DOC_PREFIX}*{_DOC_SUFFIX}")):
        rank = path.name[len(_DOC_PREFIX):-len(_DOC_SUFFIX)]
        if not rank.isdigit():
            continue
        for types, attrs in _entities(path):
            if "provml:Metric" in types and attrs.get("prov:location"):
                name, context = attrs.get("provml:name"), attrs.get("provml:context")
                out.append({"key": f"{name}/{context}/{rank}", "name": name, "context": context, "rank": int(rank),
                            "location": attrs["prov:location"]})
    return out


def environment(run: analysis.RunData) -> Dict[str, Any]:
    """The environment and source-code attributes of the run's lowest rank, read from its PROV-JSON."""
    out: Dict[str, Any] = {}
    for types, attrs in _entities(run.prov_files[min(run.prov_files)]):
        if not types & set(_ENVIRONMENT_TYPES):
            continue
        for key, value in attrs.items():
            label = key.split(":", 1)[-1]
            if "prov:Plan" in types:
                label = {"label": "source", "location": "source_location"}.get(label, label)
            out.setdefault(label, value)
    return out


class Store:
    """The experiments and runs under ``root`` (a provenance save dir, an experiment dir or a run dir)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidValueError(f"{root}: no such directory; give the provenance_save_dir of your runs (e.g. prov)")
        self._cache: Dict[Path, Tuple[Tuple, float, RunEntry]] = {}
        self._lock = threading.Lock()

    # -- finding runs
    def run_dirs(self) -> List[Path]:
        """Directories holding a ``prov_rank<k>.json``: the root, its children and grandchildren."""
        found = []
        level = [self.root]
        for _depth in range(3):
            nxt = []
            for d in level:
                try:
                    children = sorted(os.scandir(d), key=lambda e: e.name)
                except OSError:
                    continue
                if any(e.name.startswith(_DOC_PREFIX) and e.name.endswith(_DOC_SUFFIX) for e in children):
                    found.append(Path(d))
                    continue
                nxt += [Path(e.path) for e in children if e.is_dir() and not e.name.startswith(".")]
            level = nxt
        return found

    def key(self, run_dir: Path) -> str:
        return run_dir.relative_to(self.root).as_posix() if run_dir != self.root else "."

    def resolve(self, key: str) -> Path:
        """The directory of a run or experiment ``key``; refuses anything outside the root."""
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise InvalidValueError(f"{key!r} is outside {self.root}")
        return path

    # -- reading
    def run(self, key: str) -> RunEntry:
        run_dir = self.resolve(key)
        if not any(run_dir.glob(f"{_DOC_PREFIX}*{_DOC_SUFFIX}")):
            raise InvalidValueError(f"no run {key!r} under {self.root}")
        return self._entry(run_dir)

    def runs(self) -> List[RunEntry]:
        return [self._entry(d) for d in self.run_dirs()]

    def experiments(self) -> Dict[str, List[RunEntry]]:
        """Experiment key (the runs' parent directory) -> its runs, in run-id order."""
        out: Dict[str, List[RunEntry]] = {}
        for run in self.runs():
            out.setdefault(run.experiment, []).append(run)
        for runs in out.values():
            runs.sort(key=_run_order)
        return dict(sorted(out.items()))

    def experiment(self, key: str) -> List[RunEntry]:
        runs = self.experiments().get(key)
        if runs is None:
            raise InvalidValueError(f"no experiment {key!r} under {self.root}")
        return runs

    def _entry(self, run_dir: Path) -> RunEntry:
        sig = _signature(run_dir)
        with self._lock:
            cached = self._cache.get(run_dir)
        if cached is not None and (cached[0] == sig or (
                _running(cached[2]) and time.monotonic() - cached[1] < RELOAD_RUNNING_S)):
            entry = cached[2]
            if _running(entry):
                # a kill leaves the document as it was: ask the journal whether the process is gone
                entry.data.info["needs_recovery"] = needs_recovery(run_dir)
            return entry
        parent = run_dir.parent if run_dir != self.root else run_dir
        experiment = self.key(parent) if parent != run_dir else "."
        try:
            entry = RunEntry(self.key(run_dir), experiment, run_dir, analysis.load_run(run_dir))
        except (Prov4MLError, OSError, ValueError) as exc:  # a run half-written or corrupt: shown, never fatal
            entry = RunEntry(self.key(run_dir), experiment, run_dir, None, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._cache[run_dir] = (sig, time.monotonic(), entry)
        return entry


def _running(entry: RunEntry) -> bool:
    return entry.data is not None and entry.data.info.get("status") == "running"


def _signature(run_dir: Path) -> Tuple:
    out = []
    for name in sorted(os.listdir(run_dir)):
        if name.startswith(_DOC_PREFIX) and name.endswith(_DOC_SUFFIX):
            try:
                st = os.stat(run_dir / name)
            except OSError:
                continue
            out.append((name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _run_order(run: RunEntry) -> Tuple:
    rid = run.data.run_id if run.data is not None else None
    return (0, rid, run.key) if isinstance(rid, int) else (1, 0, run.key)

