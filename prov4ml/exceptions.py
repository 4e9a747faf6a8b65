"""The exceptions prov4ml raises.

Every message names the problem and the fix. The tree::

    Prov4MLError
    ├── RunStateError            no active run / a run already active
    ├── InvalidValueError        (also ValueError) a bad argument: metric value,
    │                            context, sampler, key, option
    ├── ArgumentError            (also TypeError) missing, extra or repeated arguments
    ├── ArtifactError            (also FileNotFoundError) a missing or unsafe path
    ├── MissingDependencyError   (also ImportError) an optional extra is not installed
    ├── StorageError             (also OSError) the run directory cannot be written
    ├── RecoveryError            a run cannot be recovered (still running, no journal)
    ├── TrialTimeoutError        (also TimeoutError) a sweep trial ran past its timeout=
    └── ProvFileError            a file given to a CLI is missing, not PROV, or truncated
"""

from __future__ import annotations

__all__ = [
    "Prov4MLError",
    "RunStateError",
    "InvalidValueError",
    "ArgumentError",
    "ArtifactError",
    "MissingDependencyError",
    "ProvFileError",
    "StorageError",
    "RecoveryError",
    "TrialTimeoutError",
]


class Prov4MLError(Exception):
    """Root of every error prov4ml raises on purpose."""


class RunStateError(Prov4MLError, RuntimeError):
    """A call needs an active run (or no active run) and the state differs."""


class InvalidValueError(Prov4MLError, ValueError):
    """An argument has a type or value prov4ml cannot record."""


class ArgumentError(Prov4MLError, TypeError):
    """A call has missing, unexpected or repeated arguments."""


class ArtifactError(Prov4MLError, FileNotFoundError):
    """An artifact path does not exist or points outside the run directory."""


class MissingDependencyError(Prov4MLError, ImportError):
    """An optional dependency is needed; the message names the extra."""


class ProvFileError(Prov4MLError):
    """A file is missing, unreadable, or not a PROV-JSON document."""


class StorageError(Prov4MLError, OSError):
    """The run's directory cannot be created or written (read-only, missing, full)."""


class RecoveryError(Prov4MLError):
    """``recover`` cannot complete a run: it is still running, or it has no journal."""


class TrialTimeoutError(Prov4MLError, TimeoutError):
    """A sweep trial ran longer than ``sweep(..., timeout=)``; the trial's run is ended as failed."""
