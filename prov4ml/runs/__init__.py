"""The one reader of recorded runs: find them, read their documents, metric series and status.

Every command, the UI and :mod:`prov4ml.analysis` read runs through here;
nothing else parses a run's ``prov_rank<k>.json`` or its metric files (the
writers in :mod:`prov4ml.metrics` and :mod:`prov4ml.provenance`, and
``recover``, aside). No pandas, no ``prov`` object model: plain JSON and NumPy.

==============  ==========================================================
module          what it holds
==============  ==========================================================
``find``        where runs are: :func:`find_run_dirs`, :func:`resolve_run`,
                :func:`rank_files`, :func:`walk`, :func:`local` (a URL's copy)
``document``    one rank's document as plain JSON: :func:`read_rank`,
                :class:`RankDocument`, :func:`load_json`
``series``      metric series: :class:`Series` (the entity's summary),
                :func:`read_points` (any metric file format), :class:`Points`
``tail``        new points of a CSV metric file since a byte offset
``status``      a run's status over its ranks, and whether it needs recover
``record``      :class:`RunRecord` and :func:`read_run` (every rank merged),
                :func:`metric_figures`
==============  ==========================================================
"""

from .document import ARTIFACT_KINDS, RankDocument, load_json, read_json, read_rank
from .find import (
    DEFAULT_DIR,
    experiment_candidates,
    experiment_runs,
    find_run_dirs,
    is_run_dir,
    local,
    rank_files,
    resolve_run,
    walk,
)
from .record import KEY_PACKAGES, RunRecord, higher_is_better, metric_figures, read_run
from .series import READERS, Points, Series, csv_rows, read_points, read_series, reference_csv_rows
from .status import KILLED, SEVERITY, merge, needs_recovery
from .tail import Chunk, read_new

__all__ = [
    "DEFAULT_DIR", "KILLED", "SEVERITY", "READERS", "ARTIFACT_KINDS", "KEY_PACKAGES",
    "RunRecord", "RankDocument", "Series", "Points", "Chunk",
    "read_run", "read_rank", "read_points", "read_series", "read_new", "load_json", "read_json", "csv_rows",
    "reference_csv_rows",
    "find_run_dirs", "experiment_runs", "resolve_run", "experiment_candidates", "rank_files", "is_run_dir",
    "walk", "local", "metric_figures", "higher_is_better", "merge", "needs_recovery",
]
