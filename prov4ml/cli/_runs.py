"""Runs as the console command sees them: read straight from each rank's PROV-JSON.

``prov4ml ls`` lists a thousand runs in well under a second because it reads
only the ``prov_rank<k>.json`` of each rank, as plain JSON (no ``prov`` object
model, no metric point files): the series entities already carry the count,
min, max and last value. Attribute names are read by namespace IRI, so a
document re-serialised with other prefixes reads the same.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from .._fs import slug
from ..provenance.names import json_location
from ..exceptions import ProvFileError

__all__ = ["Series", "RunRecord", "read_run", "find_run_dirs", "resolve_run", "is_run_dir", "DEFAULT_DIR", "KILLED"]

DEFAULT_DIR = "prov"
#: How ``status`` reads for a run whose process died before ``end_run``.
KILLED = "killed (needs prov4ml recover)"

_RANK_FILE = re.compile(r"^prov_rank(\d+)\.json$")
_RUN_DIR = re.compile(r"^run_(\d+)$")
_PARAM_REPEAT = re.compile(r"^(.*)#(\d+)$")  # a key logged again with another value: "lr#2"
_CANONICAL = {
    "http://www.w3.org/ns/prov#": "prov",
    "http://www.w3.org/ns/mls#": "mls",
    "http://purl.org/dc/terms/": "dcterms",
    "https://prov4ml.github.io/ns/provml#": "provml",
    "http://www.w3.org/2001/XMLSchema#": "xsd",
}
# The status of a run of several ranks is its ranks' most severe.
_SEVERITY = {"finished": 0, "running": 1, "interrupted": 2, "terminated": 2, "killed": 3, "failed": 4}
_SERIES_FIELDS = ("count", "nan_count", "min", "max", "last", "mean", "first_step", "last_step", "unit", "source", "sampler")
_RUN_FIELDS = ("experiment", "run_id", "rank", "status", "command", "error_type", "error_message")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Series:
    """One metric series of one rank, as its entity summarises it."""

    name: str
    context: str
    rank: int
    count: Optional[int] = None
    nan_count: Optional[int] = None
    min: Optional[float] = None
    max: Optional[float] = None
    last: Optional[float] = None
    mean: Optional[float] = None
    first_step: Optional[int] = None
    last_step: Optional[int] = None
    unit: Optional[str] = None
    source: Optional[str] = None
    sampler: Optional[str] = None
    location: Optional[str] = None

    @property
    def key(self) -> str:
        return f"{self.name}/{self.context}"


@dataclass
class RunRecord:
    """One run (every rank), read from its documents.

    ``status`` is the most severe of the ranks' (``finished`` < ``running`` <
    ``interrupted``/``terminated`` < ``killed`` < ``failed``); a rank left
    ``running`` by a process that is gone makes it ``killed`` and lists the
    rank in ``needs_recovery``.
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
        return KILLED if self.needs_recovery else self.status


# ---------------------------------------------------------------- finding runs
def rank_files(run_dir: Path) -> Dict[int, Path]:
    """``{rank: prov_rank<k>.json}`` of ``run_dir`` (empty when it is not a run directory)."""
    found = {}
    try:
        with os.scandir(run_dir) as it:
            for entry in it:
                m = _RANK_FILE.match(entry.name)
                if m and entry.is_file():
                    found[int(m.group(1))] = Path(entry.path)
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return {}
    return dict(sorted(found.items()))


def is_run_dir(path: Path) -> bool:
    return bool(rank_files(path))


def find_run_dirs(root: PathLike) -> List[Path]:
    """The run directories under ``root``: a run itself, an experiment's runs, or every experiment's.

    In experiment-name order, then run-id order. Raises :class:`ProvFileError`
    when ``root`` is missing or holds no run.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a directory" if root.exists() else "no such directory"
        raise ProvFileError(
            f"{root}: {what}; give the provenance_save_dir of your runs (default ./{DEFAULT_DIR}), "
            "an experiment directory or a run directory"
        )
    if is_run_dir(root):
        return [root]
    runs: List[Path] = []
    for child in _subdirs(root):
        if is_run_dir(child):
            runs.append(child)
        else:
            runs.extend(d for d in _subdirs(child) if is_run_dir(d))
    if not runs:
        raise ProvFileError(
            f"{root} holds no runs (no <experiment>/run_<id>/prov_rank<k>.json under it); "
            f"give the provenance_save_dir your runs were started with (default ./{DEFAULT_DIR})"
        )
    return runs


def _subdirs(path: Path) -> List[Path]:
    """The folders in ``path`` (hidden ones left out), runs by their id, others by name."""
    try:
        with os.scandir(path) as it:
            dirs = [Path(e.path) for e in it if e.is_dir() and not e.name.startswith(".")]
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []

    def key(d: Path) -> Tuple[int, int, str]:
        m = _RUN_DIR.match(d.name)
        return (0, int(m.group(1)), "") if m else (1, 0, d.name)

    return sorted(dirs, key=key)


def experiment_candidates(spec: PathLike, base: PathLike = DEFAULT_DIR) -> List[Path]:
    """Where an experiment named ``spec`` may be: a directory, a folder under ``base``, or its name made safe (slug)."""
    return [Path(spec), Path(base) / spec, Path(base) / slug(str(spec))]


def resolve_run(spec: PathLike, base: PathLike = DEFAULT_DIR) -> Path:
    """The run directory ``spec`` names: a run directory, or ``EXPERIMENT/run_N`` (or ``EXPERIMENT/N``) under ``base``."""
    spec_text = str(spec)
    tried = []
    candidates = [Path(spec_text), Path(base) / spec_text]
    parts = Path(spec_text).parts
    if len(parts) == 2:  # "exp ü/run_1" as ls prints it: the experiment's folder is its name made safe (slug)
        folder = slug(parts[0])
        candidates.append(Path(base) / folder / parts[1])
        if parts[1].isdigit():  # "exp/3" means exp/run_3
            candidates += [Path(base) / parts[0] / f"run_{parts[1]}", Path(base) / folder / f"run_{parts[1]}"]
    for cand in candidates:
        if cand in tried:
            continue
        tried.append(cand)
        if is_run_dir(cand):
            return cand
    def why(c: Path) -> str:
        if not c.is_dir():
            return f"{c} is not a directory"
        if any(is_run_dir(d) for d in _subdirs(c)):
            return f"{c} is an experiment: name one of its runs, {c.name}/run_N"
        return f"{c} holds no prov_rank<k>.json"

    raise ProvFileError(
        f"no run {spec_text!r}: {', '.join(why(c) for c in tried)}; give a run directory or EXPERIMENT/run_N "
        f"under ./{base} (prov4ml ls lists them)"
    )


# ---------------------------------------------------------------- reading
def read_run(run_dir: PathLike, details: bool = True) -> RunRecord:
    """The run in ``run_dir`` from its ranks' PROV-JSON; :class:`ProvFileError` names a bad document.

    ``details=False`` reads only the status, times, parameters and metric series
    (what ``ls`` and ``watch`` show): artifacts, datasets, environment, user
    and host stay empty.
    """
    run_dir = Path(run_dir)
    files = rank_files(run_dir)
    if not files:
        raise ProvFileError(f"{run_dir} holds no prov_rank<k>.json; give a run directory (<save_dir>/<experiment>/run_<id>)")
    ranks = [_read_rank(path, rank, details) for rank, path in files.items()]
    first = ranks[0]
    info = first["info"]
    run_id = info.get("run_id")
    if run_id is None:
        m = _RUN_DIR.match(run_dir.name)
        run_id = int(m.group(1)) if m else run_dir.name
    params: Dict[str, Any] = {}
    for r in ranks:  # the lowest rank's value wins; one only another rank logged is added
        for key, value in r["params"].items():
            params.setdefault(key, value)
    statuses = [r["info"].get("status") or "running" for r in ranks]
    status = max(statuses, key=lambda s: _SEVERITY.get(s, 1))
    needs: List[int] = []
    if "running" in statuses:
        from ..run.recovery import needs_recovery  # reads the journal's state: only for runs not ended

        needs = needs_recovery(run_dir)
        if needs and _SEVERITY.get(status, 1) < _SEVERITY["killed"]:
            status = "killed"
    starts = [r["info"]["start"] for r in ranks if r["info"].get("start") is not None]
    ends = [r["info"].get("end") for r in ranks]
    failed = next((r["info"] for r in ranks if r["info"].get("error_type")), {})
    return RunRecord(
        run_dir=run_dir,
        experiment=info.get("experiment"),
        run_id=run_id,
        status=status,
        ranks=list(files),
        start=min(starts) if starts else None,
        end=max(ends) if ends and all(e is not None for e in ends) else None,  # type: ignore[type-var]
        params=params,
        series=[s for r in ranks for s in r["series"]],
        final_metrics=info.get("final_metrics", {}),
        final_folds=info.get("final_folds", {}),
        needs_recovery=needs,
        error_type=failed.get("error_type"),
        error_message=failed.get("error_message"),
        command=info.get("command"),
        user=first["agents"].get("user"),
        host=first["agents"].get("host"),
        environment=first["environment"],
        source=first["source"],
        artifacts=[a for r in ranks for a in r["artifacts"]],
        datasets=[d for r in ranks for d in r["datasets"]],
        notes=info.get("notes", {}),
    )


def load_json(path: Path) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ProvFileError(f"{path}: no such file; the run directory changed while it was read, try again") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvFileError(f"{path}: cannot be read ({exc}); check the file and its permissions") from None
    except ValueError as exc:
        raise ProvFileError(
            f"{path} is not valid JSON ({exc}); if the run was killed, run prov4ml recover on its directory"
        ) from None
    if not isinstance(data, dict):
        raise ProvFileError(f"{path} is JSON but not PROV-JSON (a {type(data).__name__}, not an object)")
    return data


_SUMMARY_TYPES = frozenset(("provml:Metric", "mls:HyperParameterSetting", "provml:FinalMetric"))


def _read_rank(path: Path, rank: int, details: bool) -> Dict[str, Any]:
    data = load_json(path)
    canon = _Names(data.get("prefix"))
    out: Dict[str, Any] = {"params": {}, "series": [], "artifacts": [], "datasets": [], "agents": {},
                           "environment": {}, "source": {}, "info": None}
    for ident, attrs in _records(data.get("activity")):
        attrs = canon.attrs(attrs)
        if "mls:Run" in attrs["prov:type"]:
            out["info"] = _run_info(attrs, rank)
            break
    if out["info"] is None:
        raise ProvFileError(f"{path} is PROV-JSON but not a prov4ml run document (no mls:Run activity)")
    for _ident, attrs in _records(data.get("agent") if details else None):
        attrs = canon.attrs(attrs)
        if "prov:Person" in attrs["prov:type"]:
            out["agents"].setdefault("user", attrs.get("prov:label"))
        elif "provml:Host" in attrs["prov:type"]:
            out["agents"].setdefault("host", attrs.get("prov:label"))
    repeats: Dict[str, Tuple[int, Any]] = {}
    for ident, attrs in _records(data.get("entity")):
        types = canon.types(attrs)
        if not details and not types & _SUMMARY_TYPES:
            continue  # `ls` needs the parameters and series only: the others are not even converted
        attrs = canon.attrs(attrs)
        if "provml:FinalMetric" in types:  # one entity per registered final metric
            name = str(attrs.get("provml:name"))
            out["info"]["final_metrics"][name] = attrs.get("prov:value")
            if attrs.get("provml:fold") is not None:
                out["info"]["final_folds"][name] = attrs.get("provml:fold")
        elif "provml:Metric" in types:
            out["series"].append(Series(
                name=str(attrs.get("provml:name")), context=str(attrs.get("provml:context")), rank=rank,
                location=json_location(attrs.get("prov:location")),
                **{f: attrs.get(f"provml:{f}") for f in _SERIES_FIELDS},
            ))
        elif "mls:HyperParameterSetting" in types:
            label = str(attrs.get("prov:label", ident.rsplit("/", 1)[-1]))
            m = _PARAM_REPEAT.match(label)
            key, n = (m.group(1), int(m.group(2))) if m else (label, 1)
            if n >= repeats.get(key, (0, None))[0]:
                repeats[key] = (n, attrs.get("prov:value"))
        elif "provml:Artifact" in types:
            kind = ("model_version" if "provml:ModelVersion" in types else "source" if "provml:SourceCode" in types
                    else "diff" if "provml:SourceDiff" in types else "model" if "mls:Model" in types else "artifact")
            out["artifacts"].append({
                "rank": rank, "kind": kind, "name": attrs.get("prov:label"), "location": json_location(attrs.get("prov:location")),
                "model_name": attrs.get("provml:model_name"), "version": attrs.get("provml:version"),
                "step": attrs.get("provml:step"), "context": attrs.get("provml:context"),
                "size_bytes": attrs.get("provml:size_bytes"), "sha256": attrs.get("provml:sha256"),
            })
        elif "mls:Dataset" in types:
            out["datasets"].append({"rank": rank, **_local_attrs(attrs)})
        elif "provml:Environment" in types and not out["environment"]:
            out["environment"] = _local_attrs(attrs)
        elif "prov:Plan" in types and not out["source"]:
            out["source"] = {"source_file": json_location(attrs.get("prov:location")),
                             **{k: v for k, v in _local_attrs(attrs).items() if k != "location"}}
    out["params"] = {key: value for key, (_n, value) in repeats.items()}
    return out


def _records(section: Any) -> Iterator[Tuple[str, Dict[str, Any]]]:
    if not isinstance(section, dict):
        return
    for ident, attrs in section.items():
        for one in attrs if isinstance(attrs, list) else [attrs]:  # PROV-JSON lists a repeated identifier
            if isinstance(one, dict):
                yield ident, one


def _run_info(attrs: Dict[str, Any], rank: int) -> Dict[str, Any]:
    info: Dict[str, Any] = {f: attrs.get(f"provml:{f}") for f in _RUN_FIELDS}
    info["rank"] = attrs.get("provml:rank", rank)
    info["start"], info["end"] = _time(attrs.get("prov:startTime")), _time(attrs.get("prov:endTime"))
    finals: Dict[str, Any] = {}
    notes: Dict[str, Any] = {}
    for key, value in attrs.items():
        prefix, _, local = key.partition(":")
        if prefix != "provml" or local in _RUN_FIELDS:
            continue
        (finals if local.startswith("final_") else notes)[local[6:] if local.startswith("final_") else local] = value
    folds = {}
    for name in list(finals):  # final_<name>_fold names the fold of final_<name>
        if name.endswith("_fold") and name[:-5] in finals and isinstance(finals[name], str):
            folds[name[:-5]] = finals.pop(name)
    info["final_metrics"], info["final_folds"], info["notes"] = finals, folds, notes
    return info


def _local_attrs(attrs: Dict[str, Any]) -> Dict[str, Any]:
    """A record's attributes by local name, without its type and label."""
    return {k.partition(":")[2]: v for k, v in attrs.items() if k not in ("prov:type", "prov:label")}


def _time(value: Any) -> Optional[datetime]:
    if isinstance(value, datetime) or value is None:
        return value
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


class _Names:
    """Attribute names and values of one document in prov4ml's canonical prefixes, values as Python values."""

    def __init__(self, prefixes: Any):
        self.rename: Dict[str, str] = {}
        for prefix, iri in (prefixes or {}).items():
            canon = _CANONICAL.get(iri)
            if canon is not None and canon != prefix:
                self.rename[prefix] = canon

    def name(self, qname: str) -> str:
        if self.rename:
            prefix, sep, local = qname.partition(":")
            if sep and prefix in self.rename:
                return f"{self.rename[prefix]}:{local}"
        return qname

    def types(self, attrs: Dict[str, Any]) -> set:
        value = attrs.get("prov:type", ())
        if not value and self.rename:  # prov:type under another prefix
            value = next((v for k, v in attrs.items() if self.name(k) == "prov:type"), ())
        values = value if isinstance(value, list) else [value]
        return {self.name(str(v["$"] if isinstance(v, dict) else v)) for v in values}

    def attrs(self, attrs: Dict[str, Any]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for key, value in attrs.items():
            key = self.name(key)
            if key == "prov:type":
                out[key] = self.types({key: value})
            else:
                out[key] = self.value(value[0] if isinstance(value, list) and value else value)
        out.setdefault("prov:type", set())
        return out

    def value(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        raw, kind = value.get("$"), self.name(str(value.get("type", "")))
        try:
            if kind in ("xsd:int", "xsd:long", "xsd:integer", "xsd:short"):
                return int(raw)
            if kind in ("xsd:double", "xsd:float", "xsd:decimal"):
                return float(raw)
            if kind == "xsd:boolean":
                return str(raw).lower() in ("true", "1")
            if kind == "xsd:dateTime":
                return _time(raw)
        except (TypeError, ValueError):
            pass
        return self.name(str(raw)) if kind == "xsd:QName" else raw


# ---------------------------------------------------------------- metric figures
#: Metric names (any word of them) for which larger is better; every other metric is a loss-like "smaller is better".
HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "precision", "recall", "auc", "auroc", "score", "iou", "map", "bleu",
                    "rouge", "reward", "return", "r2", "dice", "top1", "top5", "throughput", "psnr", "ssim")
_WORDS = re.compile(r"[a-z0-9]+")


def higher_is_better(name: str, fold: Optional[str] = None) -> bool:
    """Whether the best value of metric ``name`` is its largest: a registered ``max``/``min`` fold decides, else its name."""
    if fold in ("max", "min"):
        return fold == "max"
    return any(w in HIGHER_IS_BETTER or w.startswith("acc") for w in _WORDS.findall(name.lower()))


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
