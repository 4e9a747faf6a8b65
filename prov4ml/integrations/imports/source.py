"""A run of another tool as plain data: what each reader of :mod:`prov4ml.integrations.imports` produces.

A reader lists the runs of its source as :class:`Found` (the run's identity, cheap to list),
and loads one as a :class:`SourceRun` only when it is not imported yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

__all__ = ["Point", "SourceFile", "SourceRun", "Found", "typed", "STATUSES"]

#: (step, value, time in Unix seconds) of one metric point
Point = Tuple[int, float, float]

#: The statuses of the runs of other tools, as prov4ml's (records/model.py STATUSES).
STATUSES: Dict[str, str] = {
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
    "RUNNING": "running",
    "SCHEDULED": "running",  # MLflow: created, not started yet
}

_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class SourceFile:
    """A file of the source run: copied into the imported run (``copy``) or recorded where it is."""

    path: Path
    name: str  # its name in the run: a path relative to the run's artifacts/ (``a/b.png``)
    is_input: bool = False
    copy: bool = True


@dataclass
class SourceRun:
    """Everything a reader found about one run; :func:`~prov4ml.integrations.imports.writer.record` writes it."""

    tool: str  # "mlflow", "tensorboard", "yprov4ml"
    identity: str  # the tool's own name for this run: two imports of one identity are one run
    location: str  # where it was read from: a folder, a file or a URI
    experiment: str
    status: str = "finished"  # one of prov4ml's statuses
    start: Optional[float] = None  # Unix seconds; None: the first point's time
    end: Optional[float] = None  # None: the last point's time (a running run has none)
    params: Dict[str, Any] = field(default_factory=dict)
    #: (name, context or None for the run's default) -> points, in the order the source holds them
    metrics: Dict[Tuple[str, Optional[str]], Iterable[Point]] = field(default_factory=dict)
    files: List[SourceFile] = field(default_factory=list)
    tags: Dict[str, str] = field(default_factory=dict)
    user: Optional[str] = None
    host: Optional[str] = None
    command: Optional[str] = None
    environment: Dict[str, Any] = field(default_factory=dict)  # git_commit, git_branch, git_remote, python, ...
    rank: int = 0

    @property
    def imported_from(self) -> str:
        """What the document's ``provml:importedFrom`` says: ``<tool>:<identity>``."""
        return f"{self.tool}:{self.identity}"


@dataclass(frozen=True)
class Found:
    """A run of the source, listed: ``load(scratch)`` reads all of it (downloads go under ``scratch``)."""

    tool: str
    identity: str
    label: str  # how messages name it
    load: Callable[[Path], SourceRun]

    @property
    def imported_from(self) -> str:
        return f"{self.tool}:{self.identity}"


def typed(text: Any) -> Any:
    """A parameter the source kept as text, as the number or boolean it was, when writing that value back
    gives exactly this text (``str(0.001) == "0.001"``); any other text stays text."""
    if not isinstance(text, str):
        return text
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        value: Any = int(text)
        return value if str(value) == text else text
    try:
        value = float(text)
    except ValueError:
        return text
    return value if str(value) == text else text
