"""Writes the yprov4ml run folders of this directory with the real reference library (see README.md).

Run once, in a throwaway virtual environment holding yprov4ml (not prov4ml):

    python make_runs.py OUTPUT_DIR

It records one run with known values and writes ``OUTPUT_DIR/expected_<version>.json``: every
value it logged (parameters, each metric point with its step and time, the artifact's sha256),
the oracle tests/test_import.py compares an import with.
"""

import hashlib
import inspect
import json
import os
import sys
from importlib.metadata import version

import torch

if sys.version_info < (3, 12):
    # yprov4ml 3.2.x's model-card module uses a Python 3.12 f-string (nested quotes), and torch 2.13.0 is here
    # for Python 3.11 only: a stand-in takes its place. Only end_run(create_card=True) calls it; this script does not.
    import types

    sys.modules["yprov4ml.prov2card"] = types.SimpleNamespace(convert=None)
import yprov4ml  # noqa: E402

OUT = os.path.abspath(sys.argv[1])
VERSION = version("yprov4ml")
MAJOR = int(VERSION.split(".")[0])
T0 = 1_700_000_000_000  # the points' times, in milliseconds since the epoch (the reference's unit)
PARAMS = {"lr": 0.001, "batch_size": 32, "optimizer": "adam"}


def loss(step):
    return round(1.0 / (1 + step), 6)


def accuracy(step):
    return round(0.5 + step / 100, 6)


def main():
    os.chdir(OUT)  # the reference writes scratch files (requirements, model files) into the working folder
    experiment = f"ref{MAJOR}"
    options = {"use_run_id": 0} if MAJOR >= 3 else {"disable_codecarbon": True}
    yprov4ml.start_run(experiment, prov_user_namespace="www.example.org", provenance_save_dir="prov",
                       save_after_n_logs=1000, **options)
    for key, value in PARAMS.items():
        yprov4ml.log_param(key, value)
    # 3.x names contexts with strings; 2.x has the Context enum
    training, validation = ("training", "validation") if MAJOR >= 3 else (yprov4ml.Context.TRAINING, yprov4ml.Context.VALIDATION)
    points = {"loss/training": [], "accuracy/validation": []}
    takes_timestamp = "timestamp" in inspect.signature(yprov4ml.log_metric).parameters
    for step in range(20):
        t = T0 + 1000 * step + 7
        kw = {"timestamp": t} if takes_timestamp else {}
        yprov4ml.log_metric("loss", loss(step), training, step=step, **kw)
        points["loss/training"].append([step, loss(step), t if takes_timestamp else None])
        if step % 5 == 4:
            yprov4ml.log_metric("accuracy", accuracy(step), validation, step=step, **kw)
            points["accuracy/validation"].append([step, accuracy(step), t if takes_timestamp else None])
    with open("notes.txt", "w") as fh:
        fh.write("a file the run logged as an artifact\n")
    yprov4ml.log_artifact("notes", "notes.txt", training)
    with open("notes.txt", "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    yprov4ml.end_run(create_graph=False, create_svg=False)
    expected = {"yprov4ml": VERSION, "torch": torch.__version__, "experiment": experiment, "params": PARAMS,
                "points": points, "artifacts": {"notes.txt": digest}}
    with open(f"expected_{VERSION}.json", "w") as fh:
        json.dump(expected, fh, indent=1)
    for scratch in ("notes.txt", "requirements.txt"):  # the reference keeps its copies in the run folder
        if os.path.exists(scratch):
            os.remove(scratch)


if __name__ == "__main__":
    main()
