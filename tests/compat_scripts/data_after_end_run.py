"""PROV4ML_DATA, at the top level, read during a run, after end_run, and during the next run.

usage: python data_after_end_run.py SAVE_DIR   (writes SAVE_DIR/seen.json)
"""

import json
import sys

import prov4ml
from prov4ml import PROV4ML_DATA
from prov4ml.constants import PROV4ML_DATA as AT_OLD_PATH

SAVE_DIR = sys.argv[1]
NAMES = sorted(n for n in dir(PROV4ML_DATA) if n not in ("metrics", "metrics_file_type"))


def view():
    out = {n: getattr(PROV4ML_DATA, n) for n in NAMES}
    out["metrics_file_type"] = PROV4ML_DATA.metrics_file_type.name
    out["metrics"] = sorted([name, str(ctx), info.total_metric_values] for (name, ctx), info in PROV4ML_DATA.metrics.items())
    return out


def refusals():
    out = []
    for name in ("EXPERIMENT_DIR", "RUN_ID", "brand_new"):
        try:
            setattr(PROV4ML_DATA, name, "x")
        except AttributeError as exc:
            out.append(str(exc))
    return out


seen = {"same_object": PROV4ML_DATA is AT_OLD_PATH, "in_all": "PROV4ML_DATA" in prov4ml.__all__}
try:
    PROV4ML_DATA.EXPERIMENT_DIR
except prov4ml.RunStateError as exc:
    seen["before"] = str(exc)
seen["repr_before"] = repr(PROV4ML_DATA)

prov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="after_end", provenance_save_dir=SAVE_DIR,
                  save_after_n_logs=9, csv_separator=";")
for step in range(4):
    prov4ml.log_metric("loss", 1.0 / (step + 1), prov4ml.Context.TRAINING, step=step)
seen["during"] = view()
seen["prov_json"] = str(prov4ml.end_run())
seen["after"] = view()
seen["repr_after"] = repr(PROV4ML_DATA)
seen["refused_after"] = refusals()
seen["saved_after"] = PROV4ML_DATA.metrics[("loss", prov4ml.Context.TRAINING)].save_to_file(SAVE_DIR)

prov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="after_end", provenance_save_dir=SAVE_DIR)
seen["next"] = view()
seen["refused_next"] = refusals()
prov4ml.end_run()
with open(f"{SAVE_DIR}/seen.json", "w") as fh:
    json.dump(seen, fh)
