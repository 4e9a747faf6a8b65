"""The Run's document while it runs: its snapshot, and the refresher's upkeep that writes it.

Functions of a :class:`prov4ml.run.Run`: the refresher thread calls :func:`refresh` (this process
writes the PROV-JSON) or :func:`save_records` (the sink process writes it from the saved records).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .._version import __version__
from ..records import state as _state
from ..metrics.series import NO_ROWS
from ..records.model import FinalValue, RunSnapshot, utc

if TYPE_CHECKING:
    from .run import Run

__all__ = ["snapshot", "problems", "apply_report", "refresh", "save_records", "write_snapshot", "warn_dropped"]


def snapshot(run: "Run", light: bool = False) -> RunSnapshot:
    """A copy of everything recorded so far, for the provenance builder. ``light``: the records saved beside the
    journal, with only the series that ``series.jsonl`` cannot describe (a sampler, a sub-context and its
    parent); it describes the others to ``recover`` and to the sink's live documents, and 100,000 of them
    pickled cost the training process 0.5 s a save."""
    records = run.records
    with run._lock:
        live = list(run.metrics.series.values())
        series = [s.summary() for s in live if not light or _saved(s)]
        spans: Dict[Any, List[float]] = {}
        for s in live:  # a context spans the points logged in it
            if s.first_time is not None:
                span = spans.setdefault(s.context, [s.first_time, s.last_time])
                span[0], span[1] = min(span[0], s.first_time), max(span[1], s.last_time)
        for context, (first, last) in spans.items():
            records.touch(context, first)
            records.touch(context, last)
        notes = dict(records.notes)
        found = problems(run)
        if found:
            notes["writer_errors"] = " | ".join(found[-5:])
        if run.metrics.journal is not None and run.metrics.journal.dropped:
            notes["dropped"] = run.metrics.journal.dropped
        if records.journal is not None and records.journal.failed:
            notes["records_not_journaled"] = records.journal.failed
        snap = RunSnapshot(
            user_namespace=run.user_namespace,
            user=run.user,
            experiment_name=run.experiment_name,
            run_id=run.run_id,
            rank=run.rank,
            run_dir=str(run.run_dir) if run._remote is None else run._remote.url_of(run.run_dir),
            start_time=utc(run.start_time),
            end_time=utc(run.end_time),
            status=run.status,
            error=run.error,
            library_version=__version__,
            series=series,
            final_metrics=[FinalValue(f.name, f.value, f.operation_name, f.failed) for f in list(run.metrics.folds.values())],
            notes=notes,
            **records.snapshot_fields(),
        )
    return _light(snap) if light else snap


def _saved(series: Any) -> bool:
    """Whether the records saved beside the journal keep ``series`` (a MetricSeries or its summary): when its line
    in ``series.jsonl`` may not say all of it (a unit given after its first point, the lines of an older
    version, which held no sampler and no sub-context)."""
    return series.sampler is not None or series.context.parent is not None or series.unit is not None


def _light(snap: RunSnapshot) -> RunSnapshot:
    """The records saved beside the journal: ``_saved`` series, and never an ending (``end_run`` sets the
    status before it stops the refresher; the record journal tells ``recover`` how the run ended, and until its
    final document is in place, the run is one that recover completes)."""
    return dataclasses.replace(snap, series=[s for s in snap.series if _saved(s)], status="running", end_time=None)


def problems(run: "Run") -> List[str]:
    """What could not be written so far: folds that failed, the journal's and the refresher's errors."""
    found = list(run.metrics.fold_errors)
    journal = run.metrics.journal
    if journal is not None and journal.error:
        found.append(journal.error)
    if journal is not None and journal.dropped:
        found.append(f"{journal.dropped:,} points were not kept: the disk stayed full past the spare journal segment")
    records = run.records.journal
    if records is not None and records.failed:
        found.append(f"{records.failed:,} records could not be journaled ({records.error}): until a refresh saved "
                     "them, a kill would have lost them")
    if run._refresher is not None:
        found += run._refresher.errors
    return found


def apply_report(run: "Run", report: Dict[str, Any], whole: bool = False) -> None:
    """Take the consumer's summaries: the document describes what the files hold. ``whole``: the report says
    every series with rows on disk (the sink's last word when its plan failed), so any other has none."""
    by_sid = run.metrics.by_sid
    series = report.get("series", {})
    for sid, stats in series.items():
        by_sid[int(sid)].update(stats)
    if whole:
        for s in by_sid:
            if str(s.sid) not in series:  # its rows never reached its file: no figures, no file to name
                s.update(NO_ROWS)
                s.location = None


def _upkeep(run: "Run", report: Optional[Dict[str, Any]]) -> None:
    if report is not None:
        apply_report(run, report)
    run.metrics.apply_folds()
    run.metrics.journal.retry()
    warn_dropped(run)


def warn_dropped(run: "Run") -> None:
    """Points not kept are counted in the document (provml:dropped), and said once, as soon as it is seen."""
    if run.metrics.journal.dropped:
        run._refresher.warn_once("dropped", f"{run.metrics.journal.error or 'the disk was full'}; the count of points "
                                 "not kept is in the document (provml:dropped)")
    if run.options["fsync"]:
        run.metrics.journal.sync()


def refresh(run: "Run", report: Dict[str, Any]) -> None:
    """The refresher's work when this process writes the document: summaries, folds, the document if changed."""
    _upkeep(run, report)
    state = (tuple(sorted((k, v[0]) for k, v in report.get("series", {}).items())), _records_state(run))
    if state != run._last_written:
        write_snapshot(run)
        run._last_written = state
    if run._mirror is not None:
        run._mirror.push()  # returns at once: the copy is made by the mirror's thread


def save_records(run: "Run", report: Optional[Dict[str, Any]]) -> None:
    """The refresher's work when the sink writes the document: save the records if they changed."""
    _upkeep(run, report)
    state = _records_state(run)
    if state != run._last_saved:
        _state.save_snapshot(run.journal_dir, snapshot(run, light=True))
        run._last_saved = state
    if run._mirror is not None:
        run._mirror.push()  # returns at once; it copies the files (and the sink's last document) in its thread


def _records_state(run: "Run") -> tuple:
    """Changes whenever something the document says, other than the series summaries, changes."""
    r = run.records
    with run._lock:
        return (
            len(run.metrics.series), len(r.params), len(r.artifacts), len(r.models),
            len(r.versions), len(r.datasets), len(r.environment), repr(sorted(r.notes.items(), key=str)), len(r.epochs),
            tuple((f.name, f.count, f.failed) for f in list(run.metrics.folds.values())),
            len(problems(run)), r.source_code, r.command, tuple(r.contexts.items()),
        )


def write_snapshot(run: "Run", final: bool = False, save: bool = True) -> RunSnapshot:
    """Write the PROV-JSON (``final``: indented and synced) and save the records beside the journal (``save``);
    returns what was written."""
    from ..provenance import write_document
    from ..provenance.summary import write_summary

    snap = snapshot(run)
    if not final:  # the records first: a kill before the document is in place leaves what recover needs to write it
        _state.save_snapshot(run.journal_dir, _light(snap))
    write_document(run.prov_path, snap, indent=1 if final else None, fsync=final)  # the final one is for people to read
    write_summary(run.run_dir, snap, _state.read_owner(run.journal_dir), fsync=final)  # after it: never ahead of it
    if final and save:  # last: until the final document is in place, recover completes the run
        _state.save_snapshot(run.journal_dir, snap)
    return snap
