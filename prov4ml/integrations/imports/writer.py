"""Writes a :class:`~.source.SourceRun` as a prov4ml run, with the run's own recorders.

The run is a :class:`prov4ml.run.run.Run` like any other (its PROV-JSON, its
metric files, its ``summary_rank<k>.json``), started without the
reproducibility capture or the carbon meter (they would describe the importing
machine) and never made the process's active run (an import inside a
recorded script leaves the script's run alone). What the source says replaces
what a live run measures: its times, status, user, host, command and git
facts. A run whose import fails half-way is removed, so a second import
starts it again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, Optional

from ... import calls
from ...exceptions import ProvFileError
from ...provenance.summary import SUMMARY_FILE, read_summary
from ...run.layout import RUN_PREFIX
from ...run.run import Run
from .source import SourceRun

__all__ = ["record", "imported"]

#: start_run options of an imported run: nothing of the importing machine is measured.
OPTIONS = {"capture": False, "disable_codecarbon": True, "writer_process": False}


def imported(save_dir: Path) -> Dict[str, Path]:
    """The runs under ``save_dir`` that an import wrote: their ``provml:importedFrom`` -> run directory.

    Read from the runs' summaries (``imported_from``), which the final document's write brings.
    """
    found: Dict[str, Path] = {}
    for path in Path(save_dir).glob(f"*/{RUN_PREFIX}*/summary_rank*.json"):
        if not SUMMARY_FILE.match(path.name):
            continue
        try:
            origin = read_summary(path).get("imported_from")
        except ProvFileError:
            continue  # a summary being written, or of a later version: not one this import wrote
        if origin:
            found[origin] = path.parent
    return found


def record(src: SourceRun, save_dir: Path, namespace: str, experiment: Optional[str] = None) -> Path:
    """Write ``src`` as a new run of ``experiment`` (default: the source's) under ``save_dir``; returns its directory."""
    run = Run(namespace, experiment or src.experiment, str(save_dir), rank=src.rank, user=src.user, **OPTIONS)
    try:
        _write(run, src)
    except BaseException as exc:
        run.end(error=exc)
        shutil.rmtree(run.run_dir, ignore_errors=True)
        raise
    return run.run_dir


def _write(run: Run, src: SourceRun) -> None:
    first = last = None
    for (name, context), points in src.metrics.items():
        for step, value, when in points:
            run.log_metric(name, value, context, step, None, when)
            first = when if first is None else min(first, when)
            last = when if last is None else max(last, when)
    start = src.start if src.start is not None else first if first is not None else run.start_time
    end = src.end if src.end is not None else last
    run.start_time = start  # what the document says; the owner file keeps when this process began
    with run._lock:
        run.records.environment.clear()  # the importing machine's host is not the run's
        run.records.keep_capture({"host": src.host or "unknown", **src.environment}, src.command, None, [])
        run.records.command = src.command
    for key, value in src.params.items():
        run.log_param(key, value, source=src.tool)
    for f in src.files:
        directory, _, name = f.name.rpartition("/")
        # the call itself, not log_artifact's guess between call forms (a name can be a path of the working folder)
        run.log_artifact(calls.ArtifactCall(
            path=str(f.path), name=name, context=None, step=None, timestamp=end if end is not None else start,
            copy=f.copy, subdirectory=directory or None, is_model=False, is_input=f.is_input, source=src.tool,
            attributes=(),
        ))
    if src.tags:
        run.records.note("tag", [f"{k}: {v}" for k, v in src.tags.items()])
    run.records.note("importedLocation", src.location)
    run.records.note("importedFrom", src.imported_from)  # last: a run stopped before this is not taken as imported
    run.end(status=src.status, end_time=end)
