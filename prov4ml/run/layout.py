"""Where a run lives: rank detection, run ids and run directories.

Ranks of one distributed launch share one run directory: with
``torch.distributed`` initialised, rank 0 picks the id and broadcasts it;
under a launcher that only sets ``RANK``/``WORLD_SIZE`` (torchrun before
``init_process_group``), the ranks agree through a marker file written under
a file lock, keyed by the launch (rendezvous id, master address and port,
parent process) and by how many runs this process has started. A run
recorded to a bucket also claims its id there (docs/storage.md), so hosts
that share the bucket but not a disk never get the same id.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import sys
from pathlib import Path
from typing import Iterator, Optional, Protocol, Tuple

from ..exceptions import InvalidValueError

__all__ = ["detect_rank", "world_size", "allocate_run_dir", "distributed", "RUN_PREFIX"]

RUN_PREFIX = "run_"
_RUN_RE = re.compile(rf"^{RUN_PREFIX}(\d+)$")
_process_runs = itertools.count()


def distributed():
    """``torch.distributed`` when it is imported and initialised (torch is never imported here)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist
    return None


def detect_rank(rank: Optional[int]) -> int:
    """``rank`` if given, else torch.distributed's rank, else the first of ``RANK_VARIABLES`` set, else 0."""
    if rank is not None:
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise InvalidValueError(f"rank must be a non-negative integer, got {rank!r}")
        return rank
    dist = distributed()
    if dist is not None:
        return dist.get_rank()
    for variable in RANK_VARIABLES:
        env = os.environ.get(variable)
        if env is not None:
            try:
                return int(env)
            except ValueError:
                raise InvalidValueError(f"the {variable} environment variable is {env!r}, not an integer; fix or unset it") from None
    return 0


#: where launchers put a process's rank, in the order they are read: torchrun, SLURM (srun), Open MPI,
#: MPICH/Intel MPI, PMIx, then the node-local ranks (right on one node) of torchrun and SLURM
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "LOCAL_RANK", "SLURM_LOCALID")


def world_size() -> int:
    dist = distributed()
    if dist is not None:
        return dist.get_world_size()
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _existing_ids(exp_dir: Path) -> Iterator[int]:
    for entry in os.scandir(exp_dir):
        m = _RUN_RE.match(entry.name)
        if m and entry.is_dir():
            yield int(m.group(1))


class RunClaim(Protocol):
    """Run ids shared beyond this host (a bucket: ``prov4ml.storage.remote.Remote``)."""

    def first_free(self, exp_dir: Path) -> int: ...

    def claim(self, run_dir: Path, run_id: int) -> bool: ...


def _claim_next(exp_dir: Path, claim: Optional[RunClaim] = None) -> int:
    run_id = max(_existing_ids(exp_dir), default=-1) + 1
    if claim is not None:
        run_id = max(run_id, claim.first_free(exp_dir))
    while True:  # another process may take the same id between scan and mkdir
        run_dir = exp_dir / f"{RUN_PREFIX}{run_id}"
        try:
            run_dir.mkdir()
        except FileExistsError:
            run_id += 1
            continue
        if claim is None or claim.claim(run_dir, run_id):
            return run_id
        run_dir.rmdir()  # another host's run: only a reader's copy of it belongs here
        run_id += 1


@contextlib.contextmanager
def _locked(exp_dir: Path):
    try:
        import fcntl
    except ImportError:  # Windows: no launcher we support sets RANK without torch.distributed there
        yield
        return
    with open(exp_dir / ".prov4ml.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _launch_key(ordinal: int) -> str:
    parts = [os.environ.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE")]
    parts += [str(os.getppid()), str(ordinal)]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def allocate_run_dir(
    exp_dir: Path, rank: int, run_id: Optional[int] = None, claim: Optional[RunClaim] = None
) -> Tuple[int, Path]:
    """Create (or join, for ranks > 0 of one launch) the directory of a new run.

    With ``claim``, a new id is also claimed there (a run directory in a bucket
    shared by several hosts): an id taken there is skipped.
    """
    exp_dir.mkdir(parents=True, exist_ok=True)
    ordinal = next(_process_runs)
    if run_id is None:
        dist = distributed()
        if dist is not None and dist.get_world_size() > 1:
            box = [_claim_next(exp_dir, claim) if dist.get_rank() == 0 else None]
            dist.broadcast_object_list(box, src=0)
            run_id = int(box[0])
        elif world_size() > 1:
            marker = exp_dir / f".launch-{_launch_key(ordinal)}"
            with _locked(exp_dir):
                if marker.exists():
                    run_id = int(marker.read_text())
                else:
                    run_id = _claim_next(exp_dir, claim)
                    marker.write_text(str(run_id))
        else:
            run_id = _claim_next(exp_dir, claim)
    elif not isinstance(run_id, int) or isinstance(run_id, bool) or run_id < 0:
        raise InvalidValueError(f"run_id must be a non-negative integer, got {run_id!r}")
    run_dir = exp_dir / f"{RUN_PREFIX}{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    claim_rank(run_dir, rank)
    return run_id, run_dir


def claim_rank(run_dir: Path, rank: int) -> None:
    """Claim (rank, run) for this process, atomically: a second claimant gets a clear error.

    The claim is a file created with O_EXCL that is never removed, so neither
    a racing process nor a later one can record into a rank that was taken.
    """
    marker = run_dir / f".rank{rank}.claimed"
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise InvalidValueError(
            f"{run_dir} already has a rank {rank} (claimed by {_claimant(marker)}); pass another run_id or "
            "rank, or leave run_id unset to get a new run"
        ) from None
    try:
        os.write(fd, f"{os.getpid()} {os.uname().nodename if hasattr(os, 'uname') else ''}\n".encode())
    finally:
        os.close(fd)


def _claimant(marker: Path) -> str:
    try:
        pid, _, host = marker.read_text().strip().partition(" ")
        return f"pid {pid} on {host}" if host else f"pid {pid}"
    except OSError:
        return "another process"
