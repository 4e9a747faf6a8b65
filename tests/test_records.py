"""Parameters, artifacts, models, model versions, datasets: recorded and read back."""

import hashlib
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

import prov4ml
from prov4ml import Context
from conftest import entities_of_type, literal, load_doc, load_json, location


def run_entity(data, run):
    return data["activity"][f"ex:exp.run_{run.run_id}.rank0"]


def test_params_are_typed_and_used_by_the_run(start):
    run = start()
    prov4ml.log_param("lr", 0.01)
    prov4ml.log_params({"epochs": 3, "amp": False, "name": "resnet", "layers": [64, 32], "none": None})
    prov4ml.log_param("lr", 0.01)  # same value again: one entity
    prov4ml.log_param("stage", "fine", Context.VALIDATION)
    with pytest.warns(UserWarning, match="changed"):
        prov4ml.log_param("epochs", 4)
    with pytest.raises(prov4ml.InvalidValueError, match="parameter key"):
        prov4ml.log_param(None, 1)
    prov4ml.end_run()
    data = load_json(run.prov_path)
    params = {a["prov:label"]: a.get("prov:value") for a in entities_of_type(data, "mls:HyperParameterSetting").values()}
    assert params["none"] is None  # no "None" text: the entity says provml:is_none
    assert params["lr"] == {"$": "0.01", "type": "xsd:double"}
    assert params["epochs"] == {"$": "3", "type": "xsd:int"}
    assert params["epochs#2"] == {"$": "4", "type": "xsd:int"}
    assert params["amp"] is False and params["name"] == "resnet" and params["layers"] == "[64, 32]"
    used = {u["prov:entity"] for u in data["used"].values()}
    assert f"ex:exp.run_{run.run_id}.rank0.param.lr" in used


def test_artifact_file_and_directory_are_copied_and_hashed(start, tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("hello")
    d = tmp_path / "plots"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("bb")
    run = start()
    prov4ml.log_artifact(str(f), Context.TESTING, step=2)
    prov4ml.log_artifact(d, Context.TRAINING)
    prov4ml.log_artifact(str(f), Context.TESTING)  # same name again: kept, not overwritten
    f.write_text("changed later")
    prov4ml.end_run()
    assert (run.artifacts.root / "report.txt").read_text() == "hello"
    assert (run.artifacts.root / "report_1.txt").exists()
    assert (run.artifacts.root / "plots" / "sub" / "b.txt").read_text() == "bb"
    data = load_json(run.prov_path)
    arts = {location(a["prov:location"]): {k: literal(v) for k, v in a.items()} for a in entities_of_type(data, "provml:Artifact").values()}
    rep = arts["artifacts/report.txt"]
    assert rep["provml:sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert rep["provml:size_bytes"] == 5 and rep["provml:step"] == 2 and rep["provml:context"] == "testing"
    assert arts["artifacts/plots"]["provml:size_bytes"] == 3 and arts["artifacts/plots"]["provml:is_directory"] is True
    derived = {(r["prov:generatedEntity"], r["prov:usedEntity"]) for r in data["wasDerivedFrom"].values()}
    (report,) = [i for i, a in entities_of_type(data, "provml:Artifact").items() if location(a["prov:location"]) == "artifacts/report.txt"]
    (original,) = [u for g, u in derived if g == report]
    assert location(data["entity"][original]["prov:location"]) == str(f.resolve())


def test_artifact_bad_input(start, tmp_path):
    run = start()
    f = tmp_path / "ok.txt"
    f.write_text("x")
    prov4ml.log_artifact(str(f), Context.TRAINING)
    with pytest.raises(prov4ml.ArtifactError, match="does not exist"):
        prov4ml.log_artifact(str(tmp_path / "missing.txt"), Context.TRAINING)
    with pytest.raises(prov4ml.ArtifactError, match=r"without '\.\.'"):
        prov4ml.log_artifact("../../escape.txt", str(f), Context.TRAINING)
    with pytest.raises(prov4ml.ArtifactError, match="relative"):
        prov4ml.log_artifact(artifact_name="/etc/passwd", artifact_path=str(f))
    prov4ml.end_run()
    assert not (run.run_dir.parent / "escape.txt").exists()
    assert len(entities_of_type(load_json(run.prov_path), "provml:Artifact")) == 1


def test_artifact_argument_orders(start, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("1,2")
    (tmp_path / "other.csv").write_text("3")
    run = start()
    prov4ml.log_artifact("data.csv", Context.TRAINING)
    prov4ml.log_artifact("renamed.csv", "data.csv", Context.VALIDATION, 4)
    prov4ml.log_artifact("data.csv", "training")  # a context name, not a path
    with pytest.raises(prov4ml.InvalidValueError, match="ambiguous"):
        prov4ml.log_artifact("data.csv", "other.csv")
    prov4ml.log_artifact("other.csv", Context.TRAINING, log_copy_in_prov_directory=False)
    prov4ml.end_run()
    assert (run.artifacts.root / "renamed.csv").read_text() == "1,2"
    locations = {location(a["prov:location"]) for a in entities_of_type(load_json(run.prov_path), "provml:Artifact").values()}
    assert str(tmp_path / "other.csv") in locations


def test_log_model_info_and_weights(start):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    model[2].weight.requires_grad_(False)
    run = start()
    prov4ml.log_model(model, "net")
    prov4ml.log_model("net2", model, log_model_info=False, log_as_artifact=False)  # older argument order
    prov4ml.end_run()
    data = load_json(run.prov_path)
    models = {a["prov:label"]: {k: literal(v) for k, v in a.items()} for ident, a in data["entity"].items() if ".model." in ident}
    net = models["net"]
    assert net["provml:parameters"] == 4 * 3 + 3 + 3 + 3 + 3 + 1
    assert net["provml:trainable_parameters"] == net["provml:parameters"] - 3
    assert net["provml:memory_footprint_bytes"] == net["provml:parameter_bytes"] + net["provml:buffer_bytes"]
    assert "provml:parameters" not in models["net2"]
    state = torch.load(run.artifacts.root / "models" / "net.pt")
    assert set(state) == set(model.state_dict())
    assert "Linear(in_features=4" in (run.artifacts.root / "models" / "net_architecture.txt").read_text()


def test_model_versions_form_a_revision_chain(start):
    model = torch.nn.Linear(2, 1)
    run = start()
    for epoch in range(3):
        with torch.no_grad():
            model.weight.add_(1.0)
        # names differ per epoch as in the reference library's examples; the object links them
        prov4ml.save_model_version(model, f"model_version_{epoch}", Context.TRAINING, epoch)
    prov4ml.save_model_version("other", torch.nn.Linear(1, 1), Context.TRAINING)  # older order
    prov4ml.end_run()
    data = load_json(run.prov_path)
    versions = entities_of_type(data, "provml:ModelVersion")
    assert len(versions) == 4
    chain = {r["prov:generatedEntity"]: r["prov:usedEntity"] for r in data["wasDerivedFrom"].values() if "prov:type" in r}
    ids = sorted(i for i in versions if "model_version_" in i)
    assert chain[ids[1]] == ids[0] and chain[ids[2]] == ids[1] and ids[0] not in chain
    assert all(r["prov:type"]["$"] == "prov:Revision" for r in data["wasDerivedFrom"].values() if "prov:type" in r)
    saved = torch.load(run.run_dir / location(versions[ids[2]]["prov:location"]))
    assert float(saved["weight"][0, 0]) == pytest.approx(float(model.weight.detach()[0, 0]))
    generated = {g["prov:entity"]: g["prov:activity"] for g in data["wasGeneratedBy"].values()}
    assert generated[ids[0]].endswith("context.training")


def test_datasets(start):
    ds = TensorDataset(torch.randn(100, 3, 8, 8), torch.randint(0, 10, (100,)))
    run = start()
    prov4ml.log_dataset(ds, "full")
    prov4ml.log_dataset(Subset(ds, range(40)), "subset")
    prov4ml.log_dataset(DataLoader(ds, batch_size=32, shuffle=True, num_workers=0), "loader")
    prov4ml.log_dataset("val", DataLoader(Subset(ds, range(10)), batch_size=4))  # older order
    prov4ml.end_run()
    data = load_json(run.prov_path)
    sets = {a["prov:label"]: {k: literal(v) for k, v in a.items()} for a in entities_of_type(data, "mls:Dataset").values()}
    assert sets["full"]["provml:size"] == 100 and sets["full"]["provml:sample_shape"] == "3x8x8;scalar"
    assert sets["subset"]["provml:size"] == 40 and sets["subset"]["provml:parent_size"] == 100
    loader = sets["loader"]
    assert (loader["provml:batch_size"], loader["provml:num_batches"], loader["provml:shuffle"], loader["provml:num_workers"]) == (32, 4, True, 0)
    assert sets["val"]["provml:num_batches"] == 3 and sets["val"]["provml:shuffle"] is False


def test_log_optimizer_keeps_out_of_the_users_parameters(start):
    """A user's own ``optimizer`` parameter and log_optimizer's record live side by side, with no warning."""
    from prov4ml.runs import read_run

    run = start()
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.05, momentum=0.9, nesterov=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prov4ml.log_param("optimizer", "adam")
        prov4ml.log_optimizer(optimizer)
        prov4ml.log_param("optimizer.lr", 0.001)
    with pytest.raises(prov4ml.InvalidValueError, match="'prov4ml:' are prov4ml's own"):
        prov4ml.log_param("prov4ml:optimizer", "x")
    prov4ml.end_run()
    group = optimizer.param_groups[0]
    expected = {f"prov4ml:optimizer.{k}": v for k, v in group.items()
                if k != "params" and isinstance(v, (int, float, bool, str))}
    assert read_run(run.run_dir).params == {
        "optimizer": "adam", "optimizer.lr": 0.001, "prov4ml:optimizer": "SGD", **expected,
    }
    assert expected["prov4ml:optimizer.lr"] == 0.05 and expected["prov4ml:optimizer.nesterov"] is True


def test_a_changed_parameter_warns_at_the_users_line(start):
    start()
    prov4ml.log_param("lr", 0.1)
    with pytest.warns(UserWarning, match="parameter 'lr' changed from 0.1 to 0.2") as caught:
        prov4ml.log_param("lr", 0.2)
    assert caught[0].filename == __file__


def test_optimizer_source_and_command(start, tmp_path):
    src = tmp_path / "train.py"
    src.write_text("print('hi')\n")
    run = start()
    prov4ml.log_optimizer(torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1, momentum=0.9))
    prov4ml.log_source_code(str(src))
    prov4ml.log_execution_command("python train.py", str(tmp_path))
    prov4ml.end_run()
    data = load_json(run.prov_path)
    params = {a["prov:label"]: literal(a["prov:value"]) for a in entities_of_type(data, "mls:HyperParameterSetting").values()}
    assert params["prov4ml:optimizer"] == "SGD" and params["prov4ml:optimizer.lr"] == 0.1
    assert params["prov4ml:optimizer.momentum"] == 0.9
    assert (run.artifacts.root / "source" / "train.py").exists()
    plan = entities_of_type(data, "prov:Plan")
    assert location(list(plan.values())[0]["prov:location"]) == str(src.resolve())
    assert data["activity"][f"ex:exp.run_{run.run_id}.rank0"]["provml:execution_command"].startswith("python train.py")
    load_doc(run.prov_path)


def test_logging_a_folder_that_holds_the_run_is_refused(start, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start()
    with pytest.raises(prov4ml.ArtifactError, match="into itself"):
        prov4ml.log_artifact(".", prov4ml.Context.TRAINING)
    prov4ml.end_run()
