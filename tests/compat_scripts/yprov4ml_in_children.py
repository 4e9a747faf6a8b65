"""A script written for yProv4ML whose child processes import `yprov4ml` too.

usage: python -m prov4ml.compat.run_as_yprov4ml yprov4ml_in_children.py SAVE_DIR   (writes SAVE_DIR/seen.json)

Children: a spawn multiprocessing.Pool, a ProcessPoolExecutor on forkserver, a
dask LocalCluster of worker processes (each task records a run of its own),
and a plain subprocess.
"""

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import yprov4ml

SUBMODULES = ["constants", "functs", "utils.getters", "datamodel.metric_type", "datamodel.metric_data"]


def what_it_imports(_):
    """In a child: what `import yprov4ml` (and the submodules yProv4ML's users import) gives."""
    import importlib

    import prov4ml
    import yprov4ml as y

    same = [importlib.import_module(f"yprov4ml.{m}") is importlib.import_module(f"prov4ml.{m}") for m in SUBMODULES]
    from yprov4ml.constants import PROV4ML_DATA

    return {"pid": os.getpid(), "is_prov4ml": y is prov4ml, "file": y.__file__, "submodules": same,
            "data": PROV4ML_DATA is prov4ml.PROV4ML_DATA}


def dask_task(save_dir, i):
    """A dask task that imports yprov4ml and records a run of its own."""
    import yprov4ml as y

    y.start_run(prov_user_namespace="www.example.org", experiment_name=f"dask_task_{i}", provenance_save_dir=save_dir)
    values = [i * 10.0 + step for step in range(3)]
    for step, value in enumerate(values):
        y.log_metric("x", value, y.Context.TRAINING, step=step)
    prov_json = str(y.end_run())
    return {**what_it_imports(None), "prov_json": prov_json, "values": values,
            "experiment_dir": y.PROV4ML_DATA.EXPERIMENT_DIR}


if __name__ == "__main__":
    save_dir = sys.argv[1]
    seen = {"parent": os.getpid(), "parent_is_prov4ml": yprov4ml.__name__ == "prov4ml"}
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        seen["spawn_pool"] = pool.map(what_it_imports, range(2))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as executor:
        seen["forkserver"] = list(executor.map(what_it_imports, range(2)))

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        seen["dask"] = client.gather([client.submit(dask_task, save_dir, i, pure=False) for i in range(2)])
    code = "import yprov4ml, prov4ml; print(yprov4ml is prov4ml)"
    seen["subprocess"] = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    with open(os.path.join(save_dir, "seen.json"), "w") as fh:
        json.dump(seen, fh)
