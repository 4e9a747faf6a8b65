"""A script written for yProv4ML that imports `yprov4ml` and cannot be edited.

usage: python -m prov4ml.compat.run_as_yprov4ml uses_yprov4ml.py SAVE_DIR
"""

import json
import sys

import yprov4ml
from yprov4ml.constants import PROV4ML_DATA
from yprov4ml.utils.getters import list_parameters

SAVE_DIR = sys.argv[1]

yprov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="uses_yprov4ml",
    provenance_save_dir=SAVE_DIR,
)
yprov4ml.log_param("lr", 0.5)
for epoch in range(3):
    yprov4ml.log_metric("loss", 1.0 / (epoch + 1), yprov4ml.Context.TRAINING, step=epoch)
run_dir = PROV4ML_DATA.EXPERIMENT_DIR
prov_json = str(yprov4ml.end_run())
with open(f"{SAVE_DIR}/seen.json", "w") as fh:
    json.dump({"module": yprov4ml.__name__, "file": yprov4ml.__file__, "run_dir": run_dir, "prov_json": prov_json,
               "params": list_parameters(prov_json), "argv": sys.argv}, fh)
