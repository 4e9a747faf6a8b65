"""RDF that round-trips, literals that match their ranges, Unicode context names, the stage a failed run stopped in.

Documents come from real runs (tests/test_prov_standards.py's ``training_run``); the RDF is what
``prov4ml convert`` writes, read back by ``prov``'s own decoder (``prov4ml.provenance.rdf.read``).
"""

from collections import Counter

import pytest
from prov.model import ProvDocument

import prov4ml
from prov4ml import Context
from prov4ml.exceptions import InvalidValueError
from prov4ml.provenance import convert, vocabulary
from prov4ml.provenance.rdf import graph, read
from conftest import load_json, series_entity
from test_prov_standards import attr, one, records_of_type, training_run

rdflib = pytest.importorskip("rdflib")
pytest.importorskip("lxml")
import provcheck  # noqa: E402

PROV = "http://www.w3.org/ns/prov#"
XSD = "http://www.w3.org/2001/XMLSchema#"


def a_run_still_going(start, tmp_path):
    run = start(capture=True)
    prov4ml.register_final_metric("loss", float("inf"), prov4ml.FoldOperation.MIN)
    for epoch in range(2):
        prov4ml.mark_epoch(epoch, Context.TRAINING)
        for i in range(3):
            prov4ml.log_metric("loss", 1.0 / (epoch * 3 + i + 1), Context.TRAINING, step=epoch * 3 + i)
        prov4ml.log_metric("val_loss", 0.5, Context.VALIDATION, step=epoch)
    prov4ml.flush()
    return run


RUNS = {
    "finished": lambda start, tmp_path: training_run(start, tmp_path, capture=True),
    "failed": lambda start, tmp_path: training_run(start, tmp_path, fail=True),
    "running": a_run_still_going,
}


def canonical(document):
    """Each record as (kind, identifier, formal attributes, other attributes with their types), by IRI (prefixes
    may differ), attribute order aside; blank identifiers aside (RDF does not keep them)."""
    def term(v):
        return (str(getattr(v, "uri", v)), type(v).__name__ if not hasattr(v, "datatype") else str(v.datatype))

    return Counter(
        (r.get_type().localpart, None if r.identifier is None or str(r.identifier).startswith("_:") else term(r.identifier),
         tuple(term(v) for _k, v in r.formal_attributes),
         tuple(sorted((term(k), term(v)) for k, v in r.extra_attributes)))
        for r in document.get_records())


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_turtle_from_convert_round_trips_through_prov(start, tmp_path, kind):
    run = RUNS[kind](start, tmp_path)
    original = ProvDocument.deserialize(str(run.prov_path))
    ttl = convert.convert(run.prov_path, tmp_path / "run.ttl")
    g = rdflib.Graph()
    g.parse(str(ttl), format="turtle")
    # the direct triples readers need are in the file, beside the qualified ones
    generations = [r for r in original.get_records() if r.get_type().localpart == "Generation"]
    assert len(list(g.triples((None, rdflib.URIRef(PROV + "wasGeneratedBy"), None)))) == len(generations) >= 4
    back = read(ttl)
    assert Counter(r.get_type().localpart for r in back.get_records()) == Counter(
        r.get_type().localpart for r in original.get_records())
    assert canonical(back) == canonical(original)
    assert back == original
    # and through the command line, Turtle back to PROV-JSON
    from prov4ml.cli.main import main

    assert main(["convert", str(ttl), str(tmp_path / "back.json")]) == 0
    assert ProvDocument.deserialize(str(tmp_path / "back.json")) == original


def test_revisions_come_back_as_derivations_not_attributes(start, tmp_path):
    run = training_run(start, tmp_path)
    back = read(convert.convert(run.prov_path, tmp_path / "run.ttl"))
    for v in records_of_type(back, "provml:ModelVersion"):
        assert not [k for k, _v in v.attributes if str(k) in ("prov:wasRevisionOf", "prov:wasDerivedFrom")]
    revisions = [r for r in back.get_records() if r.get_type().localpart == "Derivation"
                 and "prov:Revision" in {str(v) for k, v in r.extra_attributes if str(k) == "prov:type"}]
    assert len(revisions) == 2  # net v1 from v0, v2 from v1: once each


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_every_provml_literal_has_its_declared_range(start, tmp_path, kind):
    run = RUNS[kind](start, tmp_path)
    seen = Counter()
    for _s, p, o, _g in graph(ProvDocument.deserialize(str(run.prov_path))).quads():
        declared = vocabulary.RANGES.get("provml:" + str(p)[len(vocabulary.PROVML):]) if str(p).startswith(vocabulary.PROVML) else None
        if declared is None:
            continue
        assert isinstance(o, rdflib.Literal), (p, o)
        written = str(o.datatype) if o.datatype is not None else XSD + "string"
        assert written == XSD + declared[len("xsd:"):], (str(p), o, written)
        seen[declared] += 1
    assert seen["xsd:long"] and seen["xsd:string"] and seen["xsd:double"] and seen["xsd:dateTime"]


def test_prov4ml_names_its_own_version_as_text(start, tmp_path):
    run = training_run(start, tmp_path)
    agent = load_json(run.prov_path)["agent"]["provml:prov4ml"]
    assert agent["provml:software_version"] == prov4ml.__version__ and "provml:version" not in agent
    assert vocabulary.RANGES["provml:software_version"] == "xsd:string"


@pytest.mark.parametrize("name", ["fine tune.π", "訓練", "प्रशिक्षण", "Étape-2_b"])
def test_unicode_context_names(start, tmp_path, name):
    ctx = Context(name)
    assert str(ctx) == name.lower() and Context(name.upper()) is ctx
    run = start()
    prov4ml.mark_epoch(0, ctx)
    prov4ml.log_metric("loss", 0.5, ctx, step=0)
    prov4ml.log_metric("loss", 0.25, ctx, step=1)
    prov4ml.end_run()
    data = load_json(run.prov_path)
    loss = series_entity(data, "loss", name.lower())
    assert (loss["provml:count"], loss["provml:last"]) == (2, 0.25)
    doc = ProvDocument.deserialize(str(run.prov_path))
    assert {attr(r, "prov:label") for r in records_of_type(doc, "provml:LearningStage")} == {name.lower()}
    rows = (run.run_dir / loss["prov:location"]).read_text().splitlines()
    assert [r.split(",")[:2] for r in rows[1:]] == [["0", "0.5"], ["1", "0.25"]]
    provcheck.check_all(run.prov_path, tmp_path)


@pytest.mark.parametrize("name", ["a/b", "a:b", "tab\there", "", "nul\0", "∑ sum"])
def test_context_names_outside_the_rule_are_refused_saying_what_is_allowed(name):
    with pytest.raises(InvalidValueError, match="letters, marks and digits of any script"):
        Context(name)


def test_a_failed_run_marks_the_stage_and_epoch_it_stopped_in(start, tmp_path):
    run = training_run(start, tmp_path, fail=True)  # raises in training epoch 1, after its cpu_usage point
    doc = ProvDocument.deserialize(str(run.prov_path))
    marked = {str(r.identifier).rsplit(".rank0.", 1)[1]: attr(r, "provml:outcome") for r in doc.get_records()
              if r.is_element() and attr(r, "provml:outcome") != []}
    assert marked == {"context.training": "failed", "context.training.epoch.1": "failed"}
    assert attr(one(doc, "mls:Run"), "provml:status") == "failed"
    provcheck.check_all(run.prov_path, tmp_path)


def test_a_failure_in_a_sub_context_marks_it_and_its_parents_epoch(start, tmp_path):
    inner = prov4ml.create_context("inner eval", Context.TRAINING)
    run = start()
    for epoch in range(2):
        prov4ml.mark_epoch(epoch, Context.TRAINING)
        prov4ml.log_metric("loss", 1.0, Context.TRAINING, step=epoch)
        prov4ml.log_metric("score", 0.5, inner, step=epoch)  # the last record: the failure comes after it
    run.end(status="failed", error=RuntimeError("nan in the eval"))
    doc = ProvDocument.deserialize(str(run.prov_path))
    marked = {r.identifier for r in doc.get_records() if r.is_element() and attr(r, "provml:outcome") == "failed"}
    (stage,) = [r for r in records_of_type(doc, "provml:LearningStage") if attr(r, "prov:label") == "inner eval"]
    (epoch,) = [r for r in records_of_type(doc, "provml:Epoch") if attr(r, "prov:label") == "training epoch 1"]
    assert marked == {stage.identifier, epoch.identifier}  # the stage has no epochs: its parent's last one


def test_a_finished_run_marks_no_stage(start, tmp_path):
    run = training_run(start, tmp_path)
    doc = ProvDocument.deserialize(str(run.prov_path))
    assert [r for r in doc.get_records() if r.is_element() and attr(r, "provml:outcome") != []] == []
    assert [r for r in doc.get_records() if r.is_element() and attr(r, "provml:status") != []] == [one(doc, "mls:Run")]
