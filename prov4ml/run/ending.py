"""The end of a Run: the callbacks, the last points, the final document, then graphs, card, crate,
collection and zip.

Functions of a :class:`prov4ml.run.Run`, called by ``Run.end`` in the order below. Each one sits
as many frames below the user's ``end_run`` as it did as a Run method, so warnings still name
the user's line.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from .. import storage
from .._fs import remove_if_empty
from ..exceptions import StorageError
from ..metrics.formats import archives_run
from ..records import state as _state
from . import layout, lifecycle as _lifecycle, outputs

if TYPE_CHECKING:
    from .run import Run

__all__ = ["run_at_end", "end"]

_time = time.time


def run_at_end(run: "Run") -> None:
    """Call the callbacks given to ``Run.at_end``, once; a failing one is warned about and noted."""
    with run._lock:
        if run._ended or run.pid != os.getpid():
            return
        callbacks, run._at_end = run._at_end, []
    for callback in callbacks:
        try:
            callback()
        except Exception as exc:  # the run is saved without that data; say so
            warnings.warn(f"end_run: {callback!r} failed: {type(exc).__name__}: {exc}", stacklevel=4)
            notes = run.records.notes
            notes[f"at_end_error_{len(notes)}"] = f"{type(exc).__name__}: {exc}"


def end(run: "Run", create_graph: bool, create_svg: bool, status: str, error: Optional[BaseException],
        create_provenance_collection: bool, timeout: float, crate: bool = False, card: bool = False,
        end_time: Optional[float] = None) -> Path:
    """What ``Run.end`` does once: finish the run, then write what was asked for beside its document."""
    with run._lock:
        if run._ended:
            return run.prov_path
        run._ended = True
    _lifecycle.deactivate(run)
    if run.pid != os.getpid():  # a forked child never finalises its parent's run
        run.metrics.recording = False
        return run.prov_path
    if not run.recording:
        run.metrics.close()
        run.records.close_journal()
        if create_provenance_collection:
            _collection(run)
        return run.prov_path
    _finish(run, status, error, timeout, card, crate, end_time)
    if run.options["strict"]:
        problems = outputs.problems(run)
        if problems:
            raise StorageError(f"end_run: the run is saved, but not everything could be written: {problems[-1]}")
    if create_graph or create_svg:
        _graphs(run, create_svg)
    if create_provenance_collection:
        _collection(run)
    if crate and run.rank == 0:  # one crate per run directory
        from ..provenance.crate import write_crate

        _extra_output("RO-Crate", lambda: write_crate(run.snapshot(), run.run_dir))
    if archives_run(run.options["use_compressor"]):
        try:
            shutil.make_archive(str(run.run_dir), "zip", root_dir=run.run_dir)
        except OSError as exc:
            warnings.warn(f"end_run: the run is saved, but the zip could not be written: {exc}", stacklevel=3)
    return run.prov_path


def _finish(run: "Run", status: str, error: Optional[BaseException], timeout: float, card: bool = False,
            crate: bool = False, end_time: Optional[float] = None) -> None:
    signum = {"interrupted": signal.SIGINT, "terminated": signal.SIGTERM}.get(status) if error is None else None
    run.set_outcome(status, error, signum)
    _journal_outcome(run)  # end_run has begun: a kill from here on is not a run that ended without it
    run.collectors.stop_meters()
    run.metrics.ending = True
    run.metrics.recording = False  # from here on a log call raises RunStateError
    if any(t is not threading.current_thread() and not t.name.startswith("prov4ml-") for t in threading.enumerate()):
        time.sleep(4 * sys.getswitchinterval())  # a call another thread is in the middle of completes first
    run.metrics.journal_deferred()
    run.metrics.end_samplers()
    report = run._refresher.close(timeout)  # what the files will hold: the sink writes them meanwhile
    outputs.apply_report(run, report)
    if run._format.side:  # a conversion reads the files whole: they must be written first
        report = _settled(run, report, timeout)
    outputs.warn_dropped(run)
    run.metrics.apply_folds(final=True)
    run.collectors.finish_capture()
    if not run.records.digests.wait(DIGEST_WAIT_S):  # the sampled digest made at log_dataset stays
        run._refresher.report("digests", f"a dataset's full digest was not done {DIGEST_WAIT_S:.0f} s into end_run; "
                              "its sampled digest (provml:digest) is kept")
    run._finalize_files()
    if card:  # before the end time: the run generates its card
        from ..provenance.card import write_card

        record = _extra_output("model card", lambda: write_card(run.snapshot(), run.run_dir, crate and run.rank == 0))
        if record is not None:
            with run._lock:
                run.records.keep("artifact", record)
    # a run imported while its source still runs has no end; an imported one keeps its source's end
    run.end_time = None if run.status == "running" else max(_time() if end_time is None else end_time, run.start_time)
    if run._deferred_signal is not None:
        run.set_outcome(run.status, signum=run._deferred_signal)
    complete = _complete(run, report)
    _journal_outcome(run)  # before the document: on a disk too full for it, recover still knows how the run ended
    try:
        try:
            snap = outputs.write_snapshot(run, final=True, save=False)
        finally:  # the sink wrote the files meanwhile: its word that they hold what the document says
            settled = report if run._format.side else _settled(run, report, timeout)
        if settled is not report:  # they do not: the document says what they hold
            complete = _complete(run, settled)
            snap = outputs.write_snapshot(run, final=True, save=False)
        if not complete or run.options["keep_journal"]:  # last: until the document is in place, recover completes it
            _state.save_snapshot(run.journal_dir, snap)
    except OSError as exc:
        complete = False
        run._refresher.report("final", f"could not write the final PROV-JSON ({exc}); `prov4ml recover "
                              f"{run.run_dir}` completes it from the journal when the disk has room")
    _drop_empty_files(run)
    # the document is final: the journal leaves recover's sight at once (its records saved would go with it:
    # 0.5-0.7 s at 100,000 series); a kill just before completes the run from the journal, as it ended
    doomed = _state.retire(run.journal_dir) if complete and not run.options["keep_journal"] else None
    run.metrics.close()
    run.records.close_journal()
    if doomed is not None:
        _state.remove(doomed)


def _drop_empty_files(run: "Run") -> None:
    """No file for a series without a row: the sink removes those it made ahead, unless it died meanwhile."""
    for s in list(run.metrics.series.values()):
        if not s.count:
            remove_if_empty(run.run_dir / s.data_file)


def _settled(run: "Run", report: dict, timeout: float) -> dict:
    """Wait until the metric files hold what the sink's final ``report`` summarised: ``report`` itself when they
    do, else the report of what they hold (a write failed, the sink had to be replaced), applied to the run."""
    final = run._refresher.confirm(timeout)
    if final.get("as_planned") and not final.get("errors"):
        return report
    if "series" in final:
        outputs.apply_report(run, final, whole=True)
    return final


def _complete(run: "Run", report: dict) -> bool:
    """Whether the files hold every row the journal holds; a finished run whose files lack some is incomplete."""
    complete = not report.get("backlog")
    if not complete and run.status == "finished":
        run.status = "incomplete"  # rows the journal holds are not in the files yet: recover writes them
    return complete


#: How long end_run waits for the full digests of the datasets logged (computed since log_dataset).
DIGEST_WAIT_S = 60.0


def _journal_outcome(run: "Run") -> None:
    """How the run ends (status, error, end time once known) and what it could not keep, in the record journal."""
    records = run.records.journal
    lost = {"dropped": run.metrics.journal.dropped, "records_not_journaled": records.failed if records else 0}
    with run._lock:
        run.records.keep("outcome", (run.status, run.error, run.end_time, {k: n for k, n in lost.items() if n}))


def finalize_files(run: "Run") -> None:
    """Convert the appended files to the chosen format (Parquet, netCDF, Zarr), keeping the CSV on failure."""
    fmt = run._format
    if not fmt.side:  # the appended files are the final ones (100,000 series: a second spent finding that out)
        return
    for s in list(run.metrics.series.values()):
        if not s.count:
            continue
        target = run.run_dir / f"metrics/{s.file_name}{fmt.suffix}"
        data = run.run_dir / s.data_file
        if data == target:
            continue
        try:
            meta = {"name": s.name, "context": str(s.context), "kind": s.kind.value, "unit": s.unit}
            s.location = fmt.finalize(data, target, run._separator, meta).relative_to(run.run_dir).as_posix()
        except Exception as exc:  # keep the other series' files
            run._refresher.report(f"finalize {s.sid}", f"could not convert {data.name}: {exc}")


def _extra_output(what: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Exception as exc:  # the run is saved; a card or a crate is a bonus
        warnings.warn(f"end_run: the run is saved, but the {what} could not be written: {exc}", stacklevel=5)
        return None


def _graphs(run: "Run", svg: bool) -> None:
    dot = run.prov_path.with_suffix(".dot")
    try:
        from ..provenance import dot as prov2dot

        prov2dot.convert(run.prov_path, dot)
        if svg:
            from ..provenance import svg as dot2svg

            dot2svg.convert(dot, run.prov_path.with_suffix(".svg"))
    except Exception as exc:  # the run is saved; a graph is a bonus
        warnings.warn(f"end_run: the PROV-JSON is saved, but the graph could not be made: {exc}", stacklevel=4)


def _collection(run: "Run") -> None:
    """Rank 0 links every document of the experiment, once every rank has written its own (on object storage:
    once every rank's last copy is in the bucket, where rank 0 reads them, whichever node wrote them)."""
    storage.finish(run._mirror, run._mirror_timeout)
    dist = layout.distributed()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()  # every rank calls end_run(create_provenance_collection=True)
    if run.rank != 0:
        return
    where = run.experiment_url or run.experiment_dir
    try:
        from ..provenance import collection as prov_collection

        prov_collection.create_collection(where, where)
    except Exception as exc:
        warnings.warn(f"end_run: the collection could not be made: {exc}", stacklevel=4)
