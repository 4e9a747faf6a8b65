"""For code written for yProv4ML: its getters over a PROV-JSON, at their old import path.

Re-exported from :mod:`prov4ml.compat.getters`, which documents them.
"""

from ..compat.getters import (
    get_metric,
    get_parameter,
    list_activities,
    list_entities,
    list_metric_paths,
    list_metrics,
    list_parameters,
    list_provjson_in_proj,
    list_runs_in_proj,
)

__all__ = [
    "list_activities", "list_entities", "get_parameter", "list_parameters",
    "list_metrics", "list_metric_paths", "get_metric", "list_runs_in_proj", "list_provjson_in_proj",
]
