"""The PROV document: valid, round-trips through the prov package, small whatever the points."""

import warnings

import pytest
import torch
from prov.model import ProvDocument

import prov4ml
from prov4ml import Context
from prov4ml.provenance import user_namespace_iri
from conftest import entities_of_type, load_json


def full_run(start, tmp_path, n_points=50):
    f = tmp_path / "a.txt"
    f.write_text("x")
    run = start()
    prov4ml.log_param("lr", 0.1)
    for i in range(n_points):
        prov4ml.log_metric("loss", 1.0 / (i + 1), Context.TRAINING, step=i)
        prov4ml.log_metric("acc", float("nan") if i == 3 else i / n_points, Context.VALIDATION, step=i)
    prov4ml.log_artifact(str(f), Context.TESTING)
    model = torch.nn.Linear(2, 2)
    prov4ml.log_model(model, "m")
    prov4ml.save_model_version(model, "m", Context.TRAINING, 0)
    prov4ml.save_model_version(model, "m", Context.TRAINING, 1)
    prov4ml.log_dataset(torch.utils.data.TensorDataset(torch.zeros(4, 2)), "ds")
    prov4ml.log_dataset(torch.utils.data.TensorDataset(torch.zeros(4, 2)), "ds")
    prov4ml.end_run()
    return run


def test_round_trip_and_other_serialisations(start, tmp_path):
    run = full_run(start, tmp_path)
    doc = ProvDocument.deserialize(str(run.prov_path))
    again = ProvDocument.deserialize(content=doc.serialize(format="json"))
    assert len(again.get_records()) == len(doc.get_records()) > 30
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no identifier PROV-N cannot write
        provn = doc.get_provn()
    assert "mls:Run" in provn and "provml:Metric" in provn
    pytest.importorskip("lxml")
    assert "prov:document" in doc.serialize(format="xml")


def test_namespaces_and_relations(start, tmp_path):
    run = full_run(start, tmp_path)
    data = load_json(run.prov_path)
    # prov binds xsd to the 2001 IRI implicitly; it must never be bound to another one
    assert data["prefix"].get("xsd", "http://www.w3.org/2001/XMLSchema#") == "http://www.w3.org/2001/XMLSchema#"
    assert data["prefix"]["mls"] == "http://www.w3.org/ns/mls#"
    assert data["prefix"]["provml"].startswith("https://")
    assert data["prefix"]["ex"] == "http://www.example.org/"
    for relation in ("used", "wasGeneratedBy", "wasDerivedFrom", "wasAssociatedWith", "actedOnBehalfOf",
                     "wasStartedBy", "wasEndedBy", "hadMember", "specializationOf"):
        assert relation in data, relation
    assert len(entities_of_type(data, "provml:Metric")) == 2
    assert len(entities_of_type(data, "mls:Dataset")) == 2  # same label twice: two entities, both kept
    assert data["activity"]["ex:exp"]["prov:type"][0]["$"] == "mls:Experiment"
    run_activity = data["activity"][f"ex:exp.run_{run.run_id}.rank0"]
    assert run_activity["prov:startTime"].endswith("+00:00")
    types = {t["$"] for t in run_activity["prov:type"]}
    assert types == {"mls:Run", "provml:LearningStageExecution"}


def test_document_size_does_not_grow_with_points(start, tmp_path):
    small = full_run(start, tmp_path, n_points=10).prov_path.stat().st_size
    large = full_run(start, tmp_path, n_points=20000).prov_path.stat().st_size
    assert abs(large - small) < 200  # only the digits of counts and times differ


@pytest.mark.parametrize("given, iri", [
    ("www.example.org", "http://www.example.org/"),
    ("https://lab.org/ns#", "https://lab.org/ns#"),
    ("urn:lab", "urn:lab/"),
])
def test_user_namespace_becomes_an_absolute_iri(given, iri):
    assert user_namespace_iri(given) == iri


def test_snapshot_on_disk_while_running(start):
    run = start(save_after_n_logs=10)
    for i in range(25):
        prov4ml.log_metric("loss", float(i))
    prov4ml.flush()
    data = load_json(run.prov_path)
    series = [e for e in data["entity"].values() if e.get("provml:name") == "loss"]
    assert int(series[0]["provml:count"]["$"]) == 25
    assert data["activity"][f"ex:exp.run_{run.run_id}.rank0"]["provml:status"] == "running"
