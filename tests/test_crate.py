"""end_run(crate_ro_crate=True, create_card=True): a Process Run Crate read back with rocrate, and a model card."""

import getpass
import hashlib
import json
import math
import re
import subprocess
import sys
from datetime import datetime

import pytest

import prov4ml
from prov4ml.metrics import formats
from prov4ml.provenance import user_iri
from conftest import ROOT, entities_of_type, literal, location

rocrate = pytest.importorskip("rocrate.rocrate")

PROFILE = "https://w3id.org/ro/wfrun/process/0.6"
SCRIPT = """
import torch
import prov4ml

prov4ml.start_run("www.example.org", "crated", "prov", metrics_file_type="{file_type}")
model = torch.nn.Linear(4, 2)
data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
loader = torch.utils.data.DataLoader(data, batch_size=8)
prov4ml.log_dataset(loader, "train")
prov4ml.log_param("lr", 0.01)
prov4ml.log_param("epochs", 2)
prov4ml.log_param("optimizer", "sgd|momentum")
prov4ml.log_model(model, "lin")
for epoch in range(2):
    for i in range(5):
        prov4ml.log_metric("loss", 1.0 / (epoch * 5 + i + 1), prov4ml.Context.TRAINING, step=epoch * 5 + i)
    prov4ml.log_metric("acc", 0.5 + epoch / 10, prov4ml.Context.VALIDATION, step=epoch)
    prov4ml.save_model_version(model, "lin", prov4ml.Context.TRAINING, step=epoch)
    {carbon}
prov4ml.end_run(create_graph=True, crate_ro_crate=True, create_card=True)
"""


def run_script(tmp_path, file_type="csv", carbon=True):
    code = SCRIPT.format(file_type=file_type, carbon="prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=epoch)" if carbon else "pass")
    (tmp_path / "train.py").write_text(code)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "could not be written" not in out.stderr, out.stderr
    return tmp_path / "prov" / "crated" / "run_0"


@pytest.fixture(scope="module")
def crated(tmp_path_factory):
    return run_script(tmp_path_factory.mktemp("crate"))


def _prov(run_dir):
    return json.loads((run_dir / "prov_rank0.json").read_text())


def _ids(value):
    return [e.id for e in (value if isinstance(value, list) else [value])]


def test_the_crate_is_a_process_run_crate(crated):
    crate = rocrate.ROCrate(crated)
    root = crate.root_dataset
    assert root["conformsTo"].id == PROFILE
    profile = crate.dereference(PROFILE)
    assert (profile.type, profile["name"], profile["version"]) == ("CreativeWork", "Process Run Crate", "0.6")
    raw = json.loads((crated / "ro-crate-metadata.json").read_text())
    assert raw["@context"] == "https://w3id.org/ro/crate/1.3/context"
    assert next(e for e in raw["@graph"] if e["@id"] == "ro-crate-metadata.json")["conformsTo"] == {"@id": "https://w3id.org/ro/crate/1.3"}
    actions = crate.get_by_type("CreateAction")
    assert _ids(root["mentions"]) == [a.id for a in actions] == ["#run_0-rank0"]


def test_the_action_names_instrument_agent_times_and_status(crated):
    crate = rocrate.ROCrate(crated)
    action = crate.dereference("#run_0-rank0")
    data = _prov(crated)
    run = next(a for k, a in data["activity"].items() if k.endswith(".rank0"))
    # instrument: the script's copy, whose bytes are the script that ran
    tool = action["instrument"]
    assert tool.id == "artifacts/source/train.py" and tool.type == ["File", "SoftwareSourceCode"]
    assert (crated / tool.id).read_bytes() == (crated.parent.parent.parent / "train.py").read_bytes()
    assert tool["programmingLanguage"]["name"] == "Python" and tool["encodingFormat"] == "text/x-python"
    # agent: the PROV-JSON's user agent
    agent = action["agent"]
    assert agent.id == user_iri("www.example.org", getpass.getuser()) and agent.type == "Person"
    assert "ex:" + agent.id[len("http://www.example.org/"):] in data["agent"]
    assert datetime.fromisoformat(action["startTime"]) == datetime.fromisoformat(run["prov:startTime"])
    assert datetime.fromisoformat(action["endTime"]) == datetime.fromisoformat(run["prov:endTime"])
    assert action.properties()["actionStatus"] == {"@id": "http://schema.org/CompletedActionStatus"}
    assert "error" not in action.properties()


def test_the_objects_are_the_datasets_and_parameters(crated):
    crate = rocrate.ROCrate(crated)
    objects = crate.dereference("#run_0-rank0")["object"]
    assert [o.id for o in objects] == ["#dataset-train", "#param-lr", "#param-epochs", "#param-optimizer"]
    params = {o["name"]: o["value"] for o in objects if o.type == "PropertyValue"}
    assert params == {"lr": 0.01, "epochs": 2, "optimizer": "sgd|momentum"}
    dataset = objects[0]
    assert dataset.type == "Dataset" and dataset["name"] == "train" and "size=32" in dataset["description"]


def test_the_results_are_every_file_the_run_wrote(crated):
    crate = rocrate.ROCrate(crated)
    action = crate.dereference("#run_0-rank0")
    results = {e.id: e for e in action["result"]}
    data = _prov(crated)
    # what the PROV-JSON says the run stored, from its entities: metric files, artifacts, models, the card
    stored = {location(a["prov:location"]) for a in list(entities_of_type(data, "provml:Metric").values())
              + list(entities_of_type(data, "provml:Artifact").values())}
    assert set(results) == stored - {"artifacts/source/train.py"} | {"prov_rank0.json", "prov_rank0.dot"}
    for ident, entity in results.items():
        path = crated / ident
        assert path.is_file() and entity["contentSize"] == str(path.stat().st_size), ident
    for series in entities_of_type(data, "provml:Metric").values():
        assert results[location(series["prov:location"])]["encodingFormat"] == series["provml:format"] == "text/csv"
    doc = results["prov_rank0.json"]
    assert doc["encodingFormat"][0] == "application/json"
    assert doc["encodingFormat"][1].id == "https://www.w3.org/Submission/prov-json/"
    assert results["model_card_rank0.md"]["encodingFormat"] == "text/markdown"
    assert results["artifacts/models/lin/lin_step1.pt"]["encodingFormat"] == "application/octet-stream"
    assert set(crate.data_entities) >= set(results.values())  # every result is part of the crate (hasPart)


# -- the model card ----------------------------------------------------------------
def _card(run_dir):
    return (run_dir / "model_card_rank0.md").read_text()


def _table(text, heading):
    """The rows (cells) of the first table after ``heading``."""
    part = text.split(heading, 1)[1].lstrip("\n")
    rows = []
    for line in part.splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_the_card_has_the_hugging_face_sections(crated):
    text = _card(crated)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Model details", "## Training data", "## Training procedure",
                        "## Evaluation: metrics summary", "## Environmental impact", "## Provenance"]
    assert text.startswith("---\ntags:\n- prov4ml\n- provenance\nlibrary_name: pytorch\n")
    assert "# Model card: lin\n" in text


def test_the_card_reports_what_the_run_recorded(crated):
    text = _card(crated)
    data = _prov(crated)
    assert _table(text, "### Training hyper-parameters") == [["lr", "0.01", ""], ["epochs", "2", ""], ["optimizer", "sgd|momentum", ""]]
    rows = _table(text, "## Evaluation: metrics summary")
    series = {(s["provml:name"], s["provml:context"]): {k: literal(v) for k, v in s.items()}
              for s in entities_of_type(data, "provml:Metric").values() if s["provml:source"] == "metric"}
    assert [(r[0], r[1]) for r in rows] == list(series)
    for r in rows:
        s = series[(r[0], r[1])]
        assert r[2:8] == [str(s["provml:count"]), f"{s['provml:first_step']}–{s['provml:last_step']}",
                          f"{s['provml:last']:.6g}", f"{s['provml:min']:.6g}", f"{s['provml:max']:.6g}", f"{s['provml:mean']:.6g}"]
        assert r[8] == f"[file]({location(s['prov:location'])})"
    model = next(e for e in entities_of_type(data, "mls:Model").values() if "provml:ModelVersion" not in str(e["prov:type"]))
    details = dict(_table(text, "### lin"))
    assert details["parameters"] == str(literal(model["provml:parameters"])) == "10"
    assert _table(text, "## Training data")[0][:3] == ["train", "DataLoader", "8"]
    assert "- **PROV document:** [prov_rank0.json](prov_rank0.json)" in text
    assert "[ro-crate-metadata.json](ro-crate-metadata.json)" in text


def test_the_card_sums_the_carbon_readings(crated):
    text = _card(crated)
    emissions = formats.read(crated / "metrics/emissions_training_rank0.csv")["value"].tolist()
    energy = formats.read(crated / "metrics/energy_consumed_training_rank0.csv")["value"].tolist()
    assert len(emissions) == 2
    assert f"  emissions: {math.fsum(emissions)!r}\n" in text  # the Hugging Face co2_eq_emissions header, in grams
    assert f"- **Carbon emitted:** {math.fsum(emissions):.6g} g CO2eq" in text
    assert f"- **Energy consumed:** {math.fsum(energy):.6g} J" in text


def test_the_card_is_an_entity_of_the_prov_document(crated):
    data = _prov(crated)
    cards = entities_of_type(data, "provml:ModelCard")
    assert len(cards) == 1
    ident, card = next(iter(cards.items()))
    body = (crated / "model_card_rank0.md").read_bytes()
    assert location(card["prov:location"]) == "model_card_rank0.md"
    assert card["provml:sha256"] == hashlib.sha256(body).hexdigest() and literal(card["provml:size_bytes"]) == len(body)
    run = next(k for k in data["activity"] if k.endswith(".rank0"))
    assert any(g["prov:entity"] == ident and g["prov:activity"] == run for g in data["wasGeneratedBy"].values())
    generated = datetime.fromisoformat(literal(card["provml:created"]))
    assert generated <= datetime.fromisoformat(data["activity"][run]["prov:endTime"])  # within the run


def test_a_zarr_run_lists_its_stores_as_datasets(tmp_path):
    pytest.importorskip("zarr")
    run_dir = run_script(tmp_path, "zarr", carbon=False)
    crate = rocrate.ROCrate(run_dir)
    results = {e.id: e for e in crate.dereference("#run_0-rank0")["result"]}
    store = results["metrics/loss_training_rank0.zarr/"]
    assert store.type == "Dataset" and (run_dir / store.id).is_dir()
    assert "Not recorded: call `prov4ml.log_carbon_metrics" in _card(run_dir)
    assert "co2_eq_emissions" not in _card(run_dir)


def test_a_failed_run_is_a_failed_action(start):
    run = start()
    prov4ml.log_metric("loss", 0.5, "training", step=0)
    run.end(error=ValueError("boom"), crate_ro_crate=True, create_card=True)
    crate = rocrate.ROCrate(run.run_dir)
    action = crate.dereference("#run_0-rank0")
    assert action.properties()["actionStatus"] == {"@id": "http://schema.org/FailedActionStatus"}
    assert action["error"] == "ValueError: boom"
    assert action["instrument"].type in ("SoftwareApplication", "SoftwareSourceCode")
    assert "- **Error:** ValueError: boom" in _card(run.run_dir)
    assert "No model was logged" in _card(run.run_dir) and "No dataset was logged" in _card(run.run_dir)


def test_without_rocrate_the_run_is_saved_and_the_warning_names_the_extra(start, monkeypatch):
    monkeypatch.setitem(sys.modules, "rocrate", None)
    run = start()
    prov4ml.log_metric("loss", 0.5, "training", step=0)
    with pytest.warns(UserWarning, match=r'the RO-Crate could not be written: .*pip install "prov4ml\[rocrate\]"'):
        path = prov4ml.end_run(crate_ro_crate=True, create_card=True)
    assert json.loads(path.read_text())["activity"] and not (run.run_dir / "ro-crate-metadata.json").exists()
    assert (run.run_dir / "model_card_rank0.md").is_file()  # the card needs no extra


def test_end_run_without_the_flags_writes_neither(start):
    run = start()
    prov4ml.log_metric("loss", 0.5, "training", step=0)
    prov4ml.end_run()
    assert not (run.run_dir / "ro-crate-metadata.json").exists() and not (run.run_dir / "model_card_rank0.md").exists()
    assert not entities_of_type(json.loads(run.prov_path.read_text()), "provml:ModelCard")


def test_local_identifiers_are_iri_safe_and_unique(start):
    import torch

    run = start()
    data = torch.utils.data.TensorDataset(torch.randn(4, 2))
    prov4ml.log_dataset(data, "my data")
    prov4ml.log_dataset(data, "my data")
    prov4ml.log_param("learning rate", 0.1)
    prov4ml.end_run(crate_ro_crate=True)
    objects = rocrate.ROCrate(run.run_dir).dereference("#run_0-rank0")["object"]
    assert [(o.id, o["name"]) for o in objects] == [
        ("#dataset-my%20data", "my data"), ("#dataset-my%20data-2", "my data"), ("#param-learning%20rate", "learning rate")]
