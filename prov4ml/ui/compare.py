"""The comparison of runs ticked in a runs list (``/compare?runs=``), of one experiment or several."""

from __future__ import annotations

from typing import Sequence

from .pages import _live, runs_table
from .store import RunHead, Store

__all__ = ["comparison"]


def comparison(store: Store, runs: Sequence[RunHead]) -> str:
    """The runs' table (every parameter and metric) and their metric plots overlaid, a line per run."""
    readable = [r for r in runs if r.readable]
    return ("<h2>Runs</h2>" + runs_table(runs, "runs-0", params_limit=None, metrics_limit=None)
            + "<h2>Metrics</h2>" + _live([(r.key, r.key) for r in readable]))
