"""Runs recorded by the reference library, yProv4ML (``yprov4ml`` 2.x and 3.x).

DIR is the reference's ``provenance_save_dir``, one run folder
(``<experiment>_<n>/``) or one document (``prov_<experiment>_GR<k>_<n>.json``).
Each document is one run (rank ``k``): its parameters (3.x: entities typed
``provml:HyperParameter``; 2.x: attributes of the run activity), each metric
series from its CSV file (``metrics_GR<k>/``: step, value, time in
milliseconds), the files it copied into ``artifacts_GR<k>/`` (copied again,
with their sha256), its host and Python, its start and end (3.x:
``prov:startedAtTime`` in the zone the document names; 2.x: the execution
start and end times). The reference writes its document only at ``end_run``:
an imported run is ``finished``. Parameters the reference kept as text become
numbers where the text is a number's own spelling. Its identity is the
sha256 of the document.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ...exceptions import InvalidValueError, ProvFileError
from ...runs.document import load_json
from .source import Found, Point, SourceFile, SourceRun, typed

__all__ = ["find", "documents"]

DOCUMENT = re.compile(r"prov_.+_GR\d+_\d+\.json$")
#: what the reference writes on its run activity besides parameters (2.x keeps parameters there too)
RUN_FACTS = frozenset({
    "level", "provenance_path", "artifact_uri", "experiment_dir", "experiment_name", "run_id", "python_version",
    "PID", "host_name", "time_zone", "global_rank", "runtime_type", "operating_system", "release", "processor",
    "machine", "execution_start_time", "execution_end_time", "execution_command", "source_code",
})
_ZONE = re.compile(r"UTC([+-])(\d\d):?(\d\d)$")
_SEPARATORS = ",;\t| "


def documents(root: Path) -> List[Path]:
    """The reference's documents under ``root`` (or ``root`` itself, a document)."""
    return [root] if root.is_file() else sorted(p for p in root.rglob("prov_*.json") if DOCUMENT.match(p.name))


def find(source: str) -> Iterator[Found]:
    root = Path(source).expanduser().resolve()
    if not root.exists():
        raise InvalidValueError(f"prov4ml import yprov4ml: {source!r} does not exist; give the reference's "
                                "provenance_save_dir, a run folder (<experiment>_<n>) or a prov_*.json document")
    found = documents(root)
    if not found:
        raise InvalidValueError(f"prov4ml import yprov4ml: no yProv4ML document (prov_<experiment>_GR<k>_<n>.json) "
                                f"under {root}")
    for doc in found:
        digest = hashlib.sha256(doc.read_bytes()).hexdigest()
        yield Found("yprov4ml", f"sha256:{digest}", f"yProv4ML run {str(doc)!r}", functools.partial(_load, doc, digest))


def _local(key: str) -> str:
    return key.rpartition(":")[2]


def _value(v: Any) -> Any:
    """A PROV-JSON value as Python: a typed literal's number, else the text."""
    if isinstance(v, dict) and "$" in v:
        kind = _local(str(v.get("type", "")))
        text = str(v["$"])
        if kind in ("int", "long", "integer"):
            return int(text)
        if kind in ("double", "float"):
            return float(text)
        return text
    return v


def _attrs(record: Dict[str, Any]) -> Dict[str, Any]:
    """A record's attributes by local name (``yprov:context``, ``yProv4ML:context`` -> ``context``)."""
    return {_local(k): _value(v) for k, v in record.items()}


def _load(doc: Path, digest: str, scratch: Path) -> SourceRun:
    data = load_json(doc)  # the one reader's: its errors name the file and the problem
    run = _run_activity(doc, data)
    folder = doc.parent
    base = os.path.normpath(str(run["experiment_dir"]))  # the reference's paths start with it
    rank = int(run.get("global_rank", 0))
    params = {k: typed(v) for k, v in run.items() if k not in RUN_FACTS and not k.endswith("Time")}
    metrics: Dict[Tuple[str, Optional[str]], List[Point]] = {}
    files: List[SourceFile] = []
    for ident, record in data.get("entity", {}).items():
        attrs = _attrs(record)
        kinds = attrs.get("type") if isinstance(attrs.get("type"), list) else [attrs.get("type")]
        if "provml:HyperParameter" in kinds:
            params[str(attrs.get("label", ident))] = typed(attrs.get("value"))
            continue
        inside = _inside(attrs.get("identifier", attrs.get("path")), base, folder)
        if inside is None:
            continue  # the original of a copy, or a file outside the run folder
        if "provml:Metric" in kinds or "context" in attrs and inside.parts[0].startswith("metrics_GR"):
            metrics[(str(attrs.get("label", ident)), _context(attrs.get("context")))] = _points(folder / inside)
        elif inside.parts[0].startswith("artifacts_GR") and (folder / inside).is_file():
            files.append(SourceFile(folder / inside, Path(*inside.parts[1:]).as_posix(),
                                    is_input=attrs.get("role") == "input"))
    files.append(SourceFile(doc, doc.name, is_input=True, copy=False))
    run_id = str(run.get("run_id", ""))
    return SourceRun(
        tool="yprov4ml", identity=f"sha256:{digest}", location=str(doc),
        experiment=re.sub(rf"_{re.escape(run_id)}$", "", folder.name) if run_id else folder.name,
        start=_time(run, "startedAtTime", "execution_start_time"), end=_time(run, "endedAtTime", "execution_end_time"),
        params=params, metrics=metrics, files=files, rank=rank,
        host=run.get("host_name"),
        environment={"python": run["python_version"]} if "python_version" in run else {},
    )


def _run_activity(doc: Path, data: Dict[str, Any]) -> Dict[str, Any]:
    for record in data.get("activity", {}).values():
        attrs = _attrs(record)
        if "experiment_dir" in attrs:
            return attrs
    raise ProvFileError(f"{doc}: no run activity (one with an experiment_dir attribute): not a document "
                        "written by yProv4ML")


def _inside(path: Any, base: str, folder: Path) -> Optional[Path]:
    """``path`` as the reference wrote it (relative to its working folder), relative to the run folder."""
    if not isinstance(path, str) or not path:
        return None
    path = os.path.normpath(path)
    if not path.startswith(base + os.sep):
        return None
    inside = Path(path[len(base) + 1:])
    return inside if (folder / inside).exists() else None


def _context(name: Any) -> Optional[str]:
    """``Context.TRAINING`` (2.x) and ``training`` (3.x) are prov4ml's ``training``."""
    if not isinstance(name, str) or not name or name == "None":
        return None
    return name.split(".", 1)[1] if name.startswith("Context.") else name


def _points(path: Path) -> List[Point]:
    """The rows of the reference's CSV metric file: step, value, time (milliseconds)."""
    if path.suffix != ".csv":
        raise ProvFileError(f"{path}: prov4ml import reads the reference's CSV metric files "
                            f"(metrics_file_type='csv'), not {path.suffix!r} ones")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n")
        sep = next((c for c in _SEPARATORS if header.count(c) == 2), ",")
        out = []
        for n, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                step, value, ms = line.rstrip("\n").split(sep)
                out.append((int(step), float(value), int(ms) / 1000))
            except ValueError:
                raise ProvFileError(f"{path}, line {n}: {line.strip()!r} is not step{sep}value{sep}time") from None
    return out


def _time(run: Dict[str, Any], prov_key: str, seconds_key: str) -> Optional[float]:
    """3.x: a naive ISO time in the document's ``time_zone`` (``UTC+0100``); 2.x: Unix seconds."""
    if seconds_key in run:
        return float(run[seconds_key])
    text = run.get(prov_key)
    if not isinstance(text, str):
        return None
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:  # the reference writes local times and names the zone apart; none named: UTC
        m = _ZONE.match(str(run.get("time_zone", "")))
        offset = timedelta(0)
        if m:
            offset = timedelta(hours=int(m.group(2)), minutes=int(m.group(3))) * (-1 if m.group(1) == "-" else 1)
        when = when.replace(tzinfo=timezone(offset))
    return when.timestamp()
