"""What yprov4ml 3.2.8's own getters (yprov4ml.utils.getters) return for a run folder's document.

usage (in the folder that holds prov/, with yprov4ml 3.2.8 installed):
    python reference_getters.py prov/<exp>_<n>/prov_<exp>_GR0_<n>.json > expected_getters.json
"""

import json
import sys

import pandas as pd

from yprov4ml.utils import getters

path = sys.argv[1]
with open(path, encoding="utf-8") as fh:
    doc = json.load(fh)


def frame(df):
    """A DataFrame as plain JSON: its columns in order and its rows by index."""
    if not isinstance(df, pd.DataFrame):
        return None
    return {"columns": list(df.columns), "index": list(df.index), "rows": df.astype(object).where(df.notna(), None).values.tolist()}


run = getters.list_activities(doc)[0]
metrics = getters.list_entities(doc, "provml:Metric")
out = {
    "document": path,
    "list_activities": getters.list_activities(path),
    "list_entities": getters.list_entities(doc),
    "list_entities_by_type": {t: getters.list_entities(doc, t) for t in
                              ("provml:Model", "provml:Metric", "provml:Dataset", "provml:HyperParameter")},
    "get_parameter": {
        "run_id": getters.get_parameter(doc, run, "run_id"),
        "experiment_dir": getters.get_parameter(doc, run, "experiment_dir"),
        "missing": getters.get_parameter(doc, run, "no_such_thing"),
    },
    "list_parameters_of": {name: getters.list_parameters(doc, name) for name in getters.list_entities(doc)[:4]},
    "list_parameters_of_raw": {name: getters.list_parameters(doc, name, unwrap=False) for name in getters.list_entities(doc)[:4]},
    "list_metrics": frame(getters.list_metrics(path)),
    "list_metrics_validation": frame(getters.list_metrics(doc, context="Validation")),
    "list_metric_paths": getters.list_metric_paths(doc),
    "list_metric_paths_validation": getters.list_metric_paths(path, context="Validation"),
    "list_metric_paths_csv": getters.list_metric_paths(doc, file_type="csv"),
    "get_metric": {
        f"{getters.get_parameter(doc, m, 'label')}|{getters.get_parameter(doc, m, 'context')}":
            frame(getters.get_metric(doc, getters.get_parameter(doc, m, "label"), getters.get_parameter(doc, m, "context"),
                                     getters.get_parameter(doc, m, "source")))
        for m in metrics
    },
    "list_runs_in_proj": sorted(str(p) for p in getters.list_runs_in_proj("prov")),
    "list_provjson_in_proj": sorted(str(p) for p in getters.list_provjson_in_proj("prov")),
}
json.dump(out, sys.stdout, indent=1, default=str)
print()
