"""``prov4ml recover RUN_DIR``: complete a run that a SIGKILL, the OOM killer or a power cut left ``running``.

From each rank's journal (``<run_dir>/.prov4ml/rank<k>/``) the metric files
are rebuilt exactly, the series summaries recomputed, half-written temporary
files removed, and the PROV-JSON rewritten with status ``killed``, an end time
(the last point's) and a note saying it was recovered. Running it again
changes nothing; a run whose process is still alive is refused.

A run on object storage (``recover("s3://bucket/prefix/exp/run_0")``) is
brought into this host's staging directory, completed there and uploaded:
any host can recover it, with the points whose journal reached the bucket.
Whether its ranks are alive is told by their leases in the bucket
(``storage/lease.py``), as another host cannot check a pid.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Union

from .._fs import is_temporary, remove_if_empty
from ..records import state as _state
from ..records.journal import read_records
from ..records.model import FinalValue, RunSnapshot, utc
from ..records.recorder import replay
from ..exceptions import RecoveryError
from ..metrics import _sink
from ..metrics.formats import get_format, remove_temporaries
from ..metrics.journal import SPARE, read_series
from ..provenance.live import with_summaries
from .. import storage

__all__ = ["recover", "needs_recovery"]

_SUFFIX = ".recovering"
_UNFINISHED = ("running", "incomplete")  # statuses whose journal holds what the files lack


def needs_recovery(run_dir: Union[str, Path]) -> List[int]:
    """The ranks of ``run_dir`` (a directory or a run's URL) whose process died before ``end_run`` (empty when none)."""
    local, leases = _located(run_dir)
    return [rank for rank, rank_dir in _rank_dirs(local)
            if not _alive(rank, rank_dir, leases) and _status(rank_dir) in _UNFINISHED]


def _located(run_dir: Union[str, Path]) -> tuple:
    """The local directory of ``run_dir`` (a URL: its staging copy, brought up to date) and the leases of its ranks
    (None for a local run: its owners' pids tell)."""
    if not storage.is_url(run_dir):
        return Path(run_dir), None
    remote = storage.Remote(str(run_dir))
    local = storage.local_view(str(run_dir))
    return local, storage.read_leases(remote, local)


def _rank_dirs(run_dir: Path) -> List[tuple]:
    return [(int(d.name[4:]), d) for d in sorted(Path(run_dir, _state.STATE_DIR).glob("rank*")) if d.name[4:].isdigit()]


def _alive(rank: int, rank_dir: Path, leases: Optional[Dict[int, "storage.lease.LeaseState"]]) -> bool:
    """Whether the process recording ``rank`` may still run: its pid on this host, else (a URL) its lease."""
    owner = _state.read_owner(rank_dir)
    if leases is None or owner and owner.get("host") == socket.gethostname():  # a pid here tells for sure
        return _state.owner_alive(owner)
    lease = leases.get(rank)
    return lease is not None and lease.alive  # no lease: the rank released it at its end, or never ran


def _status(rank_dir: Path) -> Optional[str]:
    try:
        return _state.load_snapshot(rank_dir).status
    except Exception:
        return "running" if (rank_dir / "series.jsonl").exists() else None


def recover(run_dir: Union[str, Path], force: bool = False) -> List[Union[Path, str]]:
    """Complete every rank of ``run_dir`` left ``running``; returns the documents rewritten (URLs for a URL).

    ``force=True`` skips the check that the recording process is gone (use it
    only for a run whose process you know ended: a run copied from another
    host, or one on object storage whose node froze before its lease expired).
    """
    if not storage.is_url(run_dir):
        return _recover(Path(run_dir).resolve(), None, force)
    url = str(run_dir).rstrip("/")
    remote = storage.Remote(url)
    local, leases = _located(url)
    done = _recover(local, leases, force)
    storage.push(url)
    for path in done:
        rank = int(path.stem[len("prov_rank"):])
        storage.remove_lease(remote, local, rank)  # the rank is complete: no host waits on it any more
    return [remote.url_of(path) for path in done]


def _recover(run_dir: Path, leases: Optional[Dict[int, "storage.lease.LeaseState"]], force: bool) -> List[Path]:
    root = run_dir / _state.STATE_DIR
    if not root.is_dir():
        if not run_dir.is_dir():
            raise RecoveryError(f"{run_dir} is not a directory; pass a run directory such as prov/<experiment>/run_0")
        return []  # ended cleanly (or never recorded): nothing to complete
    ranks = _rank_dirs(run_dir)
    if not force:
        for rank, rank_dir in ranks:
            if _status(rank_dir) in _UNFINISHED and _alive(rank, rank_dir, leases):
                raise RecoveryError(_live_message(run_dir, rank, rank_dir, leases))
    done = []
    for _rank, rank_dir in ranks:
        path = _recover_rank(run_dir, rank_dir, _state.read_owner(rank_dir) or {})
        if path is not None:
            done.append(path)
    _remove_temporaries(run_dir, _logged_paths(run_dir, ranks))
    return done


def _live_message(run_dir: Path, rank: int, rank_dir: Path, leases: Optional[Dict[int, "storage.lease.LeaseState"]]) -> str:
    lease = (leases or {}).get(rank)
    if lease is not None and lease.alive:
        return (f"{run_dir.name} is still being recorded: {lease.describe()}; wait for it to end, or for its lease "
                "to expire if its node is lost, then run recover again (--force / force=True recovers it now)")
    owner = _state.read_owner(rank_dir) or {}
    return (f"{run_dir} is still being recorded by pid {owner.get('pid')} on {owner.get('host')}; "
            "wait for it to end (or stop it), then run recover again")


def _recover_rank(run_dir: Path, rank_dir: Path, owner: dict) -> Optional[Path]:
    try:
        snap = _state.load_snapshot(rank_dir)
    except FileNotFoundError:
        raise RecoveryError(f"{rank_dir} has no state.pickle: the run was killed before its first document") from None
    except Exception as exc:
        raise RecoveryError(f"{rank_dir}/state.pickle is unreadable ({exc}); the metric journal is intact") from None
    if snap.status not in _UNFINISHED:
        return None  # already complete (a second recover changes nothing)
    _wait_for_sink(rank_dir)  # it may still be finishing the files: never write beside it
    (rank_dir / SPARE).unlink(missing_ok=True)  # the writer is gone: its spare segment holds nothing
    fmt = get_format(owner.get("format", "csv"), owner.get("compressor"))
    consumer = _sink.Consumer(str(rank_dir), str(run_dir), owner.get("separator", ","), suffix=_SUFFIX, truncate=True)
    try:
        consumer.poll(final=True)
        consumer.fsync()
    finally:
        consumer.close()
    if consumer.backlog and any(consumer.backlog.values()):
        raise RecoveryError(f"could not write the metric files of {run_dir}: {consumer.errors[-1] if consumer.errors else 'disk full'}")
    last_times = [stats[9] for stats in consumer.stats.values() if stats[0]]

    def finalize(sid: int, meta: dict, stats: list) -> Optional[str]:
        if not stats[0]:  # no row: no file, not even one the sink made ahead of rows that never came
            remove_if_empty(run_dir / meta["file"])
            return None
        data = run_dir / meta["file"]
        try:
            os.replace(str(data) + _SUFFIX, data)
        except OSError as exc:
            raise RecoveryError(f"could not put the recovered rows of metric {meta['name']!r} in place at {data} "
                                f"({exc.strerror or exc}); move what is there away and run recover again") from None
        return fmt.finalize(data, fmt.target_of(data), owner.get("separator", ","), meta).relative_to(run_dir).as_posix()

    snap = with_summaries(_with_journaled_records(snap, rank_dir), read_series(str(rank_dir)), consumer.summaries(), finalize)
    if snap.status in _UNFINISHED:
        snap.status = "killed" if snap.status == "running" else "finished"  # an incomplete run had ended
    if snap.status == "killed" or snap.end_time is None:  # killed, or in end_run before its end time was known
        end = utc(max(last_times)) if last_times else snap.start_time
        # points logged with explicit timestamps may predate the run: its end is never before its start
        times = [a.time for a in snap.artifacts if a.time is not None] + [end, snap.start_time]
        snap.end_time = max(t for t in times if t is not None)
    how = ("ended without end_run" if snap.status == "killed"
           else "ended before end_run had written every file")
    snap.notes = {**snap.notes, "recovered": (
        f"completed from the journal by prov4ml recover at {datetime.now(timezone.utc).isoformat(timespec='seconds')}; "
        f"the process (pid {owner.get('pid', '?')}) {how}"
    )}
    from ..provenance import write_document
    from ..provenance.summary import write_summary

    path = run_dir / f"prov_rank{snap.rank}.json"
    write_document(path, snap, fsync=True)
    write_summary(run_dir, snap, owner, fsync=True)
    _state.save_snapshot(rank_dir, snap)  # last: a recover cut short is simply run again
    return path


#: How a record is told apart from the others of its list, when the journal and the snapshot are merged
_IDENTITY = {
    "params": lambda p: p.key,
    "artifacts": lambda a: (a.location, a.role),
    "models": lambda m: m.name,
    "versions": lambda v: (v.model_name, v.version),
    "datasets": lambda d: (d.label, d.context),
}


def _with_journaled_records(snap: RunSnapshot, rank_dir: Path) -> RunSnapshot:
    """``snap`` (the records at the last refresh) with every record the record journal holds."""
    frames = read_records(str(rank_dir))
    if not frames:
        return snap  # a journal written before records were journaled: the snapshot is all there is
    fields = replay(frames)
    contexts = dict(snap.contexts)
    for ctx, (start, end) in fields.pop("contexts").items():
        old = contexts.get(ctx)
        contexts[ctx] = (start, end) if old is None else (min(old[0], start), max(old[1], end))
    outcome = fields.pop("outcome")
    saved = {f.name for f in snap.final_metrics}
    missing = [FinalValue(name, None, operation, "registered after the run's last refresh: its value was not saved")
               for name, operation in fields.pop("finals").items() if name not in saved]
    if outcome is not None:  # end_run had begun: the run ended as it says, only its files were left to finish
        status, error, end_time, lost = outcome
        snap.status, snap.error, snap.end_time = status, error, utc(end_time)
        snap.notes = {**snap.notes, **lost}  # what it could not keep, though its last document was not written
    for name, key in _IDENTITY.items():  # a record the journal missed (a full disk) but a refresh saved is kept
        replayed = fields[name]
        known = {key(x) for x in replayed}
        fields[name] = replayed + [x for x in getattr(snap, name) if key(x) not in known]
    command = fields.pop("command") or snap.command
    notes = {**snap.notes, **fields.pop("notes")}
    environment = {**snap.environment, **fields.pop("environment")}
    return dataclasses.replace(snap, **fields, contexts=contexts, command=command, notes=notes, environment=environment,
                               final_metrics=[*snap.final_metrics, *missing])


def _wait_for_sink(rank_dir: Path, timeout: float = 120.0) -> None:
    """Let the sink of a killed run finish reading its journal (it then removes ``sink.pid``); stop it past ``timeout``."""
    import signal
    import time

    pid_file = rank_dir / "sink.pid"
    try:
        pid = int(pid_file.read_text())
        import psutil

        proc = psutil.Process(pid)
        # the pid was reused by another program, or by a process started after the file was written
        if not any("_sink.py" in part for part in proc.cmdline()) or proc.create_time() > pid_file.stat().st_mtime + 1:
            return
    except Exception:  # no pid file, no psutil, the process already gone
        return
    deadline = time.monotonic() + timeout
    while pid_file.exists() and proc.is_running() and proc.status() != "zombie" and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_file.exists() and proc.is_running() and proc.status() != "zombie":
        os.kill(pid, signal.SIGKILL)


def _logged_paths(run_dir: Path, ranks: List[tuple]) -> List[Path]:
    """The files and folders the run logged (artifacts, models, versions): the user's, whatever their names."""
    paths = []
    for _rank, rank_dir in ranks:
        try:
            snap = _state.load_snapshot(rank_dir)
        except Exception:  # a rank whose records cannot be read: its recover said so
            continue
        records = [*snap.artifacts, *(v.artifact for v in snap.versions)]
        records += [r for m in snap.models for r in (m.artifact, m.architecture, m.layers) if r is not None]
        paths += [run_dir / r.location for r in records if r.location]  # an absolute location stays absolute
    return paths


def _remove_temporaries(run_dir: Path, logged: List[Path]) -> None:
    """Half-written files of a killed run: atomic writes' temporaries and unfinished recoveries, never a path the
    run ``logged`` nor one inside it (a checkpoint folder may hold a ``.lock.tmp`` of its own)."""
    import shutil

    kept = set(logged)

    def ours(path: Path) -> bool:
        return _state.STATE_DIR not in path.parts and path not in kept and kept.isdisjoint(path.parents)

    remove_temporaries(run_dir / "metrics")
    for path in run_dir.rglob("*"):
        if path.is_file() and is_temporary(path.relative_to(run_dir).as_posix()) and ours(path):
            path.unlink()
    for path in run_dir.rglob(".*.partial"):
        if path.is_dir() and ours(path):
            shutil.rmtree(path, ignore_errors=True)
    for path in (run_dir / _state.STATE_DIR).glob(_state.REMOVING + "*"):  # an end_run killed while it tidied up
        shutil.rmtree(path, ignore_errors=True)
    try:
        (run_dir / _state.STATE_DIR).rmdir()
    except OSError:  # ranks still hold state (a recovered run keeps its records), or no such folder
        pass
