"""The getters read the documents prov4ml writes and those the reference (yProv4ML 2.0.10, 3.2.8) wrote.

The reference's runs in tests/data/reference/ were recorded once with the
real library; expected_getters.json beside each holds what the reference's own
getters returned for it (tests/data/reference/README.md says how). prov4ml's
answers are compared with those, value for value, and with the documents' own
metric files.
"""

import copy
import csv
import json
import os
from pathlib import Path

import pytest

import prov4ml
from conftest import ROOT
from prov4ml.utils import getters

pytest.importorskip("pandas")
torch = pytest.importorskip("torch")

DATA = ROOT / "tests" / "data" / "reference"
V3 = DATA / "yprov4ml-3.2.8"  # the folder the 3.2.8 script ran in: the document's paths start from it
V2 = DATA / "yprov4ml-2.0.10"
DOC3 = V3 / "prov" / "ref3_0" / "prov_ref3_GR0_0.json"
DOC2 = V2 / "prov" / "ref2_0" / "prov_ref2_GR0_0.json"


def expected(folder):
    return json.loads((folder / "expected_getters.json").read_text())


def as_dict(path):
    return json.loads(Path(path).read_text())


def ms_rows(path):
    """A reference metric file's rows as (step, value, time in ms), read with the csv module."""
    with open(path, newline="") as fh:
        return [(int(s), float(v), int(t)) for s, v, t in list(csv.reader(fh))[1:]]


# ---------------------------------------------------------------------------- yProv4ML 3.2.8's documents
@pytest.mark.parametrize("given", ["path", "dict"])
def test_names_types_and_parameters_are_what_the_reference_returns(given):
    ref = expected(V3)
    doc = DOC3 if given == "path" else as_dict(DOC3)
    assert getters.list_activities(doc) == ref["list_activities"]
    assert getters.list_entities(doc) == ref["list_entities"]
    for entity_type, names in ref["list_entities_by_type"].items():
        assert getters.list_entities(doc, entity_type) == names, entity_type
    # the reference's types are aliases of prov4ml's
    by_type = ref["list_entities_by_type"]
    assert getters.list_entities(doc, "mls:Model") == by_type["provml:Model"] != []
    assert getters.list_entities(doc, "mls:Dataset") == by_type["provml:Dataset"] != []
    assert getters.list_entities(doc, "mls:HyperParameterSetting") == by_type["provml:HyperParameter"] != []
    run = ref["list_activities"][0]
    for param, value in ref["get_parameter"].items():
        assert getters.get_parameter(doc, run, param if param != "missing" else "no_such_thing") == value
    for name, raw in ref["list_parameters_of_raw"].items():
        assert getters.list_parameters(doc, name, unwrap=False) == raw
        assert getters.list_parameters(doc, name) == ref["list_parameters_of"][name]
    # prov4ml gives the logged parameters, where the reference merges every record's attributes (docs/porting.md)
    assert getters.list_parameters(doc) == {"lr": "0.1", "batch_size": "8"}


def check_frame(frame, ref, csv_path):
    """prov4ml's list_metrics against the reference's: same columns, rows, values; sizes as numbers."""
    assert list(frame.columns) == ref["columns"] and list(frame.index) == ref["index"] and frame.index.name == "metric_entity"
    size = ref["columns"].index("yprov:file_size")
    path = ref["columns"].index("csv_path")
    for row, want in zip(frame.astype(object).values.tolist(), ref["rows"]):
        assert row[size] == int(want[size]) and row[path] == csv_path(want[path])
        assert [v for i, v in enumerate(row) if i not in (size, path)] == [v for i, v in enumerate(want) if i not in (size, path)]


def test_metrics_and_their_files_are_what_the_reference_returns():
    ref = expected(V3)
    for given, doc, where in (("dict", as_dict(DOC3), lambda p: p), ("path", DOC3, lambda p: str((V3 / p).resolve()))):
        # as a dict, the paths are those recorded (from the folder the script ran in), as the reference gives them;
        # from the document's path, they are found beside the document
        assert getters.list_metric_paths(doc) == {k: where(v) for k, v in ref["list_metric_paths"].items()}, given
        for context in ("Validation", "validation", "VALIDATION", prov4ml.Context.VALIDATION):
            paths = getters.list_metric_paths(doc, context=context)
            assert paths == {k: where(v) for k, v in ref["list_metric_paths_validation"].items()} and len(paths) == 2
        assert getters.list_metric_paths(doc, file_type="csv") == {k: where(v) for k, v in ref["list_metric_paths_csv"].items()}
        assert getters.list_metric_paths(doc, file_type="nc") == {}
        check_frame(getters.list_metrics(doc), ref["list_metrics"], where)
        check_frame(getters.list_metrics(doc, context="Validation"), ref["list_metrics_validation"], where)
    for path in getters.list_metric_paths(DOC3).values():
        assert Path(path).is_file()
    frame = getters.list_metrics(DOC3)
    assert frame["yprov:file_size"].tolist() == [os.path.getsize(p) for p in frame["csv_path"]]


def test_get_metric_reads_the_reference_metric_files_point_for_point():
    ref = expected(V3)
    assert len(ref["get_metric"]) == 3
    for key, want in ref["get_metric"].items():
        name, context = key.split("|")
        assert want["columns"] == ["epoch", "value", "timestep"]
        got = getters.get_metric(DOC3, name, context=context)
        assert list(got.columns) == ["step", "value", "time"]
        assert got["step"].tolist() == [r[0] for r in want["rows"]]
        assert got["value"].tolist() == [r[1] for r in want["rows"]]
        assert got["time"].tolist() == [r[2] / 1000 for r in want["rows"]]
    with pytest.raises(prov4ml.InvalidValueError, match=r"2 metric series match.*val_acc \(Validation\)"):
        getters.get_metric(DOC3, context="Validation")


def test_a_document_given_as_a_dict_reads_its_files_from_where_the_script_ran(monkeypatch):
    monkeypatch.chdir(V3)  # where the reference's script ran: its recorded paths hold
    got = getters.get_metric(as_dict(DOC3), "val_loss", context="Validation")
    assert got["value"].tolist() == [r[1] for r in expected(V3)["get_metric"]["val_loss|Validation"]["rows"]]
    monkeypatch.chdir(ROOT)
    with pytest.raises(prov4ml.ProvFileError, match="give the document's path"):
        getters.get_metric(as_dict(DOC3), "val_loss")


def test_a_reference_metric_file_that_is_not_csv_names_what_reads_it(tmp_path):
    doc = as_dict(DOC3)
    doc["entity"]["val_loss//Validation"]["dcterms:identifier"] = "prov/ref3_0/metrics_GR0/val_loss.nc"
    with pytest.raises(prov4ml.InvalidValueError, match="xarray.open_dataset"):
        getters.get_metric(doc, "val_loss")


def test_runs_and_documents_of_a_reference_project(monkeypatch):
    ref = expected(V3)
    monkeypatch.chdir(V3)
    assert [str(p) for p in getters.list_runs_in_proj("prov")] == ref["list_runs_in_proj"]
    assert [str(p) for p in getters.list_provjson_in_proj("prov")] == ref["list_provjson_in_proj"]


# ---------------------------------------------------------------------------- yProv4ML 2.0.10's documents
def test_a_2x_document_the_reference_getters_cannot_read_is_read_from_its_relations():
    ref = expected(V2)  # 3.2.8's getters find no metric, model or dataset in it (its entities have no prov:type)
    assert ref["list_metric_paths_validation"] == {} and ref["list_metrics"]["columns"] == []
    assert getters.list_activities(DOC2) == ref["list_activities"] and getters.list_entities(DOC2) == ref["list_entities"]
    folder = (V2 / "prov" / "ref2_0" / "metrics_GR0").resolve()
    val = {"yProv4ML:val_loss": str(folder / "val_loss_Context.VALIDATION_GR0.csv"),
           "yProv4ML:val_acc": str(folder / "val_acc_Context.VALIDATION_GR0.csv")}
    for context in ("Validation", "Context.VALIDATION", prov4ml.Context.VALIDATION):
        assert getters.list_metric_paths(DOC2, context=context) == val
    assert getters.list_metric_paths(as_dict(DOC2), context="Validation") == {
        k: f"prov/ref2_0/metrics_GR0/{Path(v).name}" for k, v in val.items()}
    frame = getters.list_metrics(DOC2)
    assert list(frame.columns) == ["label", "context", "source", "csv_path", "yProv4ML:role", "yprov:file_size"]
    assert frame[["label", "context", "source"]].values.tolist() == [
        ["loss", "Context.TRAINING", "None"], ["val_loss", "Context.VALIDATION", "None"], ["val_acc", "Context.VALIDATION", "None"]]
    assert frame["yprov:file_size"].tolist() == [os.path.getsize(p) for p in frame["csv_path"]]
    for name, path in getters.list_metric_paths(DOC2).items():
        got = getters.get_metric(DOC2, name)
        rows = ms_rows(path)
        assert len(rows) == (9 if name.endswith(":loss") else 3)
        assert list(zip(got["step"], got["value"], got["time"])) == [(s, v, t / 1000) for s, v, t in rows]
    doc = as_dict(DOC2)
    models = [n for n, r in doc["wasGeneratedBy"].items() if r["prov:activity"] == "context:Context.MODELS"]
    assert getters.list_entities(DOC2, "provml:Model") == getters.list_entities(DOC2, "mls:Model") == [
        "yProv4ML:net_0", "yProv4ML:net_1", "yProv4ML:net_2", "yProv4ML:net_final"] and len(models) == 4
    assert getters.list_entities(DOC2, "provml:Dataset") == ["yProv4ML:train_dataset", "yProv4ML:val_dataset"]
    run = doc["activity"]["context:ref2_GR0_0"]
    assert getters.list_parameters(DOC2) == {
        "execution_start_time": float(run["yProv4ML:execution_start_time"]["$"]), "lr": 0.1, "batch_size": 8,
        "execution_end_time": float(run["yProv4ML:execution_end_time"]["$"])}
    assert getters.get_parameter(DOC2, "context:ref2_GR0_0", "experiment_dir") == "prov/ref2_0"


# ---------------------------------------------------------------------------- prov4ml's own documents
def test_prov4ml_documents_answer_in_the_reference_vocabulary(start, tmp_path):
    start("own")
    model = torch.nn.Linear(4, 2)
    for step in range(3):
        prov4ml.log_metric("loss", 1.0 / (step + 1), prov4ml.Context.TRAINING, step=step)
        prov4ml.log_metric("val_acc", step / 4, "validation", step=step)
        prov4ml.log_metric("val_loss", step / 5, "validation", step=step)
        prov4ml.save_model_version(model, "net", prov4ml.Context.TRAINING, step=step)
    prov4ml.log_model(model, "final")
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n")
    prov4ml.log_artifact(str(notes), prov4ml.Context.TRAINING)
    path = prov4ml.end_run()
    doc = as_dict(path)

    models = getters.list_entities(doc, "provml:Model")
    assert models == getters.list_entities(doc, "mls:Model")
    assert sorted(models) == sorted(n for n in doc["entity"] if ".model." in n or ".model_version." in n) and len(models) == 5
    frame = getters.list_metrics(path)
    assert frame["yprov:file_size"].tolist() == [os.path.getsize(p) for p in frame["csv_path"]] and len(frame) == 3
    assert getters.list_metrics(doc)["yprov:file_size"].tolist() == frame["yprov:file_size"].tolist()  # rundir: prefix
    paths = getters.list_metric_paths(path, context="Validation")
    assert sorted(Path(p).name for p in paths.values()) == ["val_acc_validation_rank0.csv", "val_loss_validation_rank0.csv"]
    artifact = next(n for n, a in doc["entity"].items() if a.get("prov:label") == "notes.txt")
    assert getters.get_parameter(doc, artifact, "file_size") == getters.get_parameter(doc, artifact, "yprov:file_size") == 6


def test_an_unknown_type_finds_nothing_and_the_document_is_not_changed():
    doc = as_dict(DOC2)
    before = copy.deepcopy(doc)
    assert getters.list_entities(doc, "provml:Nothing") == []
    getters.list_metrics(doc), getters.list_entities(doc, "provml:Model"), getters.list_parameters(doc)
    assert doc == before


def test_only_the_2x_enum_spellings_lose_their_prefix():
    from prov4ml.compat.dialects import same_context

    assert same_context("Context.VALIDATION", "Validation") and same_context("Context.MODELS", prov4ml.Context.MODELS)
    assert same_context("Validation", "VALIDATION") and same_context("training", prov4ml.Context.TRAINING)
    assert not same_context("context.mine", "mine") and not same_context(None, "training")
