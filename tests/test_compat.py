"""Code written for yProv4ML runs on prov4ml: scripts in its examples' style, run as real processes.

Each script in tests/compat_scripts/ imports only prov4ml (or yprov4ml, through the
opt-in alias), does what yProv4ML's examples do, and leaves what it saw in a file;
the tests compare that with what the run recorded, exactly.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import prov4ml
from conftest import ROOT, entities_of_type, literal, load_doc, load_json, series_entity, location
from prov4ml._fs import hash_path
from prov4ml.compat import arrays
from prov4ml.exceptions import InvalidValueError, RunStateError

SCRIPTS = ROOT / "tests" / "compat_scripts"
torch = pytest.importorskip("torch")


def run_script(args, cwd, env=None, expect=0, module=False):
    command = [sys.executable, *(["-m"] if module else []), *map(str, args)]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def points(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [int(r["step"]) for r in rows], [float(r["value"]) for r in rows]


def artifacts_by_location(doc_json, type_name):
    return {location(a["prov:location"]): {k: literal(v) for k, v in a.items()}
            for a in entities_of_type(doc_json, type_name).values()}


# ---------------------------------------------------------------------------- ProvenanceTrackedFunction
def test_tracked_function_logs_each_returned_value_as_a_point(tmp_path):
    run_script([SCRIPTS / "tracked_function.py", tmp_path], tmp_path)
    seen = load_json(tmp_path / "returned.json")
    run_dir = tmp_path / "tracked_function" / "run_0"
    doc = load_json(run_dir / "prov_rank0.json")
    for name, context in (("MSELoss", "training"), ("mae", "validation")):
        series = series_entity(doc, name, context)
        steps, values = points(run_dir / location(series["prov:location"]))
        assert values == seen["returned"][name]  # bit for bit: repr round-trips
        assert steps == list(range(len(values)))
        assert seen["calls"][name] == len(values) == series["provml:count"]
    assert seen["name"] == "MSELoss" and seen["reduction"] == "mean"  # attributes reach the wrapped loss
    load_doc(run_dir / "prov_rank0.json")


def test_tracked_function_refuses_what_is_not_callable_and_results_that_are_not_numbers(start):
    with pytest.raises(InvalidValueError, match="needs a callable"):
        prov4ml.ProvenanceTrackedFunction(3)
    start()
    pair = prov4ml.ProvenanceTrackedFunction(lambda: (1.0, 2.0))
    with pytest.raises(InvalidValueError, match="<lambda>"):
        pair()
    vector = prov4ml.ProvenanceTrackedFunction(lambda: torch.ones(3))
    with pytest.raises(InvalidValueError, match="shape"):
        vector()


# ---------------------------------------------------------------------------- ProvenanceTrackedModel
@pytest.mark.parametrize("fmt", ["zarr", "npy"])
def test_tracked_model_is_the_model_and_records_every_layer_exactly(tmp_path, fmt):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    run_script([SCRIPTS / "tracked_model.py", tmp_path, fmt], tmp_path)
    expected = torch.load(tmp_path / "expected.pt")
    assert all(expected["checks"].values()), expected["checks"]
    assert len(expected["outputs"]) == 5
    for ours, theirs in zip(expected["outputs"], expected["reference_outputs"]):
        assert torch.equal(ours, theirs)  # forward results bit-identical to the unwrapped copy's

    run_dir = tmp_path / "tracked_model" / "run_0"
    doc = load_json(run_dir / "prov_rank0.json")
    layers = artifacts_by_location(doc, "provml:LayerData")
    suffix = arrays.ROWS_SUFFIX[fmt]
    assert sorted(layers) == sorted(f"artifacts/layers/{p}{suffix}" for p in
                                    ("classifier/features.0", "classifier/head", "Linear/self"))
    for name, seen in expected["seen"].items():
        location = f"artifacts/layers/classifier/{name}{suffix}"
        attrs = layers[location]
        assert attrs["provml:context"] == "training"
        assert (attrs["provml:sha256"], attrs["provml:size_bytes"]) == hash_path(run_dir / location)
        rows = arrays.read_rows(run_dir / location)
        for direction in ("input", "output"):
            (recorded,) = rows[direction]  # one row shape: one array
            assert np.array_equal(recorded, torch.cat(seen[direction]).numpy())
            assert recorded.dtype == np.float32
        if fmt == "npy":  # 17 rows in chunks of 5
            chunks = sorted((run_dir / location).glob("output_*.npy"))
            assert [len(np.load(c)) for c in chunks] == [5, 5, 5, 2]
        else:
            zarr = pytest.importorskip("zarr")
            assert zarr.open_group(str(run_dir / location), mode="r")["output"].chunks[0] == 5
    one = arrays.read_rows(run_dir / f"artifacts/layers/Linear/self{suffix}")
    assert np.array_equal(one["input"][0], np.ones((2, 3), dtype=np.float32))
    assert np.array_equal(one["output"][0], expected["one_arg_output"].numpy())
    load_doc(run_dir / "prov_rank0.json")


def test_tracked_model_keeps_rows_of_another_shape_apart_and_closes_on_demand(start, tmp_path):
    run = start()
    net = torch.nn.Sequential(torch.nn.Conv1d(1, 1, 2))
    tracked = prov4ml.ProvenanceTrackedModel("seq", net, chunk_size=4, array_format="npy")
    first, second = torch.randn(3, 1, 5), torch.randn(2, 1, 7)
    out1, out2 = tracked(first), tracked(second)
    tracked.close()
    (record,) = [a for a in run.snapshot().artifacts if a.role == "layer_data"]
    rows = arrays.read_rows(run.run_dir / record.location)
    assert [a.shape for a in rows["input"]] == [(3, 1, 5), (2, 1, 7)]
    assert np.array_equal(rows["output"][1], out2.detach().numpy())
    assert np.array_equal(rows["output"][0], out1.detach().numpy())


def test_tracked_model_refuses_what_is_not_a_module():
    with pytest.raises(InvalidValueError, match="torch.nn.Module"):
        prov4ml.ProvenanceTrackedModel("label", object())
    tracked = prov4ml.WeightDistributionTrackedModel(torch.nn.Linear(1, 1))
    with pytest.raises(InvalidValueError, match="already a WeightDistributionTrackedModel; wrap the original"):
        prov4ml.ProvenanceTrackedModel(tracked)
    with pytest.raises(InvalidValueError, match="array_format"):
        prov4ml.ProvenanceTrackedModel(torch.nn.Linear(1, 1), array_format="hdf5")


def test_a_copy_or_pickle_of_a_tracked_model_is_of_the_original_class_and_records_nothing(start):
    import copy
    import io

    run = start()
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    tracked = prov4ml.ProvenanceTrackedModel("copy", net, array_format="npy", chunk_size=1)
    twin = copy.deepcopy(tracked)
    buffer = io.BytesIO()
    torch.save(tracked, buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    for other in (twin, loaded):
        assert type(other) is torch.nn.Sequential
        assert torch.equal(other[0].weight, net[0].weight) and other[0].weight is not net[0].weight
        other(torch.ones(1, 2))
    assert not (run.artifacts.root / "layers").exists()  # neither copy recorded
    tracked(torch.ones(1, 2))
    assert sorted(p.name for p in (run.artifacts.root / "layers" / "copy" / "0").iterdir()) == ["input_000000.npy", "output_000000.npy"]


# ---------------------------------------------------------------------------- WeightDistributionTrackedModel
@pytest.mark.parametrize("fmt", ["zarr", "npy"])
def test_weight_files_hold_exactly_the_weights_of_each_epoch(tmp_path, fmt):
    if fmt == "zarr":
        pytest.importorskip("zarr")
    run_script([SCRIPTS / "weight_distribution.py", tmp_path, fmt], tmp_path)
    snapshots = torch.load(tmp_path / "expected.pt")
    run_dir = tmp_path / "weight_distribution" / "run_0"
    doc = load_json(run_dir / "prov_rank0.json")
    weights = artifacts_by_location(doc, "provml:LayerWeights")
    suffix = arrays.ARRAYS_SUFFIX[fmt]
    assert len(weights) == 3 * len(snapshots)  # two Linear layers and a BatchNorm, per epoch
    for epoch, state in enumerate(snapshots):
        for layer in ("0", "1", "3"):
            location = f"artifacts/weights/mlp/{layer}_epoch{epoch}{suffix}"
            attrs = weights[location]
            assert attrs["provml:step"] == epoch and attrs["provml:context"] == "training"
            assert (attrs["provml:sha256"], attrs["provml:size_bytes"]) == hash_path(run_dir / location)
            stored = arrays.read_arrays(run_dir / location)
            assert sorted(stored) == ["bias", "weight"]
            for param, value in stored.items():
                assert np.array_equal(value, state[f"{layer}.{param}"].numpy())
    assert not np.array_equal(arrays.read_arrays(run_dir / f"artifacts/weights/mlp/0_epoch0{suffix}")["weight"],
                              snapshots[-1]["0.weight"].numpy())  # epochs differ: each file is its own epoch


def test_log_epoch_needs_an_active_run():
    tracked = prov4ml.WeightDistributionTrackedModel(torch.nn.Linear(1, 1))
    with pytest.raises(RunStateError, match="start_run"):
        tracked.log_epoch(0)


# ---------------------------------------------------------------------------- old import paths, getters
def test_old_import_paths_view_and_getters_return_what_was_logged(tmp_path):
    run_script([SCRIPTS / "data_and_getters.py", tmp_path], tmp_path)
    seen = load_json(tmp_path / "seen.json")
    run_dir = tmp_path / "data_and_getters" / "run_0"
    assert seen["before"] == {"is_collecting": False, "metrics": 0}
    assert seen["after"] == {"is_collecting": False}
    view = seen["view"]
    assert view["is_collecting"] is True and view["metrics_file_type"] == "CSV" and view["file_type"] == ".csv"
    assert (view["save_metrics_after_n_logs"], view["unify_experiments"], view["RUN_ID"]) == (7, False, 0)
    assert view["EXPERIMENT_DIR"] == view["run_dir"] == str(run_dir)
    assert view["METRIC_DIR"] == str(run_dir / "metrics") and view["artifacts_dir"] == str(run_dir / "artifacts")
    assert view["metrics"] == [["acc", "validation", "MetricInfo", 5], ["loss", "training", "MetricInfo", 5],
                               ["n_models", "models", "MetricInfo", 1], ["n_samples", "datasets", "MetricInfo", 1]]
    assert view["is_metric_info"]
    # PROV4ML_DATA cannot be assigned to, and the refusal names the fix
    assert [a for a, _ in seen["refused"]] == ["RUN_ID", "metrics", "save_metrics_after_n_logs", "brand_new"]
    assert all("read-only" in m and "start_run" in m for _, m in seen["refused"])
    assert seen["RUN_ID_after"] == 0
    # MetricInfo.save_to_file wrote exactly the points logged
    assert points(seen["saved_loss"]) == (list(range(5)), seen["logged"]["loss"])
    assert seen["documents"] == [str(run_dir / f"prov_rank0{s}") for s in (".json", ".dot", ".svg")]
    assert all(Path(p).stat().st_size > 0 for p in seen["documents"])

    g = seen["getters"]
    base = "ex:data_and_getters.run_0.rank0"
    assert g["activities"] == [base, "ex:data_and_getters"] + [f"{base}.context.{c}" for c in ("training", "validation", "models", "datasets")]
    assert sorted(g["metric_entities"]) == sorted(f"{base}.metric.{c}.{n}" for c, n in
                                                  (("training", "loss"), ("validation", "acc"),
                                                   ("models", "n_models"), ("datasets", "n_samples")))
    assert g["parameters"] == {"lr": 0.001, "batch_size": 32, "optimizer": "adam", "shuffle": True}
    assert (g["lr_of_run"], g["run_id"], g["status"], g["missing"]) == (0.001, 0, "finished", None)
    assert g["paths"] == {f"{base}.metric.training.loss": str(run_dir / "metrics/loss_training_rank0.csv")}
    assert len(g["csv_paths"]) == 4 and all(Path(p).is_file() for p in g["csv_paths"])
    assert g["loss"] == {"step": list(range(5)), "value": seen["logged"]["loss"]}
    assert g["acc"] == {"step": list(range(5)), "value": seen["logged"]["acc"]}
    assert g["table"] == [["acc", "validation", "metric", 5], ["loss", "training", "metric", 5],
                          ["n_models", "models", "metric", 1], ["n_samples", "datasets", "metric", 1]]


def test_getters_name_what_they_cannot_find(tmp_path, start):
    run = start()
    prov4ml.log_metric("loss", 1.0, "training")
    prov4ml.log_metric("loss", 2.0, "validation")
    path = prov4ml.end_run()
    assert run.run_dir == path.parent
    with pytest.raises(InvalidValueError, match=r"2 metric series match.*loss \(training\)"):
        prov4ml.get_metric(path, "loss")
    assert prov4ml.get_metric(path, "loss", context="VALIDATION")["value"].tolist() == [2.0]
    with pytest.raises(KeyError, match="list_activities"):
        prov4ml.get_parameter(path, "ex:nothing", "x")
    with pytest.raises(prov4ml.ProvFileError, match="not JSON"):
        bad = tmp_path / "bad.json"
        bad.write_text("{")
        prov4ml.list_entities(bad)


def test_prov4ml_data_is_at_the_top_level_and_keeps_the_last_run_after_end_run(tmp_path):
    run_script([SCRIPTS / "data_after_end_run.py", tmp_path], tmp_path)  # a fresh process: no run has ended yet
    seen = load_json(tmp_path / "seen.json")
    assert seen["same_object"] and seen["in_all"]
    assert "PROV4ML_DATA.EXPERIMENT_DIR needs a run: call prov4ml.start_run(...) first" in seen["before"]
    assert seen["repr_before"] == "<PROV4ML_DATA: no run yet>"
    first, second = tmp_path / "after_end" / "run_0", tmp_path / "after_end" / "run_1"
    during = seen["during"]
    assert (during["EXPERIMENT_DIR"], during["RUN_ID"], during["is_collecting"]) == (str(first), 0, True)
    assert (during["save_metrics_after_n_logs"], during["csv_separator"], during["metrics"]) == (9, ";", [["loss", "training", 4]])
    assert seen["prov_json"] == str(first / "prov_rank0.json")
    # after end_run: every value of the run that ended, as it was, but it no longer collects
    assert seen["after"] == {**during, "is_collecting": False}
    assert seen["repr_after"].startswith("<PROV4ML_DATA of ") and seen["repr_after"].endswith(", ended>")
    assert len(seen["refused_after"]) == 3
    for message, name in zip(seen["refused_after"], ("EXPERIMENT_DIR", "RUN_ID", "brand_new")):
        assert f"read-only view of the run that ended" in message and f"{name} cannot be assigned" in message
        assert "next prov4ml.start_run" in message
    assert points(seen["saved_after"]) == ([0, 1, 2, 3], [1.0, 0.5, 1 / 3, 0.25])
    # the next run replaces it
    assert (seen["next"]["EXPERIMENT_DIR"], seen["next"]["RUN_ID"], seen["next"]["metrics"]) == (str(second), 1, [])
    assert all("read-only view of the active run" in m and "start_run" in m for m in seen["refused_next"])


def test_prov4ml_data_has_only_its_attributes_and_cannot_be_deleted_from():
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        prov4ml.PROV4ML_DATA.nope
    with pytest.raises(AttributeError, match="read-only"):
        del prov4ml.PROV4ML_DATA.RUN_ID


def test_contexts_models_datasets_and_lookup_by_name():
    C = prov4ml.Context
    assert (C.MODELS, C.DATASETS) == ("models", "datasets")
    assert C["TRAINING"] is C.TRAINING and C["Validation"] is C.VALIDATION and C["MODELS"] is C.MODELS
    with pytest.raises(KeyError, match="unknown context 'nope'"):
        C["nope"]


def test_import_prov4ml_imports_neither_lightning_nor_array_libraries(tmp_path):
    code = ("import sys, prov4ml; heavy = [m for m in ('lightning', 'zarr', 'pandas', 'itwinai') if m in sys.modules]; "
            "assert not heavy, heavy; assert prov4ml.ProvMLLogger.__mro__[1].__name__ == 'ProvLogger'; "
            "assert 'lightning' in sys.modules")
    run_script(["-c", code], tmp_path)


# ---------------------------------------------------------------------------- loggers
def test_itwinai_logger_records_every_kind(tmp_path):
    run_script([SCRIPTS / "itwinai_logger.py", tmp_path], tmp_path)
    seen = load_json(tmp_path / "seen.json")
    run_dir = Path(seen["run_dir"])
    assert seen["supported_kinds"] == ["metric", "flops_pb", "flops_pe", "system", "carbon", "execution_time",
                                       "model", "best_model", "torch", "prov_documents"]
    doc = load_json(run_dir / "prov_rank0.json")
    params = {literal(a["prov:label"]): literal(a["prov:value"]) for a in entities_of_type(doc, "mls:HyperParameterSetting").values()}
    assert params == {"lr": 0.05, "batch_size": 8, "epochs": 2, "optimizer": "sgd"}  # save_hyperparameters, kind torch
    (dataset,) = entities_of_type(doc, "mls:Dataset").values()
    assert literal(dataset["prov:label"]) == "train_dataloader"
    loss = series_entity(doc, "batch_loss")
    assert points(run_dir / location(loss["prov:location"])) == tuple(map(list, zip(*seen["logged"])))  # log_freq=2
    for name in ("flops_per_batch", "flops_per_epoch", "epoch_time", "cpu_usage", "emissions"):
        series = series_entity(doc, name)  # flops_pb / flops_pe, execution_time, system, carbon
        assert (series["provml:count"], series["provml:first_step"], series["provml:last_step"]) == (2, 0, 1)
    assert series_entity(doc, "flops_per_batch")["provml:unit"] == "FLOPs"
    versions = entities_of_type(doc, "provml:ModelVersion")
    assert sorted(literal(v["provml:step"]) for v in versions.values()) == [0, 1]  # kind model
    assert "artifacts/models/best_model.pt" in artifacts_by_location(doc, "provml:ModelWeights")  # kind best_model
    assert not any(literal(a.get("provml:name")) == "a_figure" for a in entities_of_type(doc, "provml:Metric").values())
    assert seen["prov_documents"] == [str(run_dir / f"prov_rank0{s}") for s in (".json", ".dot", ".svg")]
    assert (run_dir / "prov_rank0.svg").read_text().lstrip().startswith("<")
    assert seen["active_after"] is False and seen["worker_3_run"] is False
    assert sorted(p.name for p in (tmp_path / "itwinai").iterdir()) == ["run_0"]  # rank 3 started no run


def test_itwinai_logger_must_be_initialized_first():
    logger = prov4ml.ProvMLItwinAILogger()
    with pytest.raises(RunStateError, match="start_logging"):
        logger.log(1.0, "loss")
    with pytest.raises(InvalidValueError, match="log_freq"):
        prov4ml.ProvMLItwinAILogger(log_freq="often")


@pytest.mark.parametrize("mode", ["active", "own"])
def test_provmllogger_with_no_arguments_in_a_trainer(tmp_path, mode):
    pytest.importorskip("lightning")
    run_script([SCRIPTS / "lightning_logger.py", mode], tmp_path)
    seen = load_json(tmp_path / "seen.json")
    assert seen["active_after"] is False  # the run it started (or the script's) is ended
    fit_doc, test_doc = load_json(seen["prov_json"]), load_json(seen["test_prov_json"])
    fit_dir, test_dir = Path(seen["prov_json"]).parent, Path(seen["test_prov_json"]).parent
    for name, context, doc, run_dir in (("MSE_training", "training", fit_doc, fit_dir),
                                        ("MSE_validation", "validation", fit_doc, fit_dir),
                                        ("MSE_test", "testing", test_doc, test_dir)):
        _, values = points(run_dir / location(series_entity(doc, name, context)["prov:location"]))
        assert values == seen["seen"][name]  # what self.log received, exactly
    if mode == "active":
        assert seen["experiment"] == seen["name"] == "lightning_active" and seen["prov_json"] == seen["test_prov_json"]
        assert entities_of_type(fit_doc, "mls:Model")  # log_model into the same run
    else:  # yProv4ML's defaults: experiment "lightning_logs" under ./prov, one run per Trainer stage
        assert seen["experiment"] == "lightning_logs"
        assert Path(seen["prov_json"]) == tmp_path / "prov/lightning_logs/run_0/prov_rank0.json"
        assert Path(seen["test_prov_json"]) == tmp_path / "prov/lightning_logs/run_1/prov_rank0.json"
        assert literal(fit_doc["activity"]["ex:lightning_logs.run_0.rank0"]["provml:status"]) == "finished"


# ---------------------------------------------------------------------------- import yprov4ml
def test_a_script_that_imports_yprov4ml_runs_through_the_runner(tmp_path):
    run_script(["prov4ml.compat.run_as_yprov4ml", SCRIPTS / "uses_yprov4ml.py", tmp_path, "--flag"], tmp_path, module=True)
    seen = load_json(tmp_path / "seen.json")
    assert seen["module"] == "prov4ml" and seen["file"] == str(ROOT / "prov4ml" / "__init__.py")
    assert seen["params"] == {"lr": 0.5}
    assert seen["argv"] == [str(SCRIPTS / "uses_yprov4ml.py"), str(tmp_path), "--flag"]
    assert seen["run_dir"] == str(tmp_path / "uses_yprov4ml" / "run_0")
    assert series_entity(load_json(seen["prov_json"]), "loss")["provml:count"] == 3


def test_yprov4ml_is_never_aliased_silently_nor_over_a_real_install(tmp_path):
    proc = run_script([SCRIPTS / "uses_yprov4ml.py", tmp_path], tmp_path, expect=1)  # no opt-in: no alias
    assert "No module named 'yprov4ml'" in proc.stderr
    real = tmp_path / "site" / "yprov4ml"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{real.parent}"}
    proc = run_script(["prov4ml.compat.run_as_yprov4ml", SCRIPTS / "uses_yprov4ml.py", tmp_path], tmp_path,
                      env=env, expect=2, module=True)
    assert "a real yprov4ml is installed" in proc.stderr and str(real) in proc.stderr
    code = ("import warnings, prov4ml; warnings.simplefilter('error')\n"
            "try:\n    prov4ml.install_yprov4ml_alias()\nexcept UserWarning as w:\n    print('refused:', w)\n"
            "import yprov4ml; assert yprov4ml.REAL")
    assert "refused: install_yprov4ml_alias(): a real yprov4ml" in run_script(["-c", code], tmp_path, env=env).stdout


def test_the_alias_maps_submodules_and_can_be_undone(tmp_path):
    code = ("import sys, prov4ml\nassert prov4ml.install_yprov4ml_alias() is True\n"
            "import yprov4ml.constants, yprov4ml.datamodel.metric_type as mt\n"
            "from yprov4ml.utils.getters import get_metric\n"
            "assert yprov4ml is prov4ml and yprov4ml.constants is prov4ml.constants and mt is prov4ml.datamodel.metric_type\n"
            "assert get_metric is prov4ml.get_metric\n"
            "from prov4ml.compat import uninstall_yprov4ml_alias\nuninstall_yprov4ml_alias()\n"
            "try:\n    import yprov4ml\nexcept ImportError:\n    print('gone')\n")
    assert run_script(["-c", code], tmp_path).stdout.strip() == "gone"


def test_provmllogger_prefix_and_version(tmp_path):
    pytest.importorskip("lightning")
    logger = prov4ml.ProvMLLogger(name="prefixed", version=4, prefix="exp", provenance_save_dir=str(tmp_path), capture=False)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"train_loss": 0.5, "val_acc": 0.25}, step=3)
    assert (logger.name, logger.version, logger.run.save_after_n_logs) == ("prefixed", "run_4", 100)
    logger.finalize("success")
    doc = load_json(tmp_path / "prefixed" / "run_4" / "prov_rank0.json")
    assert series_entity(doc, "exp-train_loss", "training")["provml:last"] == 0.5  # context from the unprefixed key
    assert series_entity(doc, "exp-val_acc", "validation")["provml:last"] == 0.25
    with pytest.raises(InvalidValueError, match="run id"):
        prov4ml.ProvMLLogger(version="latest")


def test_itwinai_logger_records_into_a_run_already_active(start):
    run = start()
    logger = prov4ml.ProvMLItwinAILogger(create_graph=False, create_svg=False)
    with logger.start_logging(rank=0):
        logger.log(0.5, "loss", step=0)
        logger.log(0.7, "loss", step=1, batch_idx=1)  # log_freq "epoch": a per-batch call is skipped
    assert prov4ml.active_run() is run  # the caller's run: not ended by the logger
    prov4ml.flush()
    assert points(run.run_dir / "metrics" / "loss_training_rank0.csv") == ([0], [0.5])


def test_both_wrappers_on_one_model(start):
    run = start()
    net = torch.nn.Linear(3, 2)
    layers = prov4ml.ProvenanceTrackedModel("both", net, array_format="npy", chunk_size=2)
    weights = prov4ml.WeightDistributionTrackedModel("both", net, array_format="npy")
    out = layers(torch.ones(2, 3))
    (record,) = weights.log_epoch(7)
    assert torch.equal(out, weights(torch.ones(2, 3)))
    assert np.array_equal(arrays.read_arrays(run.run_dir / record.location)["weight"], net.weight.detach().numpy())
    assert record.step == 7 and record.location == "artifacts/weights/both/self_epoch7.npz"
    assert len(arrays.read_rows(run.artifacts.root / "layers" / "both" / "self")["output"][0]) == 4  # both calls


def test_without_zarr_the_wrappers_write_numpy_and_asking_for_zarr_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['zarr'] = None  # as if the zarr extra were not installed\n"
            "import prov4ml, torch\nfrom prov4ml.compat import arrays\n"
            "assert arrays.choose_format(None) == 'npy'\n"
            "try:\n    prov4ml.ProvenanceTrackedModel(torch.nn.Linear(1, 1), array_format='zarr')\n"
            "except prov4ml.MissingDependencyError as exc:\n    print(exc)\n")
    out = run_script(["-c", code], tmp_path).stdout
    assert 'pip install "prov4ml[zarr]"' in out
