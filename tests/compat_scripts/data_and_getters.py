"""The old import paths: PROV4ML_DATA, MetricsType / get_file_type, MetricInfo, functs, getters.

usage: python data_and_getters.py SAVE_DIR   (writes SAVE_DIR/seen.json)
"""

import json
import sys

import torch

import prov4ml
from prov4ml.constants import PROV4ML_DATA
from prov4ml.datamodel.metric_data import MetricInfo
from prov4ml.datamodel.metric_type import MetricsType, get_file_type
from prov4ml.functs import get_artifacts_dir, get_run_dir
from prov4ml.utils import getters

SAVE_DIR = sys.argv[1]
seen = {"before": {"is_collecting": PROV4ML_DATA.is_collecting, "metrics": len(PROV4ML_DATA.metrics)}}

prov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="data_and_getters",
    provenance_save_dir=SAVE_DIR,
    save_after_n_logs=7,
    metrics_file_type=MetricsType.CSV,
    unify_experiments=False,
)

prov4ml.log_param("lr", 0.001)
prov4ml.log_param("batch_size", 32)
prov4ml.log_param("optimizer", "adam")
prov4ml.log_param("shuffle", True)
logged = {"loss": [], "acc": []}
for epoch in range(5):
    loss, acc = 1.0 / (epoch + 3), torch.tensor(0.5 + epoch / 10)
    prov4ml.log_metric("loss", loss, prov4ml.Context["TRAINING"], step=epoch)
    prov4ml.log_metric("acc", acc, "validation", step=epoch)
    logged["loss"].append(loss)
    logged["acc"].append(acc.item())
prov4ml.log_metric("n_models", 2, prov4ml.Context.MODELS)
prov4ml.log_metric("n_samples", 100, prov4ml.Context.DATASETS)

seen["view"] = {
    "is_collecting": PROV4ML_DATA.is_collecting,
    "metrics_file_type": PROV4ML_DATA.metrics_file_type.name,
    "file_type": get_file_type(PROV4ML_DATA.metrics_file_type),
    "save_metrics_after_n_logs": PROV4ML_DATA.save_metrics_after_n_logs,
    "unify_experiments": PROV4ML_DATA.unify_experiments,
    "RUN_ID": PROV4ML_DATA.RUN_ID,
    "EXPERIMENT_DIR": PROV4ML_DATA.EXPERIMENT_DIR,
    "METRIC_DIR": PROV4ML_DATA.METRIC_DIR,
    "run_dir": get_run_dir(),
    "artifacts_dir": get_artifacts_dir(),
    "metrics": sorted([name, str(ctx), type(info).__name__, info.total_metric_values]
                      for (name, ctx), info in PROV4ML_DATA.metrics.items()),
    "is_metric_info": all(isinstance(i, MetricInfo) for i in PROV4ML_DATA.metrics.values()),
}
refused = []
for attribute in ("RUN_ID", "metrics", "save_metrics_after_n_logs", "brand_new"):
    try:
        setattr(PROV4ML_DATA, attribute, 99)
    except AttributeError as exc:
        refused.append([attribute, str(exc)])
seen["refused"] = refused
seen["RUN_ID_after"] = PROV4ML_DATA.RUN_ID
seen["saved_loss"] = PROV4ML_DATA.metrics[("loss", prov4ml.Context.TRAINING)].save_to_file(SAVE_DIR)
seen["documents"] = prov4ml.log_provenance_documents(create_graph=True, create_svg=True)
prov_json = str(prov4ml.end_run())
seen["after"] = {"is_collecting": PROV4ML_DATA.is_collecting}

# the getters, on the finished document, as a path and as a dict
doc = json.load(open(prov_json))
run_activity = next(a for a in getters.list_activities(doc) if ".context." not in a)
seen["getters"] = {
    "activities": getters.list_activities(prov_json),
    "metric_entities": getters.list_entities(doc, "provml:Metric"),
    "parameters": getters.list_parameters(prov_json),
    "lr_of_run": getters.get_parameter(doc, run_activity, "lr"),
    "run_id": getters.get_parameter(doc, run_activity, "run_id"),
    "status": getters.get_parameter(prov_json, run_activity, "provml:status"),
    "missing": getters.get_parameter(doc, run_activity, "no_such_thing"),
    "paths": getters.list_metric_paths(prov_json, context="training"),
    "csv_paths": sorted(getters.list_metric_paths(doc, file_type="csv").values()),
    "loss": getters.get_metric(prov_json, "loss")[["step", "value"]].to_dict("list"),
    "acc": getters.get_metric(doc, "acc", context="Validation")[["step", "value"]].to_dict("list"),
    "table": getters.list_metrics(prov_json)[["label", "context", "source", "count"]].sort_values("label").values.tolist(),
}
seen["logged"] = logged
seen["prov_json"] = prov_json
with open(f"{SAVE_DIR}/seen.json", "w") as fh:
    json.dump(seen, fh, default=str)
