"""What a newcomer tripped over, each as the newcomer met it: a script, a doc, an example."""

import inspect
import json
import re
import subprocess
import sys
import time

import pytest

import prov4ml
from conftest import ROOT
from script_helpers import by_label, document, run_activity, run_script


def test_python_version_and_torch_cpu_index_are_stated():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^requires-python = ">=3\.10"', pyproject, re.M)
    for doc in ("README.md", "docs/getting-started.md"):
        text = (ROOT / doc).read_text()
        assert "Python ≥ 3.10" in text and "--index-url https://download.pytorch.org/whl/cpu" in text, doc
    assert "TORCH_INDEX" in (ROOT / "Makefile").read_text()


def test_an_invalid_namespace_is_refused_at_start_run(tmp_path):
    proc = run_script(tmp_path, """
        import prov4ml
        try:
            prov4ml.start_run("My Project", "exp", "prov")
        except prov4ml.InvalidValueError as exc:
            print(exc)
    """)
    assert proc.stdout.startswith("prov_user_namespace 'My Project' is not a namespace")
    assert not (tmp_path / "prov").exists()  # refused before anything was created


def test_end_run_twice_warns_and_without_a_run_names_start_run(tmp_path):
    proc = run_script(tmp_path, """
        import json, warnings
        import prov4ml
        try:
            prov4ml.end_run()
        except prov4ml.RunStateError as exc:
            never = str(exc)
        prov4ml.start_run("twice", "www.example.org", "prov", capture=False)
        first = prov4ml.end_run()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            second = prov4ml.end_run()  # line 12
        print(json.dumps({"never": never, "same": first == second,
                          "warnings": [(str(w.message), w.filename, w.lineno) for w in caught]}))
    """)
    out = json.loads(proc.stdout)
    assert out["never"] == "end_run() needs an active run: call prov4ml.start_run(...) first"
    assert out["same"] is True
    [(message, filename, lineno)] = out["warnings"]
    assert message == "end_run(): <prov4ml.Run twice/run_0 rank=0 status=finished> has already ended; this call does nothing"
    assert filename.endswith("train.py") and lineno == 12


def test_unknown_start_run_keyword_warns_at_the_users_line_with_the_closest_name(tmp_path):
    proc = run_script(tmp_path, """
        import json, warnings
        import prov4ml
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prov4ml.start_run("kw", "www.example.org", "prov", capture=False, metric_sampler={})  # line 6
            prov4ml.end_run()
            with prov4ml.run("kw", provenance_save_dir="prov", capture=False, colour=True):  # line 8
                pass
        print(json.dumps([(str(w.message), w.filename, w.lineno) for w in caught]))
    """)
    first, second = json.loads(proc.stdout)
    assert first[0] == "start_run: unknown option 'metric_sampler' ignored; did you mean 'metric_samplers'?"
    assert first[1].endswith("train.py") and first[2] == 6
    assert second[0] == "start_run: unknown option 'colour' ignored; see docs/api.md for the known options"
    assert second[1].endswith("train.py") and second[2] == 8


def test_misplaced_step_non_models_and_bad_country_say_so(tmp_path):
    proc = run_script(tmp_path, """
        import prov4ml
        try:
            prov4ml.start_run("c", "www.example.org", "prov", carbon_country="US")
        except prov4ml.InvalidValueError as exc:
            print(exc)
        prov4ml.start_run("c", "www.example.org", "prov", capture=False, carbon_country="fra")
        for call in (lambda: prov4ml.log_metric("loss", 1.0, 5),
                     lambda: prov4ml.log_model("m", 3),
                     lambda: prov4ml.save_model_version("m", [1, 2])):
            try:
                call()
            except prov4ml.InvalidValueError as exc:
                print(exc)
        print(prov4ml.active_run().options["carbon_country"])
        prov4ml.end_run()
    """)
    lines = proc.stdout.splitlines()
    assert lines == [
        "carbon_country 'US' is not an ISO 3166-1 alpha-3 country code; use e.g. 'USA', 'FRA', 'DEU', 'ITA' "
        "(did you mean 'USA' or 'RUS' or 'MUS'?)",
        "invalid context 5: a number was passed where the context goes; pass the step by name, "
        "e.g. log_metric('loss', value, step=5), and the context as a Context or a string",
        "log_model() got 3 of type int, which is not a model: pass a torch.nn.Module, its state_dict(), "
        "or the path of a checkpoint file",
        "save_model_version() got [1, 2] of type list, which is not a model: pass a torch.nn.Module, its "
        "state_dict(), or the path of a checkpoint file",
        "FRA",
    ]


@pytest.mark.parametrize("name, parameters", [
    ("start_run", ["experiment_name", "prov_user_namespace", "provenance_save_dir", "collect_all_processes",
                   "save_after_n_logs", "rank", "options"]),
    ("log_artifact", ["artifact_name", "artifact_path", "context", "source", "step", "log_copy_in_prov_directory",
                      "log_copy_subdirectory", "is_model", "is_input", "other_attrs", "timestamp"]),
    ("save_model_version", ["model_name", "model", "context", "source", "step", "incremental", "is_input",
                            "log_copy_in_prov_directory", "other_attrs", "timestamp"]),
    ("log_model", ["model_name", "model", "context", "source", "log_model_info", "log_model_layers",
                   "log_copy_in_prov_directory", "is_input", "other_attrs", "log_as_artifact"]),
    ("log_dataset", ["dataset_label", "dataset", "context", "source", "log_dataset_info", "other_attrs", "label"]),
])
def test_help_shows_the_real_parameters(name, parameters):
    import pydoc

    fn = getattr(prov4ml, name)
    assert list(inspect.signature(fn).parameters) == parameters
    assert f"{name}({parameters[0]}" in pydoc.render_doc(fn, renderer=pydoc.plaintext)


def test_the_first_cpu_usage_is_measured(tmp_path):
    proc = run_script(tmp_path, """
        import threading, time
        import prov4ml

        done = threading.Event()  # busy until measured, however long start_run takes on a loaded machine
        busy = threading.Thread(target=lambda: [None for _ in iter(done.is_set, True)], daemon=True)
        busy.start()
        run = prov4ml.start_run("cpu", "www.example.org", "prov", capture=False)
        prov4ml.log_system_metrics(prov4ml.Context.TRAINING, step=0)
        done.set()
        prov4ml.end_run()
        print((run.metrics_dir / "cpu_usage_training_rank0.csv").read_text().splitlines()[1].split(",")[1])
    """)
    assert float(proc.stdout) > 0


def test_model_versions_are_numbered_per_model(tmp_path):
    proc = run_script(tmp_path, """
        import torch
        import prov4ml

        prov4ml.start_run("versions", "www.example.org", "prov", capture=False)
        ae, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        prov4ml.save_model_version("AE", ae, step=0)
        prov4ml.save_model_version("checkpoint", head, step=0)
        prov4ml.save_model_version("AE", ae, step=1)
        print(prov4ml.end_run())
    """)
    data = document(proc.stdout.strip())
    labels = sorted(e["prov:label"] for e in data["entity"].values() if "provml:version" in e)
    assert labels == ["AE v0 (step 0)", "AE v1 (step 1)", "checkpoint v0 (step 0)"]
    second, _ = by_label(data, "AE v1 (step 1)")
    first, _ = by_label(data, "AE v0 (step 0)")
    assert [d["prov:usedEntity"] for d in data["wasDerivedFrom"].values() if d["prov:generatedEntity"] == second] == [first]


@pytest.mark.parametrize("backend, workers", [("serial", 1), ("process", 2)])
def test_a_sweep_trial_past_its_timeout_is_failed_with_the_reason(tmp_path, backend, workers):
    sys.path.insert(0, str(ROOT / "tests"))
    from sweep_helpers import sleepy

    from prov4ml.sweep import sweep

    t0 = time.monotonic()
    results = sweep(sleepy, [{"sleep": 0.0}, {"sleep": 30.0}], experiment_name="slow", backend=backend, workers=workers,
                    provenance_save_dir=str(tmp_path), timeout=1.0, progress=False,
                    start_run_options={"capture": False})
    assert time.monotonic() - t0 < 25  # the 30 s trial was stopped
    fast, slow = results
    assert (fast.status, fast.error, fast.result) == ("finished", None, 1.0)
    message = "the trial ran longer than sweep(timeout=1) seconds and was stopped"
    assert (slow.status, slow.error) == ("failed", f"TrialTimeoutError: {message}")
    _, run = run_activity(document(f"{slow.run_dir}/prov_rank0.json"))
    assert (run["provml:status"], run["provml:error_type"], run["provml:error_message"]) == (
        "failed", "TrialTimeoutError", message)


def test_getting_started_reads_the_quickstart_output_without_pandas(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--out", "prov"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (ROOT / "docs" / "getting-started.md").read_text()
    layout = text.split("`examples/quickstart.py` writes:\n\n```\n", 1)[1].split("```", 1)[0].splitlines()
    run_dir = tmp_path / layout[0].strip()
    listed = [line.split()[0] for line in layout[1:]]
    assert listed == ["prov_rank0.json", "metrics/loss_training_rank0.csv", "metrics/val_loss_validation_rank0.csv",
                      "artifacts/models/regressor/...", "prov_rank0.dot"]
    for name in listed:
        assert (run_dir / name.replace("/...", "")).exists(), name
    assert not list(run_dir.glob("*.svg"))  # promised only with create_svg=True
    block = text.split("```python\nimport csv\n", 1)[1].split("```", 1)[0]
    check = subprocess.run([sys.executable, "-c", "import csv\n" + block + "\nprint(len(loss))"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert check.returncode == 0, check.stderr
    assert int(check.stdout.split()[-1]) > 0
    assert "pandas" not in block


def test_examples_use_only_the_public_api():
    for script in sorted((ROOT / "examples").glob("*.py")):
        text = script.read_text()
        assert not re.search(r"prov4ml\._|from prov4ml import _", text), script.name


def test_the_ddp_example_without_torchrun_says_how_to_start_it(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("RANK", "WORLD_SIZE")}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "ddp.py")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**env, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "torchrun --standalone --nproc_per_node=2 examples/ddp.py" in proc.stderr


def test_the_quickstart_output_is_git_ignored():
    proc = subprocess.run(["git", "check-ignore", "-q", "prov/quickstart/run_0/prov_rank0.json"], cwd=ROOT)
    assert proc.returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", "prov4ml/run.py"], cwd=ROOT).returncode == 1
