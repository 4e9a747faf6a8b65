"""Every call form of every published yprov4ml version, each run once against prov4ml.

``docs/reference_signatures.json`` holds the forms (``tools/reference_signatures.py
extract`` wrote it from the published distributions); docs/porting.md's table is
generated from it. Here: the table is what the data gives (no network), every
form in the data has a case below, and each case calls the form positionally as
a script for that version would, with real torch models, then reads the run back
(``prov4ml.runs.read_run`` and its PROV-JSON) and compares what was recorded.
"""

import hashlib
import importlib.util
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import prov4ml
from prov4ml.runs import read_run

ROOT = Path(__file__).resolve().parent.parent
NS = "www.example.org"


def _tool():
    spec = importlib.util.spec_from_file_location("reference_signatures", ROOT / "tools" / "reference_signatures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()
DATA = json.loads((ROOT / "docs" / "reference_signatures.json").read_text(encoding="utf-8"))
FORMS = [form for found in TOOL.forms(DATA).values() for form, _ in found]


def test_porting_table_is_generated_from_the_data():
    text = (ROOT / "docs" / "porting.md").read_text(encoding="utf-8")
    assert TOOL.replace_block(text, TOOL.render(DATA)) == text, "run: python tools/reference_signatures.py table"


def test_the_data_covers_every_published_version():
    assert list(DATA["versions"]) == [
        "0.1.18", "0.1.19", "1.0.0", "2.0.0", "2.0.1", "2.0.2", "2.0.3", "2.0.4", "2.0.5", "2.0.6", "2.0.7",
        "2.0.8", "2.0.9", "2.0.10", "3.2.0", "3.2.1", "3.2.2", "3.2.3", "3.2.4", "3.2.5", "3.2.6", "3.2.7", "3.2.8",
    ]
    # the forms the issue is about are there, as published
    assert "save_model_version(model_name, model, context=None, step=None, incremental=True, is_input=False)" in FORMS
    assert DATA["versions"]["2.0.10"]["save_model_version"]["parameters"][3]["name"] == "step"
    assert DATA["versions"]["3.2.8"]["save_model_version"]["parameters"][3]["name"] == "source"


# ---------------------------------------------------------------- helpers
def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def _dataset():
    return torch.utils.data.TensorDataset(torch.arange(12.0).reshape(6, 2), torch.arange(6))


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _record(tmp_path, body, **start):
    """Run ``body(run)`` inside a run; the run read back, and its rank-0 PROV-JSON."""
    run = prov4ml.start_run("forms", provenance_save_dir=str(tmp_path / "prov"), capture=False, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no form warns
        body(run)
    if prov4ml.active_run() is run:
        prov4ml.end_run()
    record = read_run(run.run_dir)
    return record, json.loads(record.documents[0].path.read_text())


def _entities(doc, type_name):
    out = {}
    for ident, attrs in doc["entity"].items():
        types = attrs.get("prov:type", [])
        types = [t["$"] if isinstance(t, dict) else t for t in (types if isinstance(types, list) else [types])]
        if type_name in types:
            out[attrs["prov:label"]] = attrs
    return out


def _value(attr):
    return attr["$"] if isinstance(attr, dict) else attr


def _versions(record, name):
    return [a for a in record.artifacts if a["kind"] == "model_version" and a["model_name"] == name]


def _check_version(record, run_dir, name, model, step, context):
    """The one version of ``name``: its step, context, file (the model's exact state) and sha256."""
    [v] = _versions(record, name)
    assert (v["step"], v["context"], v["version"]) == (step, context, 0)
    path = Path(v["location"]) if Path(v["location"]).is_absolute() else run_dir / v["location"]
    assert v["sha256"] == _sha256(path) and v["size_bytes"] == path.stat().st_size
    saved = torch.load(path, weights_only=True)
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], t) for k, t in model.state_dict().items())
    return v, path


def _series(record, name):
    return {(s.context, s.name): s for s in record.series if s.name == name}


# ---------------------------------------------------------------- save_model_version
def _version_seed(tmp_path):
    m = _model()
    record, _ = _record(tmp_path, lambda r: prov4ml.save_model_version(m, "net", prov4ml.Context.TRAINING, 3, time.time()))
    _check_version(record, record.run_dir, "net", m, 3, "training")


def _version_2x(tmp_path):
    m = _model()
    ckpt = tmp_path / "ckpt.pt"

    def body(r):
        prov4ml.save_model_version("net", m, prov4ml.Context.TRAINING, 0)  # itwinai's call: the step at position 4
        prov4ml.save_model_version("other", m, prov4ml.Context.VALIDATION, 7, False, True)  # incremental, is_input
        torch.save(m.state_dict(), ckpt)
    record, doc = _record(tmp_path, body)
    _check_version(record, record.run_dir, "net", m, 0, "training")
    _check_version(record, record.run_dir, "other", m, 7, "validation")
    # is_input=True: used by the context, not generated
    used = {u["prov:entity"] for u in doc.get("used", {}).values()}
    [other] = [i for i, a in doc["entity"].items() if a.get("provml:model_name") == "other"]
    assert other in used


def _version_32x(tmp_path):
    m = _model()
    record, doc = _record(tmp_path, lambda r: prov4ml.save_model_version("net", m, prov4ml.Context.TRAINING, "trainer", 4))
    _check_version(record, record.run_dir, "net", m, 4, "training")
    [entity] = [a for a in doc["entity"].values() if a.get("provml:model_name") == "net"]
    assert entity["provml:source"] == "trainer"


def _version_32x_attrs(tmp_path):
    m = _model()
    ckpt = tmp_path / "ckpt.pt"
    torch.save(m.state_dict(), ckpt)
    record, doc = _record(tmp_path, lambda r: prov4ml.save_model_version(
        "net", str(ckpt), prov4ml.Context.TRAINING, "trainer", 5, True, False, False, {"author": "Ada"}))
    v, path = _check_version(record, record.run_dir, "net", m, 5, "training")
    assert path == ckpt.resolve()  # log_copy_in_prov_directory=False: where it is, not copied
    [entity] = [a for a in doc["entity"].values() if a.get("provml:model_name") == "net"]
    assert entity["ex:author"] == "Ada"


# ---------------------------------------------------------------- log_model
def _model_entity(doc, name):
    return _entities(doc, "mls:Model")[name]


def _files(record, stem):
    return sorted(a["location"] for a in record.artifacts if Path(a["location"]).name.startswith(stem))


def _model_seed(tmp_path):
    m = _model()
    record, doc = _record(tmp_path, lambda r: prov4ml.log_model(m, "net", True, False))
    assert _value(_model_entity(doc, "net")["provml:parameters"]) == "26"  # log_model_info
    assert _files(record, "net") == ["artifacts/models/net_architecture.txt"]  # log_as_artifact=False: no weights


def _model_20(tmp_path):
    m = _model()
    record, doc = _record(tmp_path, lambda r: prov4ml.log_model("net", m, False, True, False))
    assert "provml:parameters" not in _model_entity(doc, "net")  # log_model_info=False
    assert _files(record, "net") == ["artifacts/models/net.pt", "artifacts/models/net_layers.csv"]


def _model_207(tmp_path):
    m = _model()
    record, doc = _record(tmp_path, lambda r: prov4ml.log_model("net", m, prov4ml.Context.MODELS, True, True, False))
    entity = _model_entity(doc, "net")
    assert entity["provml:context"] == "models" and _value(entity["provml:parameters"]) == "26"
    assert _files(record, "net") == ["artifacts/models/net.pt", "artifacts/models/net_architecture.txt",
                                     "artifacts/models/net_layers.csv"]
    [weights] = [a for a in record.artifacts if a["location"] == "artifacts/models/net.pt"]
    assert weights["sha256"] == _sha256(record.run_dir / weights["location"])


def _model_32x(tmp_path, attrs=False):
    m = _model()
    extra = ({"author": "Ada"},) if attrs else ()
    record, doc = _record(tmp_path, lambda r: prov4ml.log_model(
        "net", m, prov4ml.Context.MODELS, "hub", True, True, False, True, *extra))
    entity = _model_entity(doc, "net")
    assert entity["provml:source"] == "hub" and entity["provml:context"] == "models"
    assert _files(record, "net") == ["artifacts/models/net_architecture.txt", "artifacts/models/net_layers.csv"]
    assert (entity.get("ex:author") == "Ada") is attrs


def _memory_footprint(tmp_path):
    m = _model()
    record, doc = _record(tmp_path, lambda r: prov4ml.log_model_memory_footprint(m, "net"))
    entity = _model_entity(doc, "net")
    assert _value(entity["provml:memory_footprint_bytes"]) == str(26 * 4)
    assert not any(a["location"].endswith(".pt") for a in record.artifacts)


# ---------------------------------------------------------------- log_dataset
def _dataset_check(tmp_path, call, context, info=True):
    record, doc = _record(tmp_path, lambda r: call(_dataset()))
    [d] = record.datasets
    assert d.get("context") == context
    assert (d.get("size") == 6) is info
    return doc


def _dataset_seed(tmp_path):
    _dataset_check(tmp_path, lambda ds: prov4ml.log_dataset(ds, "train"), None)


def _dataset_20(tmp_path):
    _dataset_check(tmp_path, lambda ds: prov4ml.log_dataset("train", ds, False), None, info=False)


def _dataset_207(tmp_path):
    _dataset_check(tmp_path, lambda ds: prov4ml.log_dataset("train", ds, prov4ml.Context.DATASETS, True), "datasets")


def _dataset_32x(tmp_path):
    doc = _dataset_check(tmp_path, lambda ds: prov4ml.log_dataset("train", ds, prov4ml.Context.TRAINING, "s3://b/train", True),
                         "training")
    assert _entities(doc, "mls:Dataset")["train"]["provml:source"] == "s3://b/train"


def _dataset_32x_attrs(tmp_path):
    doc = _dataset_check(tmp_path, lambda ds: prov4ml.log_dataset(
        "train", ds, prov4ml.Context.TRAINING, "s3://b/train", True, {"license": "MIT"}), "training")
    assert _entities(doc, "mls:Dataset")["train"]["ex:license"] == "MIT"


# ---------------------------------------------------------------- log_artifact
def _file(tmp_path, name="config.yaml", text="lr: 0.1\n"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _artifact(record, name):
    [a] = [a for a in record.artifacts if a["kind"] == "artifact" and a["name"] == name]
    return a


def _artifact_seed(tmp_path):
    path = _file(tmp_path)
    record, _ = _record(tmp_path, lambda r: prov4ml.log_artifact(str(path), prov4ml.Context.TRAINING, 3, time.time()))
    a = _artifact(record, "config.yaml")
    assert (a["step"], a["context"], a["sha256"]) == (3, "training", _sha256(path))
    assert (record.run_dir / a["location"]).read_text() == path.read_text()


def _artifact_2x(tmp_path):
    path = _file(tmp_path)
    record, doc = _record(tmp_path, lambda r: prov4ml.log_artifact("config", str(path), prov4ml.Context.TRAINING, 4,
                                                                  False, False, True))
    a = _artifact(record, "config")
    assert (a["step"], a["context"], a["sha256"]) == (4, "training", _sha256(path))
    assert a["location"] == str(path.resolve())  # log_copy_in_prov_directory=False


def _artifact_32x(tmp_path, attrs=False):
    path = _file(tmp_path)
    extra = (False, False, {"author": "Ada"}) if attrs else ()
    record, doc = _record(tmp_path, lambda r: prov4ml.log_artifact(
        "config", str(path), prov4ml.Context.TRAINING, "hydra", 5, True, "configs", *extra))
    a = _artifact(record, "config")
    assert (a["step"], a["context"], a["sha256"]) == (5, "training", _sha256(path))
    assert a["location"] == "artifacts/configs/config.yaml"
    entity = _entities(doc, "provml:Artifact")["config"]
    assert entity["provml:source"] == "hydra" and (entity.get("ex:author") == "Ada") is attrs


# ---------------------------------------------------------------- start and end
def _start_seed(tmp_path):
    run = prov4ml.start_run(NS, "seed_exp", str(tmp_path / "prov"), False, 10, 0, capture=False)
    assert (run.experiment_name, run.rank, run.run_dir.parent.parent) == ("seed_exp", 0, tmp_path / "prov")
    prov4ml.end_run()
    assert read_run(run.run_dir).experiment == "seed_exp"


def _start_2x(tmp_path):
    run = prov4ml.start_run("exp2", NS, str(tmp_path / "prov"), False, 10, None, True, prov4ml.MetricsType.CSV, ";", None,
                            capture=False)
    prov4ml.log_metric("loss", 0.5, prov4ml.Context.TRAINING, 0)
    prov4ml.end_run()
    [series] = read_run(run.run_dir).series
    assert (run.experiment_name, series.location.endswith(".csv")) == ("exp2", True)
    assert ";" in (run.run_dir / series.location).read_text().splitlines()[0]


def _start_32x(tmp_path):
    run = prov4ml.start_run("exp3", NS, str(tmp_path / "prov"), False, 10, None, "csv", ",", False, True, capture=False)
    prov4ml.end_run()
    assert read_run(run.run_dir).experiment == "exp3"


def _start_run_ctx(tmp_path):
    with prov4ml.start_run_ctx(NS, "ctx_exp", str(tmp_path / "prov"), False, 100, None, False, False) as run:
        prov4ml.log_param("lr", 0.1)
    assert prov4ml.active_run() is None
    record = read_run(run.run_dir)
    assert (record.experiment, record.status, record.params) == ("ctx_exp", "finished", {"lr": 0.1})


def _end(*args):
    def case(tmp_path):
        run = prov4ml.start_run("end", provenance_save_dir=str(tmp_path / "prov"), capture=False)
        prov4ml.end_run(*args)
        assert read_run(run.run_dir).status == "finished"
        # the third position is crate_ro_crate, the fourth create_card (not create_provenance_collection)
        assert (run.run_dir / "ro-crate-metadata.json").exists() is (len(args) > 2 and args[2])
        assert (run.run_dir / "model_card_rank0.md").exists() is (len(args) > 3 and args[3])
    return case


# ---------------------------------------------------------------- metrics
def _metric(*extra):
    def case(tmp_path):
        record, _ = _record(tmp_path, lambda r: prov4ml.log_metric("loss", 0.25, prov4ml.Context.VALIDATION, 6, *extra))
        [s] = _series(record, "loss").values()
        assert (s.context, s.count, s.first_step, s.last) == ("validation", 1, 6, 0.25)
    return case


def _flops(kind):
    def case(tmp_path):
        m = _model()
        data = torch.ones(5, 3) if kind == "batch" else _dataset_3()
        call = prov4ml.log_flops_per_batch if kind == "batch" else prov4ml.log_flops_per_epoch
        record, _ = _record(tmp_path, lambda r: call("fl", m, data, prov4ml.Context.TRAINING, 2))
        assert {(s.context, s.first_step) for s in record.series if s.name.startswith("fl")} == {("training", 2)}
    return case


def _dataset_3():
    return torch.utils.data.TensorDataset(torch.ones(4, 3), torch.zeros(4))


def _system(tmp_path):
    record, _ = _record(tmp_path, lambda r: prov4ml.log_system_metrics(prov4ml.Context.TRAINING, 3))
    steps = {(s.context, s.first_step) for s in record.series}
    assert steps == {("training", 3)} and len(record.series) >= 2


def _carbon(tmp_path):
    record, _ = _record(tmp_path, lambda r: prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, 3))
    assert {(s.context, s.first_step) for s in record.series} == {("training", 3)}


def _execution_time(tmp_path):
    record, _ = _record(tmp_path, lambda r: prov4ml.log_current_execution_time("epoch_time", prov4ml.Context.TRAINING, 1))
    [s] = _series(record, "epoch_time").values()
    assert (s.context, s.first_step) == ("training", 1)


def _start_end_time(name):
    def case(tmp_path):
        record, _ = _record(tmp_path, lambda r: getattr(prov4ml, name)())
        assert record.status == "finished" and record.start <= record.end
    return case


# ---------------------------------------------------------------- params, contexts, code
def _param(*extra):
    def case(tmp_path):
        record, doc = _record(tmp_path, lambda r: prov4ml.log_param("lr", 0.1, *extra))
        assert record.params == {"lr": 0.1}
        entity = _entities(doc, "mls:HyperParameterSetting")["lr"]
        if extra:
            assert entity["provml:context"] == "training"
        if len(extra) > 1:
            assert entity["provml:source"] == "cli"
            generated = {g["prov:entity"] for g in doc.get("wasGeneratedBy", {}).values()}
            assert any(i for i, a in doc["entity"].items() if a is entity and i in generated)  # is_input=False
    return case


def _context(call):
    def case(tmp_path):
        def body(r):
            ctx = call()
            assert ctx.parent == prov4ml.Context.TRAINING
            prov4ml.log_metric("loss", 1.0, ctx, 0)
        record, _ = _record(tmp_path, body)
        [s] = record.series
        assert s.context == "training_lod2"
    return case


def _command(tmp_path):
    record, doc = _record(tmp_path, lambda r: prov4ml.log_execution_command("python train.py --lr 0.1", str(tmp_path)))
    [run] = [a for a in doc["activity"].values() if "provml:execution_command" in a]
    assert run["provml:execution_command"] == f"python train.py --lr 0.1 {tmp_path}"


def _source_path(tmp_path):
    src = _file(tmp_path, "train.py", "print('hi')\n")
    record, _ = _record(tmp_path, lambda r: prov4ml.log_source_code(str(src)))
    [s] = [a for a in record.artifacts if a["kind"] == "source"]
    assert s["sha256"] == _sha256(src)


def _source_git(tmp_path):
    """``log_source_code(True)`` (3.2.7+) is use_git=True, in a script inside a git repository."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text(
        "import prov4ml\n"
        "r = prov4ml.start_run('git', provenance_save_dir='prov', capture=False)\n"
        "prov4ml.log_source_code(True)\n"
        "prov4ml.end_run()\n"
        "print(r.run_dir)\n"
    )
    git = ["git", "-c", "user.email=a@b.c", "-c", "user.name=A"]
    subprocess.run(git + ["init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(git + ["add", "train.py"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "first"], cwd=repo, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
    proc = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    record = read_run(repo / proc.stdout.strip().splitlines()[-1])
    assert record.params["source_code.git_commit"] == commit and record.params["source_code.git_branch"] == "main"
    assert not [a for a in record.artifacts if a["kind"] == "source"]  # recorded, not copied


def _source_default(tmp_path):
    record, _ = _record(tmp_path, lambda r: prov4ml.log_source_code())
    assert record.status == "finished"


def _run_dirs(tmp_path):
    from prov4ml.functs import get_artifacts_dir, get_run_dir

    def body(r):
        assert (Path(get_run_dir()), Path(get_artifacts_dir())) == (r.run_dir, r.run_dir / "artifacts")
    _record(tmp_path, body)


# ---------------------------------------------------------------- wrappers and loggers
def _tracked_function(tmp_path):
    loss = prov4ml.ProvenanceTrackedFunction(torch.nn.MSELoss(), prov4ml.Context.TRAINING)
    values = []
    record, _ = _record(tmp_path, lambda r: values.extend(float(loss(torch.ones(2), torch.zeros(2) + k)) for k in (0, 1)))
    [s] = record.series
    assert (s.name, s.context, s.count, s.last) == ("MSELoss", "training", 2, values[-1])


def _tracked_model(tmp_path):
    m = _model()
    record, _ = _record(tmp_path, lambda r: prov4ml.ProvenanceTrackedModel("net", m, prov4ml.Context.TRAINING, 4)(torch.ones(2, 3)))
    assert sorted(Path(a["name"]).stem for a in record.artifacts if a["kind"] == "layer_data") == ["0", "2"]


def _weights_model(tmp_path):
    m = _model()
    record, _ = _record(tmp_path, lambda r: prov4ml.WeightDistributionTrackedModel("net", m, prov4ml.Context.TRAINING, 4).log_epoch(2))
    assert {a["step"] for a in record.artifacts if a["kind"] == "layer_weights"} == {2}


def _lightning_logger(tmp_path):
    logger = prov4ml.ProvMLLogger("lightning_logs", 3, "pre", 50)
    assert (logger.name, logger.version) == ("lightning_logs", "run_3")  # as ProvLogger names a given version


def _itwinai_logger(save_dir):
    def case(tmp_path):
        logger = prov4ml.ProvMLItwinAILogger(NS, "itw", str(tmp_path / save_dir), 10, False, False, "epoch", 0)
        run = logger.create_logger_context(0)
        logger.log(0.5, "loss", kind="metric", step=1)
        logger.destroy_logger_context()
        record = read_run(run.run_dir)
        assert run.run_dir.is_relative_to(tmp_path / save_dir) and record.experiment == "itw"
        assert [(s.name, s.first_step, s.last) for s in record.series if s.name == "loss"] == [("loss", 1, 0.5)]
    return case


CASES = {
    "ProvMLItwinAILogger(prov_user_namespace='www.example.org', experiment_name='experiment_name', provenance_save_dir='mllogs/prov_logs', save_after_n_logs=100, create_graph=True, create_svg=True, log_freq='epoch', log_on_workers=0)": _itwinai_logger("mllogs/prov_logs"),
    "ProvMLItwinAILogger(prov_user_namespace='www.example.org', experiment_name='experiment_name', provenance_save_dir='mllogs', save_after_n_logs=100, create_graph=True, create_svg=True, log_freq='epoch', log_on_workers=0)": _itwinai_logger("mllogs"),
    "ProvMLLogger(name='lightning_logs', version=None, prefix='', flush_logs_every_n_steps=100)": _lightning_logger,
    "ProvenanceTrackedFunction(func, context=None)": _tracked_function,
    "ProvenanceTrackedModel(model_label, model, context=None, chunk_size=64)": _tracked_model,
    "WeightDistributionTrackedModel(model_label, model, context=None, chunk_size=64)": _weights_model,
    "create_context(context, is_subcontext_of=None)": _context(lambda: prov4ml.create_context("TRAINING_LOD2", prov4ml.Context.TRAINING)),
    "end_run(create_graph=False, create_svg=False)": _end(False, False),
    "end_run(create_graph=False, create_svg=False, crate_ro_crate=False)": _end(False, False, True),
    "end_run(create_graph=False, create_svg=False, crate_ro_crate=False, create_card=False)": _end(False, False, False, True),
    "get_artifacts_dir()": _run_dirs,
    "get_run_dir()": _run_dirs,
    "log_artifact(artifact_path, context, step=None, timestamp=None)": _artifact_seed,
    "log_artifact(artifact_name, artifact_path, context=None, step=None, log_copy_in_prov_directory=True, is_model=False, is_input=False)": _artifact_2x,
    "log_artifact(artifact_name, artifact_path, context=None, source=None, step=0, log_copy_in_prov_directory=True, log_copy_subdirectory=None, is_model=False, is_input=False)": _artifact_32x,
    "log_artifact(artifact_name, artifact_path, context=None, source=None, step=0, log_copy_in_prov_directory=True, log_copy_subdirectory=None, is_model=False, is_input=False, other_attrs=None)": lambda p: _artifact_32x(p, attrs=True),
    "log_carbon_metrics(context, step=None)": _carbon,
    "log_context(context, is_subcontext_of=None, source_of_data=None)": _context(lambda: prov4ml.log_context("TRAINING_LOD2", prov4ml.Context.TRAINING, "s3://b")),
    "log_current_execution_time(label, context, step=None)": _execution_time,
    "log_current_execution_time(label, context=None, step=None)": _execution_time,
    "log_dataset(dataset, label)": _dataset_seed,
    "log_dataset(dataset_label, dataset, log_dataset_info=True)": _dataset_20,
    "log_dataset(dataset_label, dataset, context=Context.DATASETS, log_dataset_info=True)": _dataset_207,
    "log_dataset(dataset_label, dataset, context=None, source=None, log_dataset_info=True)": _dataset_32x,
    "log_dataset(dataset_label, dataset, context=None, source=None, log_dataset_info=True, other_attrs=None)": _dataset_32x_attrs,
    "log_execution_command(cmd, path)": _command,
    "log_execution_end_time()": _start_end_time("log_execution_end_time"),
    "log_execution_start_time()": _start_end_time("log_execution_start_time"),
    "log_flops_per_batch(label, model, batch, context, step=None)": _flops("batch"),
    "log_flops_per_batch(label, model, batch, context=None, step=None)": _flops("batch"),
    "log_flops_per_epoch(label, model, dataset, context, step=None)": _flops("epoch"),
    "log_flops_per_epoch(label, model, dataset, context=None, step=None)": _flops("epoch"),
    "log_metric(key, value, context, step=0, source=None)": _metric(prov4ml.LoggingItemKind.METRIC),
    "log_metric(key, value, context=None, step=0, source=None)": _metric(None),
    "log_metric(key, value, context=None, step=0, source=None, timestamp=0)": _metric("std.time", time.time()),
    "log_metric(key, value, context=None, step=0, source=None, timestamp=None)": _metric(None, None),
    "log_model(model, model_name='default', log_model_info=True, log_as_artifact=True)": _model_seed,
    "log_model(model_name, model, log_model_info=True, log_model_layers=False, is_input=False)": _model_20,
    "log_model(model_name, model, context=Context.MODELS, log_model_info=True, log_model_layers=False, is_input=False)": _model_207,
    "log_model(model_name, model, context=None, source=None, log_model_info=True, log_model_layers=False, log_copy_in_prov_directory=True, is_input=False)": _model_32x,
    "log_model(model_name, model, context=None, source=None, log_model_info=True, log_model_layers=False, log_copy_in_prov_directory=True, is_input=False, other_attrs=None)": lambda p: _model_32x(p, attrs=True),
    "log_model_memory_footprint(model, model_name='default')": _memory_footprint,
    "log_param(key, value)": _param(),
    "log_param(key, value, context=None)": _param(prov4ml.Context.TRAINING),
    "log_param(key, value, context=None, source=None, is_input=False)": _param(prov4ml.Context.TRAINING, "cli", False),
    "log_provenance_documents(create_graph=False, create_svg=False)": None,  # set below
    "log_provenance_documents(create_graph=False, create_svg=False, crate_ro_crate=False)": None,
    "log_source_code(path=None)": _source_path,
    "log_source_code()": _source_default,
    "log_source_code(use_git=False)": _source_git,
    "log_system_metrics(context, step=None)": _system,
    "log_system_metrics(context=None, step=0)": _system,
    "save_model_version(model, model_name, context, step=None, timestamp=None)": _version_seed,
    "save_model_version(model_name, model, context=None, step=None, incremental=True, is_input=False)": _version_2x,
    "save_model_version(model_name, model, context=None, source=None, step=None, incremental=True, is_input=False, log_copy_in_prov_directory=True)": _version_32x,
    "save_model_version(model_name, model, context=None, source=None, step=None, incremental=True, is_input=False, log_copy_in_prov_directory=True, other_attrs=None)": _version_32x_attrs,
    "start_run(prov_user_namespace, experiment_name=None, provenance_save_dir=None, collect_all_processes=False, save_after_n_logs=100, rank=None)": _start_seed,
    "start_run(experiment_name, prov_user_namespace=None, provenance_save_dir=None, collect_all_processes=False, save_after_n_logs=100, rank=None, disable_codecarbon=False, metrics_file_type=MetricsType.CSV, csv_separator=',', use_compressor=None)": _start_2x,
    "start_run(experiment_name, prov_user_namespace=None, provenance_save_dir=None, collect_all_processes=False, save_after_n_logs=100, rank=None, metrics_file_type='csv', csv_separator=',', use_compressor=None, use_run_id=None)": _start_32x,
    "start_run_ctx(prov_user_namespace, experiment_name=None, provenance_save_dir=None, collect_all_processes=False, save_after_n_logs=100, rank=None, create_graph=False, create_svg=False)": _start_run_ctx,
}


def _provenance_documents(*args):
    def case(tmp_path):
        written = []
        record, _ = _record(tmp_path, lambda r: written.extend(prov4ml.log_provenance_documents(*args)))
        expected = [record.documents[0].path] + ([record.run_dir / "ro-crate-metadata.json"] if len(args) > 2 else [])
        assert [Path(p) for p in written] == expected
    return case


CASES["log_provenance_documents(create_graph=False, create_svg=False)"] = _provenance_documents(False, False)
CASES["log_provenance_documents(create_graph=False, create_svg=False, crate_ro_crate=False)"] = _provenance_documents(False, False, True)


def test_every_form_has_a_case():
    assert sorted(set(FORMS) - set(CASES)) == [] and sorted(set(CASES) - set(FORMS)) == []


@pytest.mark.parametrize("form", FORMS)
def test_form(form, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    CASES[form](tmp_path)
