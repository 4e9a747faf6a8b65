"""The call forms of the reference library's newest generation (3.2.x) beside the seed's, in user scripts.

Each test writes a script in the style of the reference's examples (only
``import prov4ml`` and torch), runs it in a fresh interpreter, and checks the
PROV-JSON it leaves exactly.
"""

import json
import subprocess

import pytest

from script_helpers import by_label, context_activity, document, relations, run_activity, run_script
from conftest import location


def _ids(records):
    return sorted((r.get("prov:activity"), r.get("prov:entity")) for r in records)


def test_start_run_orders_by_value_and_default_namespace(tmp_path):
    proc = run_script(tmp_path, """
        import json, warnings
        import prov4ml

        warnings.simplefilter("error")  # none of these forms warns
        out = []
        for args, kwargs in [
            (("third_gen", "www.example.org", "prov"), {}),                 # 3.2.x: experiment first
            (("www.example.org", "seed", "prov"), {}),                      # the seed: namespace first
            (("no_namespace",), {"provenance_save_dir": "prov"}),           # 3.2.x: the namespace is optional
            (("https://example.org/ml#", "iri_first"), {"provenance_save_dir": "prov"}),
            (("iri_second", "https://example.org/ml#", "prov"), {}),
            ((), {"experiment_name": "by.name", "prov_user_namespace": "lab.example.org",
                  "provenance_save_dir": "prov", "use_run_id": True}),
            (("use_run_id_off",), {"provenance_save_dir": "prov", "use_run_id": False}),
        ]:
            run = prov4ml.start_run(*args, capture=False, **kwargs)
            out.append([run.experiment_name, run.user_namespace, str(run.prov_path)])
            prov4ml.end_run()
        print(json.dumps(out))
    """)
    results = json.loads(proc.stdout)
    assert len(results) == 7
    expected = {
        "third_gen": ("www.example.org", "http://www.example.org/"),
        "seed": ("www.example.org", "http://www.example.org/"),
        "no_namespace": ("www.example.org", "http://www.example.org/"),
        "iri_first": ("https://example.org/ml#", "https://example.org/ml#"),
        "iri_second": ("https://example.org/ml#", "https://example.org/ml#"),
        "by.name": ("lab.example.org", "http://lab.example.org/"),
        "use_run_id_off": ("www.example.org", "http://www.example.org/"),
    }
    seen = {}
    for experiment, namespace, path in results:
        data = document(tmp_path / path)
        _, run = run_activity(data)
        assert run["provml:experiment"] == experiment
        seen[experiment] = (namespace, data["prefix"]["ex"])
    assert seen == expected


def test_start_run_refuses_what_cannot_be_read(tmp_path):
    proc = run_script(tmp_path, """
        import prov4ml
        for args, kwargs in [(("a", "b"), {"experiment_name": "c"}), ((), {"prov_user_namespace": "My Project"})]:
            try:
                prov4ml.start_run(*args, **kwargs)
            except prov4ml.Prov4MLError as exc:
                print(type(exc).__name__, exc)
    """)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ArgumentError start_run() got ['experiment_name'] by name and 2 leading positional")
    assert lines[1].startswith("InvalidValueError prov_user_namespace 'My Project' is not a namespace")
    assert "start_run(experiment_name='My Project'" in lines[1]


def test_log_param_source_is_input_and_plain_text_values(tmp_path):
    proc = run_script(tmp_path, """
        import pathlib, torch
        import prov4ml
        from prov4ml import Context

        prov4ml.start_run("params", "www.example.org", "prov", capture=False)
        prov4ml.log_param("lr", 0.01, Context.TRAINING, "argparse")
        prov4ml.log_param("best_epoch", 7, is_input=False)
        prov4ml.log_param("data_dir", pathlib.Path("/data/x"))
        prov4ml.log_param("device", torch.device("cpu"))
        prov4ml.log_param("sizes", (1, 2))
        prov4ml.log_param("tags", {"b", "a"})
        prov4ml.log_param("nested", {"k": [1, "x"]})
        print(prov4ml.end_run())
    """)
    data = document(proc.stdout.strip())
    run_id, _ = run_activity(data)
    lr_id, lr = by_label(data, "lr")
    assert lr["provml:source"] == "argparse" and lr["provml:context"] == "training"
    assert lr["prov:value"] == {"$": "0.01", "type": "xsd:double"}
    assert _ids(relations(data, "used", lr_id)) == [(run_id, lr_id)]
    best_id, _ = by_label(data, "best_epoch")
    assert relations(data, "used", best_id) == []
    assert _ids(relations(data, "wasGeneratedBy", best_id)) == [(run_id, best_id)]
    values = {label: by_label(data, label)[1]["prov:value"] for label in ("data_dir", "device", "sizes", "tags", "nested")}
    assert values == {"data_dir": "/data/x", "device": "cpu", "sizes": "[1, 2]", "tags": '["a", "b"]',
                      "nested": '{"k": [1, "x"]}'}


def test_log_metric_string_source_survives_recovery(tmp_path):
    proc = run_script(tmp_path, """
        import os
        import prov4ml
        from prov4ml import Context

        run = prov4ml.start_run("metrics", "www.example.org", "prov", capture=False)
        prov4ml.log_metric("loss", 0.5, Context.TRAINING, step=1, source="torchmetrics")
        prov4ml.log_metric("cpu", 3.0, Context.TRAINING, step=1, source="system_metric")
        prov4ml.log_metric("t", 1.0, source=prov4ml.LoggingItemKind.EXECUTION_TIME)
        prov4ml.flush()
        print(run.run_dir, flush=True)
        os._exit(9)  # killed: no end_run
    """, check=False)
    assert proc.returncode == 9, proc.stderr
    run_dir = proc.stdout.strip()
    subprocess.run(["python", "-c", f"import prov4ml; prov4ml.recover({run_dir!r})"], check=True, cwd=tmp_path,
                   env={**__import__("os").environ, "PYTHONPATH": str(__import__("conftest").ROOT)})
    data = document(f"{run_dir}/prov_rank0.json")
    sources = {e["provml:name"]: e["provml:source"] for e in data["entity"].values() if "provml:name" in e}
    assert sources == {"loss": "torchmetrics", "cpu": "system_metric", "t": "execution_time"}


def test_log_artifact_forms(tmp_path):
    (tmp_path / "tmp.png").write_bytes(b"png")
    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / "data.csv").write_text("1,2\n")
    (tmp_path / "big.bin").write_bytes(b"\0" * 1000)
    (tmp_path / "plot.png").write_bytes(b"plot")
    proc = run_script(tmp_path, """
        import prov4ml
        from prov4ml import Context

        prov4ml.start_run("artifacts", "www.example.org", "prov", capture=False)
        prov4ml.log_artifact("tmp", "tmp.png")
        prov4ml.log_artifact("cfg", "config.yaml", Context.TRAINING, "hydra", 3, log_copy_subdirectory="configs",
                             other_attrs={"author": "Ada", "epochs": 3, "dcterms:license": "MIT"})
        prov4ml.log_artifact("data", "data.csv", is_input=True)
        prov4ml.log_artifact("big", "big.bin", log_copy_in_prov_directory=False)
        prov4ml.log_artifact("plot.png", Context.VALIDATION, 2)   # the seed form
        print(prov4ml.end_run())
    """)
    data = document(proc.stdout.strip())
    run_dir = tmp_path / "prov" / "artifacts" / "run_0"
    assert sorted(p.relative_to(run_dir / "artifacts").as_posix() for p in (run_dir / "artifacts").rglob("*") if p.is_file()) \
        == ["configs/cfg.yaml", "data.csv", "plot.png", "tmp.png"]
    run_id, _ = run_activity(data)
    tmp_id, tmp = by_label(data, "tmp")
    assert location(tmp["prov:location"]) == "artifacts/tmp.png"
    cfg_id, cfg = by_label(data, "cfg")
    assert location(cfg["prov:location"]) == "artifacts/configs/cfg.yaml" and cfg["provml:source"] == "hydra"
    assert cfg["provml:step"] == {"$": "3", "type": "xsd:int"} and cfg["provml:context"] == "training"
    assert (cfg["ex:author"], cfg["ex:epochs"], cfg["dcterms:license"]) == ("Ada", {"$": "3", "type": "xsd:int"}, "MIT")
    training = context_activity(data, "training")
    assert _ids(relations(data, "wasGeneratedBy", cfg_id)) == [(training, cfg_id)]
    data_id, _ = by_label(data, "data")  # an input: the run used the file where it was; the copy is its own
    (original_id,) = [d["prov:usedEntity"] for d in data["wasDerivedFrom"].values() if d["prov:generatedEntity"] == data_id]
    assert _ids(relations(data, "used", original_id)) == [(run_id, original_id)]
    assert _ids(relations(data, "wasGeneratedBy", data_id)) == [(run_id, data_id)]
    big_id, big = by_label(data, "big")
    assert location(big["prov:location"]) == str(tmp_path / "big.bin") and big["provml:size_bytes"] == {"$": "1000", "type": "xsd:int"}
    assert [d for d in data["wasDerivedFrom"].values() if d["prov:generatedEntity"] == big_id] == []
    plot = data["entity"][next(k for k, e in data["entity"].items() if location(e.get("prov:location")) == "artifacts/plot.png")]
    assert plot["provml:step"] == {"$": "2", "type": "xsd:int"} and plot["provml:context"] == "validation"


LAYERS = """name,type,parameters,in_features,out_features,in_channels,out_channels,kernel_size,stride,padding
0,Linear,15,4,3,,,,,
1,ReLU,0,,,,,,,
2,Conv1d,35,,,2,5,3,2,0
"""


def test_log_model_forms(tmp_path):
    proc = run_script(tmp_path, """
        import torch
        import prov4ml
        from prov4ml import Context

        prov4ml.start_run("models", "www.example.org", "prov", capture=False)
        net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Conv1d(2, 5, 3, stride=2))
        prov4ml.log_model("net", net, Context.TRAINING, "torch", log_model_info=True, log_model_layers=True,
                          other_attrs={"pretrained": False})
        backbone = torch.nn.Linear(2, 2)
        prov4ml.log_model("backbone", backbone, is_input=True, log_copy_in_prov_directory=False)
        prov4ml.log_model(backbone, "seed_form", False, True)   # (model, name, log_model_info, log_as_artifact)
        torch.save(backbone.state_dict(), "weights.pt")
        prov4ml.log_model("from_file", "weights.pt", log_copy_in_prov_directory=False)
        print(prov4ml.end_run())
    """)
    data = document(proc.stdout.strip())
    models = tmp_path / "prov" / "models" / "run_0" / "artifacts" / "models"
    assert (models / "net_layers.csv").read_text() == LAYERS
    assert sorted(p.name for p in models.iterdir()) == [
        "backbone_architecture.txt", "net.pt", "net_architecture.txt", "net_layers.csv", "seed_form.pt"]
    run_id, _ = run_activity(data)
    net_id, net = by_label(data, "net")
    assert (net["provml:context"], net["provml:source"], net["ex:pretrained"]) == ("training", "torch", False)
    assert net["provml:parameters"] == {"$": "50", "type": "xsd:int"}
    layers_id, _ = by_label(data, "models/net_layers.csv")
    assert {"prov:generatedEntity": layers_id, "prov:usedEntity": net_id} in [
        {k: v for k, v in d.items() if k in ("prov:generatedEntity", "prov:usedEntity")} for d in data["wasDerivedFrom"].values()]
    assert relations(data, "wasGeneratedBy", net_id) == []  # the model across its files is never generated itself
    backbone_id, _ = by_label(data, "backbone")
    assert _ids(relations(data, "used", backbone_id)) == [(run_id, backbone_id)]
    assert relations(data, "wasGeneratedBy", backbone_id) == []
    seed_id, seed = by_label(data, "seed_form")
    assert "provml:parameters" not in seed  # log_model_info=False
    file_id, _ = by_label(data, "from_file")
    members = [m["prov:specificEntity"] for m in data["specializationOf"].values() if m["prov:generalEntity"] == file_id]
    assert [location(data["entity"][m]["prov:location"]) for m in members] == [str(tmp_path / "weights.pt")]


def test_save_model_version_and_log_dataset_by_keyword(tmp_path):
    proc = run_script(tmp_path, """
        import torch
        import prov4ml
        from prov4ml import Context
        from torch.utils.data import DataLoader, TensorDataset

        prov4ml.start_run("versions", "www.example.org", "prov", capture=False)
        net = torch.nn.Linear(4, 3)
        prov4ml.save_model_version(model_name="AE", model=net, context=Context.TRAINING, source="loop", step=1,
                                   other_attrs={"val_loss": 0.25})
        prov4ml.save_model_version(net, "AE", Context.TRAINING, 2)   # the seed form
        loader = DataLoader(TensorDataset(torch.zeros(10, 4)), batch_size=5)
        prov4ml.log_dataset(dataset_label="train", dataset=loader, context=Context.TRAINING, source="torchvision",
                            other_attrs={"license": "CC-BY"})
        prov4ml.log_dataset(loader, "val")
        print(prov4ml.end_run())
    """)
    data = document(proc.stdout.strip())
    first_id, first = by_label(data, "AE v0 (step 1)")
    assert (first["provml:source"], first["ex:val_loss"]) == ("loop", {"$": "0.25", "type": "xsd:double"})
    second_id, _ = by_label(data, "AE v1 (step 2)")
    assert [(d["prov:generatedEntity"], d["prov:usedEntity"]) for d in data["wasDerivedFrom"].values()
            if d["prov:generatedEntity"] == second_id] == [(second_id, first_id)]
    train_id, train = by_label(data, "train")
    assert (train["provml:source"], train["ex:license"], train["provml:context"]) == ("torchvision", "CC-BY", "training")
    assert train["provml:size"] == {"$": "10", "type": "xsd:int"}
    assert _ids(relations(data, "used", train_id)) == [(context_activity(data, "training"), train_id)]
    val_id, _ = by_label(data, "val")
    assert _ids(relations(data, "used", val_id)) == [(run_activity(data)[0], val_id)]


def test_contexts_with_string_parents_finish(tmp_path):
    """create_context / log_context with a string parent once hung on a lock taken twice."""
    proc = run_script(tmp_path, """
        import threading
        import prov4ml

        prov4ml.start_run("contexts", "www.example.org", "prov", capture=False)
        prov4ml.create_context("finetune", "Training")
        prov4ml.log_context("lod", "finetune", source_of_data="s3://bucket/train")
        prov4ml.create_context("probe", is_subcontext_of="lod")
        threads = [threading.Thread(target=prov4ml.log_context, args=(f"worker{i}", "Training")) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        prov4ml.log_metric("x", 1.0, "probe", step=0)
        print(prov4ml.end_run())
    """, timeout=60)
    data = document(proc.stdout.strip())
    acts = {a["provml:context"]: a for a in data["activity"].values() if "provml:context" in a}
    assert {k: (a.get("provml:parent_context"), a.get("provml:source_of_data")) for k, a in acts.items()} == {
        "probe": ("lod", None), "lod": ("finetune", "s3://bucket/train"), "finetune": ("training", None),
        "training": (None, None)}
    started = {(i["prov:activity"], i.get("prov:starter")) for i in data["wasStartedBy"].values()}
    assert (context_activity(data, "lod"), context_activity(data, "finetune")) in started  # the parent starts it


def test_log_source_code_copies_once_and_use_git(tmp_path):
    proc = run_script(tmp_path, """
        import time
        import prov4ml

        prov4ml.start_run("source", "www.example.org", "prov")   # the environment capture copies the script too
        prov4ml.log_source_code()
        time.sleep(1.5)   # the capture has run by now
        prov4ml.log_source_code()
        print(prov4ml.end_run())
    """)
    run_dir = tmp_path / "prov" / "source" / "run_0"
    assert [p.name for p in (run_dir / "artifacts" / "source").iterdir()] == ["train.py"]
    data = document(proc.stdout.strip())
    sources = [e for e in data["entity"].values() if (location(e.get("prov:location")) or "").startswith("artifacts/source/")]
    assert len(sources) == 1

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    (repo / "model.py").write_text("x = 1\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "model.py"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "one"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    proc = run_script(tmp_path, """
        import prov4ml
        prov4ml.start_run("git_source", "www.example.org", "prov", capture=False)
        prov4ml.log_source_code("repo/model.py", use_git=True)
        print(prov4ml.end_run())
    """)
    data = document(proc.stdout.strip())
    params = {e["prov:label"]: e["prov:value"] for e in data["entity"].values() if "prov:value" in e}
    assert params["source_code.git_commit"] == head and params["source_code.git_dirty"] is False
    assert not (tmp_path / "prov" / "git_source" / "run_0" / "artifacts" / "source").exists()


def test_a_run_left_by_a_dead_task_is_ended_as_failed(tmp_path):
    proc = run_script(tmp_path, """
        import json, threading, warnings
        import prov4ml

        def task():   # a worker's task that dies without end_run
            prov4ml.start_run("tasks", "www.example.org", "prov", capture=False)
            prov4ml.log_metric("loss", 1.0, step=0)
            raise SystemExit  # ends the thread quietly

        t = threading.Thread(target=task)
        t.start()
        t.join()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            second = prov4ml.start_run("tasks", "www.example.org", "prov", capture=False)
        try:
            prov4ml.start_run("tasks", "www.example.org", "prov", capture=False)
        except prov4ml.RunStateError as exc:
            refused = str(exc)
        third = prov4ml.start_run("tasks", "www.example.org", "prov", capture=False, end_stale_run=True)
        prov4ml.end_run()
        print(json.dumps({"warnings": [(str(w.message), w.filename) for w in caught], "refused": refused,
                          "second": str(second.prov_path), "third": str(third.prov_path)}))
    """)
    out = json.loads(proc.stdout)
    assert len(out["warnings"]) == 1
    message, filename = out["warnings"][0]
    assert "has ended: it is ended as failed and the new run starts" in message and filename.endswith("train.py")
    assert "end_stale_run=True" in out["refused"]
    first = document(tmp_path / "prov" / "tasks" / "run_0" / "prov_rank0.json")
    _, run = run_activity(first)
    assert run["provml:status"] == "failed" and run["provml:error_type"] == "RunStateError"
    assert "the task that started this run ended without end_run" in run["provml:error_message"]
    _, second = run_activity(document(out["second"]))
    assert second["provml:status"] == "failed" and "end_stale_run=True" in second["provml:error_message"]
    _, third = run_activity(document(out["third"]))
    assert third["provml:status"] == "finished"


def test_a_run_left_by_a_dead_dask_task_is_ended_as_failed(tmp_path):
    """A dask worker reuses its threads: the task key tells that the task which started the run is over."""
    pytest.importorskip("distributed")
    proc = run_script(tmp_path, """
        import json, warnings
        import prov4ml
        from distributed import Client

        def task(i, fail):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                run = prov4ml.start_run("dask", "www.example.org", "prov", capture=False)
            prov4ml.log_metric("loss", float(i), step=0)
            if fail:
                raise RuntimeError("the task died")
            prov4ml.end_run()
            return [str(w.message) for w in caught], str(run.prov_path)

        if __name__ == "__main__":
            with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
                try:
                    client.submit(task, 0, True, pure=False).result()
                except RuntimeError:
                    pass
                print(json.dumps(client.submit(task, 1, False, pure=False).result()))
    """)
    caught, second = json.loads(proc.stdout.splitlines()[-1])
    assert len(caught) == 1 and "the dask task that started it, 'task-" in caught[0]
    _, first = run_activity(document(tmp_path / "prov" / "dask" / "run_0" / "prov_rank0.json"))
    assert first["provml:status"] == "failed"
    assert first["provml:error_message"].startswith("the task that started this run ended without end_run (the dask task")
    _, run = run_activity(document(second))
    assert run["provml:status"] == "finished"


@pytest.mark.parametrize("variables, rank", [
    ({"SLURM_PROCID": "3"}, 3),
    ({"SLURM_PROCID": "3", "RANK": "1"}, 1),
    ({"LOCAL_RANK": "2"}, 2),
    ({"OMPI_COMM_WORLD_RANK": "5", "LOCAL_RANK": "1"}, 5),
])
def test_rank_from_the_launcher(tmp_path, variables, rank):
    launchers = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_LOCALID")
    proc = run_script(tmp_path, """
        import prov4ml
        run = prov4ml.start_run("ranks", "www.example.org", "prov", capture=False, collect_all_processes=True)
        print(run.rank)
        prov4ml.end_run()
    """, env=variables, unset=launchers)
    assert int(proc.stdout) == rank
