"""A run read from its ranks' summaries (``summary_rank<k>.json``) when they are current, else from its documents.

A rank's summary is written right after its document, from the same
snapshot (:mod:`prov4ml.provenance.summary`), so it is current when it is at
least as new as the document. A run written by a version without summaries,
or whose summary is older than its document, is read from the documents:
they stay the source of truth, the summaries only make reading cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..exceptions import ProvFileError
from ..provenance.summary import decode, read_summary, summary_name
from .document import RankDocument, plain_time, read_rank
from .find import checked_rank_files
from .record import RunRecord, merge_ranks
from .series import Series

__all__ = ["Entry", "read_entry", "entry_of", "rank_of_summary", "current_summaries"]


@dataclass
class Entry:
    """One run as an index holds it: its record (no details), and each rank's files (``generated``/``used``)."""

    record: RunRecord
    files: List[Dict[str, Any]] = field(default_factory=list)
    owners: Dict[int, Optional[Dict[str, Any]]] = field(default_factory=dict)
    from_summaries: bool = True


def rank_of_summary(summary: Dict[str, Any], path: Path) -> RankDocument:
    """What a rank's document says, as its summary gives it (the fields ``read_rank(details=False)`` reads)."""
    rank = int(summary.get("rank", 0))
    info: Dict[str, Any] = {k: summary.get(k) for k in ("experiment", "run_id", "status", "command", "error_type",
                                                        "error_message")}
    info["rank"] = rank
    info["start"], info["end"] = plain_time(summary.get("start")), plain_time(summary.get("end"))
    info["recorded_dir"] = None
    info["final_metrics"] = {k: decode(v) for k, v in (summary.get("final_metrics") or {}).items()}
    info["final_folds"] = dict(summary.get("final_folds") or {})
    info["notes"] = {}
    series = [Series(name=str(s["name"]), context=str(s["context"]), rank=rank,
                     **{k: decode(s.get(k)) for k in ("count", "nan_count", "min", "max", "last", "mean",
                                                      "first_step", "last_step", "unit", "source", "sampler", "location")})
              for s in summary.get("series") or ()]
    return RankDocument(rank=rank, path=path, info=info, series=series,
                        params={k: decode(v) for k, v in (summary.get("params") or {}).items()},
                        agents={"user": summary.get("user"), "host": summary.get("host")})


def current_summaries(run_dir: Path, documents: Dict[int, Path]) -> Optional[Dict[int, Dict[str, Any]]]:
    """Each rank's summary, or None when a rank has none at least as new as its document (or it is unreadable)."""
    out = {}
    for rank, doc in documents.items():
        path = run_dir / summary_name(rank)
        try:
            if os.stat(path).st_mtime_ns < os.stat(doc).st_mtime_ns:
                return None
            out[rank] = read_summary(path)
        except (OSError, ProvFileError):
            return None
    return out


def entry_of(run_dir: Path, summaries: Dict[int, Dict[str, Any]], journal: bool = True) -> Entry:
    """The entry of a run from its ranks' summaries."""
    docs = {rank: rank_of_summary(s, run_dir / s.get("document", f"prov_rank{rank}.json"))
            for rank, s in sorted(summaries.items())}
    files = [{"rank": rank, "used": used, **f} for rank, s in sorted(summaries.items())
             for used, kind in ((False, "generated"), (True, "used")) for f in (s.get("files") or {}).get(kind, ())]
    record = merge_ranks(run_dir, docs, journal)
    git = summaries[min(summaries)].get("git") or {}
    record.source = {f"git_{k}": decode(v) for k, v in git.items()}
    return Entry(record, files, {r: s.get("owner") for r, s in summaries.items()})


def read_entry(run_dir: Path, journal: bool = True) -> Entry:
    """The run in ``run_dir``: from its summaries when they are current, else from its documents."""
    documents = checked_rank_files(run_dir)
    summaries = current_summaries(run_dir, documents)
    if summaries is not None:
        return entry_of(run_dir, summaries, journal)
    docs = {rank: read_rank(path, rank, details=False) for rank, path in documents.items()}
    return Entry(merge_ranks(run_dir, docs, journal), from_summaries=False)
