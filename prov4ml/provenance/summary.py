"""A rank's summary: the small JSON file beside its document that indexes read instead of the document.

Every time a rank's ``prov_rank<k>.json`` is written (at ``start_run``, at
each refresh, at ``end_run``, by ``recover``) its ``summary_rank<k>.json`` is
written next, atomically, from the same snapshot: ids, status, times, host,
the recording process (its owner), parameters, each series' figures (with the
best value), final metrics, and the digests of the files the rank generated
and used. One file per rank, so no two processes ever write the same file.
docs/formats.md describes it; :data:`VERSION` changes when its meaning does.

JSON has no NaN, infinities or times: those are written as ``{"$float": "nan"}``
(``"inf"``, ``"-inf"``) and ``{"$time": "<ISO 8601>"}``; :func:`decode` reads them back.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from datetime import datetime
from json.encoder import encode_basestring_ascii as quote
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional

from .._fs import atomic_write
from ..exceptions import ProvFileError
from ..records.model import RunSnapshot
from .builder import _plain, _value

__all__ = ["FORMAT", "VERSION", "SUMMARY_FILE", "summary_name", "summarize", "write_summary", "read_summary",
           "encode", "decode", "higher_is_better", "HIGHER_IS_BETTER", "SERIES_KEYS"]

FORMAT = "prov4ml-run-summary"
VERSION = 1
SUMMARY_FILE = re.compile(r"^summary_rank(\d+)\.json$")
#: What a series entry holds (besides ``name`` and ``context``), as the document's metric entity says it.
SERIES_KEYS = ("count", "nan_count", "min", "max", "last", "mean", "best", "first_step", "last_step", "unit",
               "source", "sampler", "location")
_KEYS = [k for k in SERIES_KEYS if k != "best"]  # as the series' records hold them

#: Metric names (any word of them) for which larger is better; every other metric is a loss-like "smaller is better".
HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "precision", "recall", "auc", "auroc", "score", "iou", "map", "bleu",
                    "rouge", "reward", "return", "r2", "dice", "top1", "top5", "throughput", "psnr", "ssim")
# a word (a run of [a-z0-9]) that is one of them or starts with "acc": one search, not a split (100,000 series)
_HIGHER = re.compile(r"(?<![a-z0-9])(?:acc[a-z0-9]*|%s)(?![a-z0-9])" % "|".join(w for w in HIGHER_IS_BETTER
                                                                                if not w.startswith("acc")))
_REPEAT = re.compile(r"^(.*)#(\d+)$")  # as the document's label says a repeated parameter: "lr#2"


def higher_is_better(name: str, fold: Optional[str] = None) -> bool:
    """Whether the best value of metric ``name`` is its largest: a registered ``max``/``min`` fold decides, else its name."""
    if fold in ("max", "min"):
        return fold == "max"
    return _HIGHER.search(name.lower()) is not None


def summary_name(rank: int) -> str:
    return f"summary_rank{rank}.json"


def encode(value: Any) -> Any:
    """A record's value as standard JSON (NaN, infinities and times tagged)."""
    kind = type(value)
    if (kind is float and value - value == 0) or kind is int or kind is str or value is None:
        return value  # most values: nothing to do (value - value is NaN for NaN and the infinities)
    value = _value(value)
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if isinstance(value, datetime):
        return {"$time": value.isoformat()}
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, dict):
        if "$float" in value:
            return float(value["$float"])
        if "$time" in value:
            return datetime.fromisoformat(value["$time"])
    return value


def _time(t: Optional[datetime]) -> Optional[str]:
    return None if t is None else t.isoformat()


def summarize(snap: RunSnapshot, owner: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The summary of one rank's snapshot; ``owner``: the recording process (``pid``, ``host``, ``start``)."""
    return {**_head(snap, owner), "series": list(_series(snap))}


def _series(snap: RunSnapshot) -> Iterator[Dict[str, Any]]:
    """Each series' entry, made one at a time: a run may have 100,000."""
    folds = {f.name: f.operation_name for f in snap.final_metrics}
    for s in snap.series:
        yield _entry(s, folds)


def _entry(s: Any, folds: Dict[str, str]) -> Dict[str, Any]:
    best = s.max if higher_is_better(s.name, folds.get(s.name)) else s.min
    entry = {"name": s.name, "context": str(s.context)}
    for k in _KEYS:
        entry[k] = encode(getattr(s, k, None))
    entry["best"] = encode(best)
    return entry


def _series_texts(snap: RunSnapshot) -> Iterator[str]:
    """Each series' entry as the JSON text :func:`write_summary`'s encoder makes of it; a series of the usual
    shape (finite figures, no unit or sampler) from one template, which is 3x faster (a run's 100,000 series)."""
    folds = {f.name: f.operation_name for f in snap.final_metrics}
    dumps = _ENCODER.encode
    for s in snap.series:
        if _plain(s) and s.min - s.min == 0 == s.max - s.max and s.last - s.last == 0 == s.mean - s.mean:
            best = s.max if higher_is_better(s.name, folds.get(s.name)) else s.min
            yield _SERIES_TEXT % (quote(s.name), quote(str(s.context)), s.count, s.nan_count, s.min, s.max, s.last,
                                  s.mean, s.first_step, s.last_step, quote(s.source),
                                  "null" if s.location is None else quote(s.location), best)
        else:
            yield dumps(_entry(s, folds))


_ENCODER = json.JSONEncoder(separators=(",", ":"))
# the order and form of _entry's keys as _ENCODER writes them (a finite float: its repr, as json writes it)
_SERIES_TEXT = ('{"name":%s,"context":%s,"count":%d,"nan_count":%d,"min":%r,"max":%r,"last":%r,"mean":%r,'
                '"first_step":%d,"last_step":%d,"unit":null,"source":%s,"sampler":null,"location":%s,"best":%r}')



def _head(snap: RunSnapshot, owner: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The summary but its series."""
    folds = {f.name: f.operation_name for f in snap.final_metrics}
    params: Dict[str, Any] = {}
    for p in snap.params:  # a key logged again with another value is kept as "key#n": the last one wins
        m = _REPEAT.match(p.key)
        params[m.group(1) if m else p.key] = encode(p.value)
    files: Dict[str, List[Dict[str, Any]]] = {"generated": [], "used": []}
    # model versions are files the run generated too: a run that evaluates one finds its producer by it
    for a in list(snap.artifacts) + [v.artifact for v in getattr(snap, "versions", ())]:
        files["used" if a.is_input else "generated"].append(
            {"sha256": a.sha256, "size": a.size, "role": a.role, "name": a.name, "location": a.location,
             "original": a.original, "context": None if a.context is None else str(a.context), "step": a.step})
    for d in snap.datasets:  # a file-backed dataset read by the run: its bytes, once digested
        if getattr(d, "sha256", None):
            files["used"].append({"sha256": d.sha256, "size": d.size_bytes, "role": "dataset", "name": d.label,
                                  "location": d.location, "original": d.location,
                                  "context": None if d.context is None else str(d.context), "step": None})
    error_type, error_message = snap.error or (None, None)
    return {
        "format": FORMAT,
        "version": VERSION,
        "experiment": snap.experiment_name,
        "run_id": snap.run_id,
        "rank": snap.rank,
        "status": snap.status,
        "start": _time(snap.start_time),
        "end": _time(snap.end_time),
        "host": str(snap.environment.get("host", "")) or None,
        "user": snap.user,
        "command": snap.command,
        "owner": {k: owner[k] for k in ("pid", "host", "start") if k in owner} if owner else None,
        "error_type": error_type,
        "error_message": error_message,
        "params": params,
        "final_metrics": {f.name: encode(f.value) for f in snap.final_metrics},
        "final_folds": folds,
        "datasets": [d.label for d in snap.datasets],
        "git": {k[len("git_"):]: encode(v) for k, v in snap.environment.items() if k.startswith("git_")},
        "files": files,
        "document": f"prov_rank{snap.rank}.json",
        "imported_from": snap.notes.get("importedFrom"),  # prov4ml import: "<tool>:<its id of the run>"
    }


def write_summary(run_dir: Path, snap: RunSnapshot, owner: Optional[Dict[str, Any]] = None,
                  fsync: bool = False, check: Optional[Callable[[], None]] = None) -> Path:
    """Write ``summary_rank<k>.json`` of ``snap`` into ``run_dir`` atomically; returns its path.

    ``check`` is called between batches of series: it may raise to stop (nothing is written)."""
    path = Path(run_dir, summary_name(snap.rank))

    def write(fh: IO[bytes]) -> None:  # streamed, the series last
        fh.write(f'{_ENCODER.encode(_head(snap, owner))[:-1]},"series":['.encode("utf-8"))
        entries, between = _series_texts(snap), ""
        while True:
            batch = list(itertools.islice(entries, 2000))
            if not batch:
                break
            fh.write(f"{between}{','.join(batch)}".encode("utf-8"))
            between = ","
            if check is not None:
                check()
        fh.write(b"]}")

    atomic_write(path, write, fsync=fsync)
    return path


def read_summary(path: "os.PathLike[str] | str", data: Optional[bytes] = None) -> Dict[str, Any]:
    """A summary file (or its bytes, ``data``) as a dict; :class:`ProvFileError` when it is not one this version reads."""
    try:
        if data is None:
            with open(path, "rb") as fh:
                data = fh.read()
        out = json.loads(data)
    except (OSError, ValueError) as exc:
        raise ProvFileError(f"{path}: not a readable run summary ({exc})") from None
    if not isinstance(out, dict) or out.get("format") != FORMAT:
        raise ProvFileError(f"{path} is not a {FORMAT} file")
    if not isinstance(out.get("version"), int) or out["version"] > VERSION:
        raise ProvFileError(f"{path} is a run summary of version {out.get('version')!r}; this prov4ml reads up to "
                            f"version {VERSION}: upgrade prov4ml")
    return out
