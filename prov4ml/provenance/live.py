"""A run's PROV-JSON from its saved records and the journal consumer's summaries.

During a run the sink process writes the document this way, on its own core:
the training process saves its records (``state.pickle``) only when they
change and never builds a document between ``start_run`` and ``end_run``.
``recover`` completes a killed run's document the same way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from ..records import state as _state
from ..context import Context, as_source, chained_context
from ..records.model import RunSnapshot
from ..metrics.journal import read_series
from ..metrics.series import NO_ROWS, MetricSeries

__all__ = ["with_summaries", "write_live"]

#: (sid, the series' line in series.jsonl, its stats) -> the file the document names, or None
Locate = Callable[[int, Dict[str, Any], Sequence[Any]], Optional[str]]


def with_summaries(snap: RunSnapshot, metas: Dict[int, Dict[str, Any]], stats: Dict[int, Sequence[Any]],
                   locate: Locate, check: Optional[Callable[[], None]] = None) -> RunSnapshot:
    """``snap`` with every journaled series summarised from ``stats`` (rows on disk), contexts spanning them.
    ``check`` is called every 2,000 series: it may raise to stop."""
    known = {(s.name, str(s.context)): s for s in snap.series}
    series = []
    for n, (sid, meta) in enumerate(sorted(metas.items())):
        if check is not None and n % 2000 == 1999:
            check()
        numbers = stats.get(sid) or NO_ROWS
        old = known.get((meta["name"], meta["context"]))
        # the line says all of a series (this version's lines); the records saved beside the journal fill in
        # what older lines, or a unit given after the first point, do not
        context = chained_context(meta["contexts"]) if "contexts" in meta else old.context if old else Context(meta["context"])
        restored = MetricSeries(meta["name"], context, as_source(meta["kind"]), None, "",
                                (old.unit if old else None) or meta.get("unit"))
        restored.update(numbers)
        restored.location = locate(sid, meta, numbers)
        series.append(dataclasses.replace(restored.summary(), sampler=meta.get("sampler") or (old.sampler if old else None)))
    contexts = dict(snap.contexts)
    for s in series:  # a context spans the points logged in it
        if s.first_time is not None:
            start, end = contexts.get(s.context, (s.first_time, s.last_time))
            contexts[s.context] = (min(start or s.first_time, s.first_time), max(end or s.last_time, s.last_time))
    return dataclasses.replace(snap, series=series, contexts=contexts)


def _on_disk(sid: int, meta: Dict[str, Any], numbers: Sequence[Any]) -> Optional[str]:
    return meta["file"] if numbers[0] else None


def write_live(journal_dir: str, run_dir: str, stats: Dict[int, Sequence[Any]],
               check: Optional[Callable[[], None]] = None) -> Path:
    """Rewrite the running run's document from its records and ``stats``; returns its path.

    ``check`` is called now and then: it may raise to stop (the files are then left as they were)."""
    from . import write_document
    from .summary import write_summary

    snap = _state.load_snapshot(Path(journal_dir))
    snap = with_summaries(snap, read_series(journal_dir), stats, _on_disk, check)
    path = Path(run_dir, f"prov_rank{snap.rank}.json")
    write_document(path, snap, indent=None, check=check)  # as the training process's refreshes: one line, fastest
    write_summary(Path(run_dir), snap, _state.read_owner(Path(journal_dir)), check=check)
    return path
