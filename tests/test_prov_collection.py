"""prov_collection: one document linking every run's and rank's PROV-JSON, readable by prov."""

import json
import subprocess
import sys

import pytest
from prov.model import ProvDocument

from conftest import ROOT
from conftest_graphs import make_real_experiment, synthetic_run, write_experiment
from prov4ml import prov_collection
from prov4ml.exceptions import ProvFileError

PROVML = "https://prov4ml.github.io/ns/provml#"


def relations(doc, kind):
    """(first, second) identifiers, as strings, of the top-level relations of ``kind`` (e.g. 'hadMember')."""
    out = set()
    for rec in doc.get_records():
        if rec.is_relation() and rec.get_type().localpart == kind:
            args = [v for _k, v in rec.formal_attributes[:2]]
            out.add(tuple(str(a) for a in args))
    return out


def types_of(doc, ident):
    (rec,) = [r for r in doc.get_records() if r.is_element() and str(r.identifier) == ident]
    return {str(t) for t in rec.get_asserted_types()}, rec


def test_bundle_per_document_and_membership(tmp_path):
    exp = write_experiment(tmp_path, "exp", runs=2, ranks=2, n_series=2, n_versions=3)
    out = prov_collection.create_collection(exp, tmp_path / "out")
    assert out == tmp_path / "out" / "exp_collection.json"
    doc = ProvDocument.deserialize(str(out))
    bundles = {str(b.identifier): b for b in doc.bundles}
    assert sorted(bundles) == [f"ex:exp/run_{r}/rank{k}/document" for r in (0, 1) for k in (0, 1)]
    original = synthetic_run("exp", 1, 1, n_series=2, n_versions=3)
    assert len(bundles["ex:exp/run_1/rank1/document"].records) == len(original.records)

    kinds, experiment = types_of(doc, "ex:exp")
    assert kinds == {"mls:Experiment", "provml:Experiment"} and experiment.get_type().localpart == "Activity"
    assert {str(a) for a in experiment.get_attribute(experiment.bundle.valid_qualified_name("mls:hasPart"))} == {
        f"ex:exp/run_{r}/rank{k}" for r in (0, 1) for k in (0, 1)}
    assert {"prov:Collection", "provml:Run"} <= types_of(doc, "ex:exp/run_0")[0]
    kinds, entity = types_of(doc, "ex:exp/run_1/rank0/document")
    assert {"prov:Bundle", "provml:ProvenanceDocument"} <= kinds
    attrs = {str(k): v for k, v in entity.attributes}
    assert attrs["prov:location"].uri == (exp / "run_1" / "prov_rank0.json").resolve().as_uri()
    assert attrs["provml:rank"] == 0 and attrs["provml:run_id"] == 1 and len(attrs["provml:sha256"]) == 64

    members = relations(doc, "Membership")
    assert ("ex:exp/run_1", "ex:exp/run_1/rank1/document") in members
    informed = relations(doc, "Communication")  # both ways: rank 0 broadcasts, the others report back
    assert informed == {(f"ex:exp/run_{r}/rank{a}", f"ex:exp/run_{r}/rank{b}") for r in (0, 1) for a, b in ((0, 1), (1, 0))}
    # every identifier the top level names is declared there
    assert types_of(doc, "ex:exp/run_1/rank1")[1].get_startTime() is not None


def test_a_run_directory_and_a_second_pass_skip_earlier_collections(tmp_path):
    exp = write_experiment(tmp_path, "exp", runs=1, ranks=3)
    run_dir = exp / "run_0"
    first = prov_collection.create_collection(run_dir, run_dir)
    assert first.name == "run_0_collection.json"
    again = prov_collection.create_collection(run_dir, run_dir)
    assert len(list(ProvDocument.deserialize(str(again)).bundles)) == 3
    (run_dir / "artifacts").mkdir()
    (run_dir / "artifacts" / "prov_config.json").write_text('{"user": "file"}')  # a logged artifact, not PROV
    assert prov_collection.find_documents(run_dir) == [run_dir / f"prov_rank{k}.json" for k in range(3)]


def test_runs_are_ordered_by_number(tmp_path):
    exp = write_experiment(tmp_path, "exp", runs=12, ranks=1, n_series=0, n_versions=0, n_params=0)
    found = prov_collection.find_documents(exp)
    assert [p.parent.name for p in found] == [f"run_{i}" for i in range(12)]


def test_documents_without_identifiers_of_their_own(tmp_path):
    exp = tmp_path / "other"
    for rank in (0, 1):
        d = ProvDocument()
        d.add_namespace("ex", "http://www.example.org/")
        d.entity(f"ex:thing{rank}")
        (exp / "run_3").mkdir(parents=True, exist_ok=True)
        (exp / "run_3" / f"prov_rank{rank}.json").write_text(d.serialize(format="json"))
    doc = ProvDocument.deserialize(str(prov_collection.create_collection(exp, exp)))
    bundle_uris = sorted(b.identifier.uri for b in doc.bundles)
    base = exp.resolve().as_uri() + "/"
    assert bundle_uris == [base + "run_3/prov_rank0.json", base + "run_3/prov_rank1.json"]
    assert any(str(r.identifier) == "collection:run_3" for r in doc.get_records() if r.is_element())


def test_empty_missing_and_corrupt_are_errors_that_write_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProvFileError, match="no prov\\*.json under"):
        prov_collection.create_collection(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ProvFileError, match="no such directory"):
        prov_collection.create_collection(tmp_path / "nope", tmp_path / "out")
    exp = write_experiment(tmp_path, "exp", runs=2, ranks=1)
    bad = exp / "run_1" / "prov_rank0.json"
    bad.write_text(bad.read_text()[:200])
    assert prov_collection.main(["--experiment_path", str(exp), "--output_dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "cut short" in err
    assert not (tmp_path / "out" / "exp_collection.json").exists()


def test_a_collection_inside_is_refused_not_nested(tmp_path):
    exp = write_experiment(tmp_path, "exp", runs=1, ranks=1)
    col = prov_collection.create_collection(exp, tmp_path)
    (exp / "prov_old.json").write_text(col.read_text())
    with pytest.raises(ProvFileError, match="holds bundles"):
        prov_collection.create_collection(exp, tmp_path)


def test_cli_on_real_runs_and_ranks(tmp_path):
    exp = make_real_experiment(tmp_path / "prov")
    out_dir = tmp_path / "collected"
    proc = subprocess.run(
        [sys.executable, "-m", "prov4ml.prov_collection", "--experiment_path", str(exp), "--output_dir", str(out_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = out_dir / "graphs_collection.json"
    assert proc.stdout.strip() == str(out)
    doc = ProvDocument.deserialize(str(out))
    assert sorted(str(b.identifier) for b in doc.bundles) == [
        "ex:graphs.run_0.rank0.document", "ex:graphs.run_0.rank1.document", "ex:graphs.run_1.rank0.document"]
    assert ("ex:graphs.run_0.rank1", "ex:graphs.run_0.rank0") in relations(doc, "Communication")
    assert ("ex:graphs.run_0", "ex:graphs.run_0.rank1.document") in relations(doc, "Membership")
    for bundle in doc.bundles:  # every rank's own records came along
        metrics = [r for r in bundle.get_records() if r.is_element()
                   and any(getattr(t, "uri", "") == PROVML + "Metric" for t in r.get_asserted_types())]
        assert len(metrics) == 2
    assert "bundle" in json.loads(out.read_text())

    proc = subprocess.run(
        [sys.executable, "-m", "prov4ml.prov_collection", "--experiment_path", str(tmp_path / "nothing"),
         "--output_dir", str(out_dir)], capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
