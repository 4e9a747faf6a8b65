"""Every document prov4ml writes passes the W3C checks (tests/provcheck.py), and the mapping says what happened."""

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import torch
from prov.model import ProvDocument

import prov4ml
from prov4ml import Context
from prov4ml.provenance import vocabulary
from prov4ml.provenance.checks import violations
from prov4ml.provenance.names import is_ncname, local_name
from conftest import ROOT, load_json, run_python

pytest.importorskip("lxml")
pytest.importorskip("rdflib")
pytest.importorskip("jsonschema")
import provcheck  # noqa: E402  (needs the three above)

MLS = "http://www.w3.org/ns/mls#"
PROV = "http://www.w3.org/ns/prov#"
PROVML = vocabulary.PROVML


def records_of_type(doc, type_name):
    return [r for r in doc.get_records() if r.is_element() and type_name in {str(t) for t in r.get_asserted_types()}]


def one(doc, type_name):
    (rec,) = records_of_type(doc, type_name)
    return rec


def attr(rec, name):
    values = [v for k, v in rec.attributes if str(k) == name]
    return values[0] if len(values) == 1 else values


def relations(doc, kind):
    return [{str(k.localpart): v for k, v in r.formal_attributes} | {"_attrs": {str(k): v for k, v in r.extra_attributes}}
            for r in doc.get_records() if r.is_relation() and r.get_type().localpart == kind]


def training_run(start, tmp_path, fail=False, **kw):
    """Parameters, metrics in three contexts with epochs, versions, a model, a dataset, an artifact, a fold."""
    f = tmp_path / "notes file.txt"
    f.write_text("x")
    run = start(**kw)
    prov4ml.log_params({"lr": 0.01, "batch size": 32, "scheduler": None})
    prov4ml.register_final_metric("val_loss", float("inf"), prov4ml.FoldOperation.MIN)
    model = torch.nn.Linear(2, 1)
    try:
        with torch.no_grad():
            for epoch in range(3):
                prov4ml.mark_epoch(epoch, Context.TRAINING)
                for i in range(4):
                    prov4ml.log_metric("loss", 1.0 / (epoch * 4 + i + 1), Context.TRAINING, step=epoch * 4 + i)
                model.weight.add_(1.0)
                prov4ml.save_model_version(model, "net", Context.TRAINING, step=epoch)
                prov4ml.log_metric("val_loss", 0.5 / (epoch + 1), Context.VALIDATION, step=epoch)
                prov4ml.log_metric("cpu_usage", 10.0, Context.TRAINING, step=epoch, source=prov4ml.LoggingItemKind.SYSTEM_METRIC)
                if fail and epoch == 1:
                    raise RuntimeError("diverged at epoch 1")
        prov4ml.log_metric("acc", 0.9, Context.TESTING, step=0)
        prov4ml.log_artifact(str(f), Context.TESTING)
        prov4ml.log_model(model, "net")
        prov4ml.log_dataset(torch.utils.data.TensorDataset(torch.zeros(8, 2)), "train")
    except RuntimeError as exc:
        run.end(status="failed", error=exc)
        return run
    prov4ml.end_run()
    return run


# ------------------------------------------------------------------ every document passes
def test_a_finished_run_passes_every_check(start, tmp_path):
    run = training_run(start, tmp_path)
    provcheck.check_all(run.prov_path, tmp_path)


def test_a_failed_run_passes_every_check(start, tmp_path):
    run = training_run(start, tmp_path, fail=True)
    doc = ProvDocument.deserialize(str(run.prov_path))
    act = one(doc, "mls:Run")
    assert attr(act, "provml:status") == "failed" and attr(act, "provml:error_message") == "diverged at epoch 1"
    provcheck.check_all(run.prov_path, tmp_path)


def test_a_run_still_going_passes_every_check(start, tmp_path):
    run = start(save_after_n_logs=5)
    for i in range(12):
        prov4ml.log_metric("loss", float(i), Context.TRAINING, step=i)
    prov4ml.flush()
    provcheck.check_all(run.prov_path, tmp_path)


def test_sub_contexts_created_before_their_parents_keep_the_parents_span(start, tmp_path):
    fine = prov4ml.create_context("fine tuning", "pre-training")  # the child exists first
    run = start()
    prov4ml.log_metric("loss", 1.0, fine, step=0)
    prov4ml.log_metric("loss", 2.0, "pre-training", step=1)  # the parent's own point, after the child's
    prov4ml.end_run()
    doc = ProvDocument.deserialize(str(run.prov_path))
    stages = {attr(r, "provml:context"): r for r in records_of_type(doc, "provml:LearningStage")}
    parent, child = stages["pre-training"], stages["fine tuning"]
    series = [r for r in records_of_type(doc, "provml:Metric") if attr(r, "provml:context") == "pre-training"][0]
    assert parent.get_startTime() <= child.get_startTime() <= child.get_endTime() <= parent.get_endTime()
    assert parent.get_endTime() == attr(series, "provml:last_time")  # not the child's end
    assert {str(v) for v in parent.get_attribute(doc.valid_qualified_name("mls:hasPart"))} == {str(child.identifier)}
    provcheck.check_all(run.prov_path, tmp_path)


@pytest.mark.parametrize("experiment", ["my experiment", "expérience ∑", "2024 sweep", "a.b"])
def test_names_with_spaces_unicode_and_colliding_slugs(start, tmp_path, experiment):
    f = tmp_path / "weird ü name.txt"
    f.write_text("x")
    run = start(experiment)
    for name in ("val loss", "val_loss", "val/loss", "ümlaut∑", "1st"):
        prov4ml.log_metric(name, 1.0, Context.VALIDATION, step=0)
    prov4ml.log_params({"lr rate": 1, "lr_rate": 2, "lr.rate": 3})
    prov4ml.log_artifact(str(f), prov4ml.create_context("my stage.2"))
    prov4ml.log_dataset([1, 2, 3], "data set")
    prov4ml.log_dataset([1, 2, 3], "data_set")
    prov4ml.end_run()
    doc = ProvDocument.deserialize(str(run.prov_path))
    assert len(records_of_type(doc, "provml:Metric")) == 5
    assert sorted(attr(r, "prov:value") for r in records_of_type(doc, "mls:HyperParameterSetting")) == [1, 2, 3]
    assert len(records_of_type(doc, "mls:Dataset")) == 2
    for rec in doc.get_records():
        if rec.is_element():
            assert is_ncname(rec.identifier.localpart), rec.identifier
    provcheck.check_all(run.prov_path, tmp_path)


def test_a_multi_rank_collection_passes_every_check(start, tmp_path, save_dir):
    from prov4ml import prov_collection

    for rank in (0, 1):
        prov4ml.start_run("www.example.org", "ddp", str(save_dir), rank=rank, run_id=0, collect_all_processes=True,
                          capture=False)
        prov4ml.log_metric("loss", 1.0 + rank, Context.TRAINING, step=0)
        model = torch.nn.Linear(2, 1)
        torch.nn.init.constant_(model.weight, 0.5)
        torch.nn.init.constant_(model.bias, 0.0)
        prov4ml.save_model_version(model, "net", Context.TRAINING, step=0)  # the same weights on each rank
        prov4ml.end_run()
    out = prov_collection.create_collection(save_dir / "ddp", save_dir / "ddp")
    provcheck.check_all(out, tmp_path)
    doc = ProvDocument.deserialize(str(out))
    informed = {(str(r["informed"]), str(r["informant"])) for r in relations(doc, "Communication")}
    # these ranks ran one after the other: rank 0 ended before rank 1 began, so only rank 1 was informed
    # (side by side, they inform each other: test_ddp_example.py)
    assert informed == {("ex:ddp.run_0.rank1", "ex:ddp.run_0.rank0")}
    assert [(str(r["alternate1"]), str(r["alternate2"])) for r in relations(doc, "Alternate")] == [
        ("ex:ddp.run_0.rank1.model_version.net.0", "ex:ddp.run_0.rank0.model_version.net.0")]


# ------------------------------------------------------------------ the checker finds what it promises
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def small_doc():
    d = ProvDocument()
    d.add_namespace("ex", "http://ex.org/")
    return d


@pytest.mark.parametrize("build, expected", [
    (lambda d: d.activity("ex:a", T0, T0 - timedelta(seconds=1)), "ends"),
    (lambda d: (d.activity("ex:a", T0, T0 + timedelta(seconds=1)), d.entity("ex:e"),
                d.wasGeneratedBy("ex:e", "ex:a", T0 + timedelta(seconds=5))), "outside ex:a"),
    (lambda d: (d.activity("ex:a", T0, T0 + timedelta(seconds=1)), d.entity("ex:e"),
                d.used("ex:a", "ex:e", T0 - timedelta(seconds=5))), "outside ex:a"),
    (lambda d: (d.activity("ex:a"), d.activity("ex:b"), d.entity("ex:e"),
                d.wasGeneratedBy("ex:e", "ex:a"), d.wasGeneratedBy("ex:e", "ex:b")), "generated 2 times"),
    (lambda d: (d.entity("ex:e1"), d.entity("ex:e2"), d.wasDerivedFrom("ex:e1", "ex:e2"),
                d.wasDerivedFrom("ex:e2", "ex:e1")), "derivation cycle"),
    (lambda d: (d.entity("ex:e"), d.wasDerivedFrom("ex:e", "ex:nowhere")), "ex:nowhere, which is not declared"),
    (lambda d: (d.activity("ex:a", T0, T0 + timedelta(hours=1)), d.entity("ex:v"), d.entity("ex:m"),
                d.wasGeneratedBy("ex:v", "ex:a", T0), d.wasGeneratedBy("ex:m", "ex:a", T0 + timedelta(minutes=1)),
                d.specializationOf("ex:v", "ex:m")), "constraint 45"),
    (lambda d: (d.activity("ex:a", T0, T0 + timedelta(hours=1)), d.entity("ex:new"), d.entity("ex:old"),
                d.wasGeneratedBy("ex:new", "ex:a", T0), d.wasGeneratedBy("ex:old", "ex:a", T0 + timedelta(minutes=1)),
                d.wasDerivedFrom("ex:new", "ex:old")), "constraint 44"),
    (lambda d: (d.entity("ex:x"), d.activity("ex:x")), "both an entity and an activity"),
    (lambda d: (d.entity("ex:m"), d.entity("ex:w"), d.hadMember("ex:m", "ex:w")), "not typed prov:Collection"),
    (lambda d: (d.activity("ex:a", T0, T0 + timedelta(seconds=1)), d.wasStartedBy("ex:a", time=T0 + timedelta(seconds=1))),
     "differs from its start time"),
])
def test_the_checker_finds_each_violation(build, expected):
    d = small_doc()
    build(d)
    found = violations(d)
    assert len(found) == 1 and expected in found[0], found


def test_the_json_schema_check_is_not_vacuous(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"entity": {"ex:e": [{"prov:label": "a"}, {"prov:label": "b"}]}, "unknown": {}}))
    assert len(provcheck.json_errors(bad)) == 2  # a record given twice (item 2's arrays), an unknown key
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"wasEndedBy": {"_:e": {"prov:activity": "ex:a"}}}))
    assert provcheck.json_errors(good) == []  # the schema's wasEndedby typo is tolerated


def test_the_xml_and_vocabulary_checks_are_not_vacuous(tmp_path):
    d = small_doc()
    d.add_namespace("dcterms", "http://purl.org/dc/terms/")
    d.entity("ex:a/b", {"dcterms:created": T0})  # '/' is no NCName; dcterms:created is none of our vocabularies
    path = tmp_path / "d.json"
    path.write_text(d.serialize(format="json"))
    assert provcheck.xml_errors(path, tmp_path)
    assert provcheck.unknown_terms(d) == ["http://purl.org/dc/terms/created"]


# ------------------------------------------------------------------ what the mapping says (items 1-11)
def test_item1_git_facts_describe_the_scripts_repository(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")

    def repo(path):
        path.mkdir()
        for args in (["init", "-q"], ["config", "user.email", "a@b"], ["config", "user.name", "a"]):
            subprocess.run(["git", *args], cwd=path, check=True)
        return path

    code_repo, other = repo(tmp_path / "code"), repo(tmp_path / "other")
    script = code_repo / "train.py"
    script.write_text(f"import prov4ml\nprov4ml.start_run('www.example.org', 'g', {str(tmp_path / 'prov')!r})\nprov4ml.end_run()\n")
    (other / "x").write_text("x")
    for path, msg in ((code_repo, "code"), (other, "other")):
        subprocess.run(["git", "add", "."], cwd=path, check=True)
        subprocess.run(["git", "commit", "-qm", msg], cwd=path, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=code_repo, capture_output=True, text=True).stdout.strip()
    proc = run_python(f"import runpy, sys; sys.argv = [{str(script)!r}]; runpy.run_path({str(script)!r}, run_name='__main__')",
                      cwd=other)
    assert proc.wait(timeout=120) == 0
    doc = ProvDocument.deserialize(str(tmp_path / "prov" / "g" / "run_0" / "prov_rank0.json"))
    plan = one(doc, "prov:Plan")
    assert attr(plan, "provml:git_commit") == commit


def test_item2_names_that_share_a_slug_stay_apart(start):
    run = start()
    prov4ml.log_metric("val loss", 1.0, Context.VALIDATION)
    prov4ml.log_metric("val_loss", 2.0, Context.VALIDATION)
    prov4ml.end_run()
    doc = ProvDocument.deserialize(str(run.prov_path))
    assert sorted(attr(r, "provml:last") for r in records_of_type(doc, "provml:Metric")) == [1.0, 2.0]
    assert len({str(r.identifier) for r in records_of_type(doc, "provml:Metric")}) == 2
    assert local_name("val loss") != local_name("val_loss") == "val_loss"


def test_item4_identifiers_are_xml_qnames(start, tmp_path):
    run = training_run(start, tmp_path)
    data = load_json(run.prov_path)
    ids = [i for section in ("entity", "activity", "agent") for i in data[section]]
    assert all(is_ncname(i.split(":", 1)[1]) for i in ids)
    assert f"ex:exp.run_{run.run_id}.rank0.context.training" in data["activity"]


def test_item5_versions_specialize_a_model_that_is_never_generated(start, tmp_path):
    run = training_run(start, tmp_path)
    doc = ProvDocument.deserialize(str(run.prov_path))
    model = [r for r in records_of_type(doc, "mls:Model") if "provml:ModelVersion" not in {str(t) for t in r.get_asserted_types()}]
    (model,) = model
    assert not [g for g in relations(doc, "Generation") if g["entity"] == model.identifier]
    versions = records_of_type(doc, "provml:ModelVersion")
    special = {(str(r["specificEntity"]), str(r["generalEntity"])) for r in relations(doc, "Specialization")}
    assert {(str(v.identifier), str(model.identifier)) for v in versions} <= special
    # the file log_model wrote holds the last version's bytes: derived from it
    weights = [r for r in records_of_type(doc, "provml:ModelWeights") if "provml:ModelVersion" not in {str(t) for t in r.get_asserted_types()}]
    last = max(versions, key=lambda v: attr(v, "provml:version"))
    assert attr(weights[0], "provml:sha256") == attr(last, "provml:sha256")
    derived = {(str(r["generatedEntity"]), str(r["usedEntity"])) for r in relations(doc, "Derivation")}
    assert (str(weights[0].identifier), str(last.identifier)) in derived


def test_item6_locations_are_iris_of_the_files(start, tmp_path):
    run = training_run(start, tmp_path)
    doc = ProvDocument.deserialize(str(run.prov_path))
    for rec in doc.get_records():
        for key, value in rec.attributes:
            if str(key) == "prov:location":
                assert value.uri.startswith("file:///"), value
    series = [r for r in records_of_type(doc, "provml:Metric") if attr(r, "provml:name") == "loss"][0]
    location = attr(series, "prov:location")
    assert str(location).startswith("rundir:metrics/")
    assert location.uri == (run.run_dir / str(location).split(":", 1)[1]).as_uri()
    artifact = [r for r in records_of_type(doc, "provml:Artifact") if attr(r, "prov:label") == "notes file.txt"][0]
    assert attr(artifact, "prov:location").uri == (run.run_dir / "artifacts" / "notes file.txt").as_uri()
    # PROV-O: a resource, not a string typed prov:Location by a reasoner
    import rdflib

    from prov4ml.provenance.rdf import graph

    values = set(graph(doc).objects(None, rdflib.URIRef(PROV + "atLocation")))
    assert values and all(isinstance(v, rdflib.URIRef) for v in values)


def test_item7_every_association_has_a_role_and_survives_rdf(start, tmp_path):
    run = training_run(start, tmp_path, capture=True)
    doc = ProvDocument.deserialize(str(run.prov_path))
    roles = {str(r["_attrs"]["prov:role"]): (str(r["agent"]), r["plan"] is not None) for r in relations(doc, "Association")}
    assert set(roles) == {"provml:researcher", "provml:recorder", "provml:host"}
    assert roles["provml:researcher"][1] and roles["provml:researcher"][0].startswith("ex:agent.user.")
    assert roles["provml:recorder"] == ("provml:prov4ml", False)
    back = ProvDocument.deserialize(content=doc.serialize(format="rdf", rdf_format="trig"), format="rdf", rdf_format="trig")
    assert len(relations(back, "Association")) == 3 and back == doc
    provcheck.check_all(run.prov_path, tmp_path)


def test_item8_converted_rdf_has_the_direct_triples(start, tmp_path):
    import rdflib

    from prov4ml import convert

    run = training_run(start, tmp_path)
    ttl = convert.convert(run.prov_path, tmp_path / "run.ttl")
    g = rdflib.Graph()
    g.parse(str(ttl), format="turtle")
    p = lambda name: rdflib.URIRef(PROV + name)  # noqa: E731
    ns = rdflib.Namespace(f"http://www.example.org/exp.run_{run.run_id}.rank0.")
    assert (ns["model_version.net.2"], p("wasGeneratedBy"), ns["context.training.epoch.2"]) in g
    assert (ns["model_version.net.2"], p("wasDerivedFrom"), ns["model_version.net.1"]) in g
    assert (ns["model_version.net.2"], p("wasRevisionOf"), ns["model_version.net.1"]) in g
    assert (rdflib.URIRef(str(ns).rstrip(".")), p("used"), ns["param.lr"]) in g
    # only additions: without them, the graph is prov's own
    plain = rdflib.Graph()
    plain.parse(data=ProvDocument.deserialize(str(run.prov_path)).serialize(format="rdf", rdf_format="turtle"), format="turtle")
    from prov4ml.provenance.rdf import DIRECT

    direct = {p(name) for _by, names in DIRECT.values() for name in names}
    from rdflib.compare import isomorphic

    def without(graph):
        out = rdflib.Graph()
        for t in graph:
            if t[1] not in direct:
                out.add(t)
        return out

    assert isomorphic(without(g), without(plain))
    assert len(g) > len(without(g))


def test_item9_ml_schema_is_used_as_it_is_defined(start, tmp_path):
    run = training_run(start, tmp_path, capture=True)
    doc = ProvDocument.deserialize(str(run.prov_path))
    evaluations = records_of_type(doc, "mls:ModelEvaluation")
    assert sorted((attr(e, "provml:name"), attr(e, "provml:context")) for e in evaluations) == [
        ("acc", "testing"), ("val_loss", "validation")]  # not loss, not cpu_usage
    for e in evaluations:
        measure = attr(e, "mls:specifiedBy")
        assert "mls:EvaluationMeasure" in {str(t) for t in doc.get_record(measure)[0].get_asserted_types()}
        assert attr(e, "mls:hasValue") == attr(e, "provml:last")
    act = one(doc, "mls:Run")
    q = doc.valid_qualified_name
    assert {str(v) for v in act.get_attribute(q("mls:executes"))} == {str(one(doc, "mls:Implementation").identifier)}
    inputs = {str(v) for v in act.get_attribute(q("mls:hasInput"))}
    assert {str(r.identifier) for r in records_of_type(doc, "mls:HyperParameterSetting") + records_of_type(doc, "mls:Dataset")} == inputs
    outputs = {str(v) for v in act.get_attribute(q("mls:hasOutput"))}
    assert {str(r.identifier) for r in records_of_type(doc, "mls:Model") + evaluations} == outputs
    experiment = one(doc, "mls:Experiment")
    assert experiment.get_type().localpart == "Activity"  # ML-Schema: an experiment is a process
    assert {str(v) for v in experiment.get_attribute(q("mls:hasPart"))} == {str(act.identifier)}


def test_item10_contexts_are_parts_not_communications(start, tmp_path):
    run = training_run(start, tmp_path)
    doc = ProvDocument.deserialize(str(run.prov_path))
    assert relations(doc, "Communication") == []  # wasInformedBy is kept for rank -> rank
    training = [r for r in records_of_type(doc, "provml:Training")][0]
    parts = {str(v) for v in one(doc, "mls:Run").get_attribute(doc.valid_qualified_name("mls:hasPart"))}
    assert str(training.identifier) in parts


def test_item11_source_final_metrics_none_and_epochs(start, tmp_path):
    run = training_run(start, tmp_path, capture=True)
    doc = ProvDocument.deserialize(str(run.prov_path))
    plan = one(doc, "prov:Plan")
    copy = one(doc, "provml:SourceCode")
    assert attr(plan, "provml:sha256") == attr(copy, "provml:sha256")
    assert {(str(r["generatedEntity"]), str(r["usedEntity"])) for r in relations(doc, "Derivation")} >= {
        (str(copy.identifier), str(plan.identifier))}
    assert "/" not in plan.identifier.localpart and records_of_type(doc, "provml:SourceFile") == [
        r for r in records_of_type(doc, "provml:SourceFile") if r.identifier != plan.identifier]
    for m in relations(doc, "Membership"):  # hadMember only on collections
        assert "prov:Collection" in {str(t) for t in doc.get_record(m["collection"])[0].get_asserted_types()}
    (final,) = records_of_type(doc, "provml:FinalMetric")
    assert (attr(final, "provml:name"), attr(final, "prov:value"), attr(final, "provml:fold")) == ("val_loss", 0.5 / 3, "min")
    assert not [k for k, _v in one(doc, "mls:Run").attributes if str(k).startswith("provml:final_")]
    (none,) = [r for r in records_of_type(doc, "mls:HyperParameterSetting") if attr(r, "prov:label") == "scheduler"]
    assert attr(none, "prov:value") == [] and attr(none, "provml:is_none") is True
    epochs = sorted(records_of_type(doc, "provml:Epoch"), key=lambda r: attr(r, "provml:epoch"))
    assert [attr(e, "provml:epoch") for e in epochs] == [0, 1, 2]
    assert all(a.get_endTime() == b.get_startTime() for a, b in zip(epochs, epochs[1:]))
    gens = {str(g["entity"]): str(g["activity"]) for g in relations(doc, "Generation")}
    for v in records_of_type(doc, "provml:ModelVersion"):  # each version comes from its epoch
        assert gens[str(v.identifier)] == str(epochs[attr(v, "provml:version")].identifier)


def test_vocabulary_ttl_docs_and_code_agree():
    import rdflib

    g = rdflib.Graph()
    g.parse(str(vocabulary.ttl_path()), format="turtle")
    defined = {str(s)[len(PROVML):] for s in g.subjects() if str(s).startswith(PROVML)}
    assert defined == set(vocabulary.TERMS)
    assert vocabulary.ttl_path().read_text(encoding="utf-8") == vocabulary.turtle()  # regenerated after every change
    page = (ROOT / "docs" / "vocabulary.md").read_text(encoding="utf-8")
    missing = [name for name in vocabulary.TERMS if f"`provml:{name}`" not in page]
    assert missing == []


def test_the_vocabulary_ships_with_the_package(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "prov4ml", src / "prov4ml", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {proc.stderr[-300:]}")
    import zipfile

    (wheel,) = tmp_path.glob("prov4ml-*.whl")
    assert "prov4ml/provenance/provml.ttl" in zipfile.ZipFile(wheel).namelist()


def test_a_killed_run_recovered_passes_every_check(tmp_path):
    from killing import Child

    child = Child(tmp_path, """
from prov4ml import Context
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False)
prov4ml.log_param("lr", 0.1)
for epoch in range(2):
    prov4ml.mark_epoch(epoch, Context.TRAINING)
    for i in range(50):
        prov4ml.log_metric("loss", 1.0 / (i + 1), Context.TRAINING, step=epoch * 50 + i)
prov4ml.flush()
flag(1)
time.sleep(60)
""")
    child.wait_flag(1)
    child.kill()
    run_dir = child.run_dir()
    prov4ml.recover(run_dir)
    doc = ProvDocument.deserialize(str(run_dir / "prov_rank0.json"))
    act = one(doc, "mls:Run")
    assert attr(act, "provml:status") == "killed" and act.get_endTime() is not None
    assert len(records_of_type(doc, "provml:Epoch")) == 2
    provcheck.check_all(run_dir / "prov_rank0.json", tmp_path)


def test_many_epochs_collapse_in_the_graph(start):
    from prov4ml import prov2dot

    run = start()
    for epoch in range(60):
        prov4ml.mark_epoch(epoch, Context.TRAINING)
        prov4ml.log_metric("loss", 1.0 / (epoch + 1), Context.TRAINING, step=epoch)
    prov4ml.end_run()
    doc = ProvDocument.deserialize(str(run.prov_path))
    assert len(records_of_type(doc, "provml:Epoch")) == 60
    dot = prov2dot.prov_to_dot(doc).to_string()
    assert "40 more epochs" in dot and dot.count("training epoch") == 20 + 2  # 20 drawn, the summary's from/to


def test_an_input_is_used_where_it_was_and_its_copy_is_generated(tmp_path):
    from dataclasses import dataclass

    from prov4ml.provenance import build_document
    from prov4ml.records.model import ArtifactRecord, RunSnapshot

    @dataclass(frozen=True)
    class InputArtifact(ArtifactRecord):
        is_input: bool = True

    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    art = InputArtifact("config.yaml", "artifacts/config.yaml", "/data/config.yaml", "0" * 64, 10, False, None, None, t0)
    snap = RunSnapshot("www.example.org", "alice", "exp", 0, 0, str(tmp_path), t0, t0 + timedelta(hours=1),
                       "finished", None, "0", artifacts=[art])
    doc = build_document(snap)
    (copy,) = records_of_type(doc, "provml:Artifact")
    (original,) = records_of_type(doc, "provml:SourceFile")
    (content,) = records_of_type(doc, "provml:Content")
    # the run used the file where it was, with its bytes; the copy in the run directory is the run's own
    assert [str(u["entity"]) for u in relations(doc, "Usage")] == [str(original.identifier)]
    assert str(copy.identifier) in [str(g["entity"]) for g in relations(doc, "Generation")]
    assert [(str(d["generatedEntity"]), str(d["usedEntity"])) for d in relations(doc, "Derivation")] == [
        (str(copy.identifier), str(original.identifier))]
    assert original.get_attribute(doc.valid_qualified_name("provml:sha256")) == {"0" * 64}
    assert sorted(str(s["specificEntity"]) for s in relations(doc, "Specialization")) == sorted(
        [str(copy.identifier), str(original.identifier)])  # both are the same bytes: one content entity
    assert str(content.identifier) == "content:sha256-" + "0" * 64 and not [
        g for g in relations(doc, "Generation") if g["entity"] == content.identifier]  # no run generates bytes
    assert {str(v) for v in one(doc, "mls:Run").get_attribute(doc.valid_qualified_name("mls:hasInput"))} == {
        str(original.identifier)}
    assert violations(doc) == []
