"""The status of a run: its ranks' most severe, and whether a killed process left it to ``prov4ml recover``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Union

from ..exceptions import Prov4MLError
from ..records.model import SEVERITY

__all__ = ["SEVERITY", "KILLED", "merge", "needs_recovery"]

#: How ``status`` reads for a run whose process died before ``end_run``.
KILLED = "killed (needs prov4ml recover)"


def merge(statuses: Iterable[Optional[str]]) -> str:
    """The most severe of the ranks' statuses (a rank that recorded none is ``running``)."""
    return max((s or "running" for s in statuses), key=lambda s: SEVERITY.get(s, 1), default="running")


def needs_recovery(run_dir: Union[Path, str], quiet: bool = False) -> List[int]:
    """The ranks of ``run_dir`` (a directory or a run's URL) whose process died before ``end_run`` (their
    journal says so; on object storage, their leases too).

    ``quiet``: an unreadable journal reads as none instead of raising.
    """
    from .._fs import is_url
    from ..run.recovery import needs_recovery as journal_says  # the journal's state: only for runs not ended

    try:
        return journal_says(run_dir if is_url(run_dir) else Path(run_dir))
    except (OSError, Prov4MLError):
        if quiet:
            return []
        raise
