"""convert: PROV-JSON to PROV-N, PROV-XML, Turtle, TriG and JSON, read back; format errors list the known ones."""

import json
import subprocess
import sys
import warnings

import pytest
from prov.model import ProvDocument

from conftest import ROOT
from conftest_graphs import make_real_experiment, synthetic_run, write_experiment
from prov4ml import convert as conv
from prov4ml.exceptions import InvalidValueError, MissingDependencyError, ProvFileError
from prov4ml.prov_collection import create_collection


@pytest.fixture
def prov_json(tmp_path):
    path = tmp_path / "prov_rank0.json"
    path.write_text(synthetic_run(n_series=2, n_versions=2).serialize(format="json"))
    return path


def rdf_graph(path, fmt):
    import rdflib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = rdflib.Dataset() if fmt == "trig" else rdflib.Graph()
        graph.parse(str(path), format=fmt)
    return graph


def test_json_and_xml_read_back_equal(prov_json, tmp_path):
    original = ProvDocument.deserialize(str(prov_json))
    assert ProvDocument.deserialize(str(conv.convert(prov_json, tmp_path / "a.json"))) == original
    xml = conv.convert(prov_json, tmp_path / "a.xml")
    assert ProvDocument.deserialize(str(xml), format="xml") == original


def test_provn(prov_json, tmp_path):
    text = conv.convert(prov_json, tmp_path / "a.provn").read_text()
    assert text.startswith("document") and "wasDerivedFrom(" in text and "xsd:int" not in text.split("\n")[0]


def test_turtle_without_rdflib_warnings_escaping(prov_json, tmp_path):
    from rdflib import URIRef

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rdflib's per-triple DeprecationWarning must not leak out
        out = conv.convert(prov_json, tmp_path / "a.ttl")
    graph = rdf_graph(out, "turtle")
    run = URIRef("http://www.example.org/exp/run_0/rank0")
    assert (run, None, URIRef("http://www.w3.org/ns/prov#Activity")) in graph
    assert len(graph) > 50


def test_rdf_is_rdf_xml_of_the_same_graph_as_turtle_and_reads_back(prov_json, tmp_path):
    from rdflib.compare import isomorphic

    from prov4ml.cli.main import main

    assert main(["convert", str(prov_json), str(tmp_path / "a.rdf")]) == 0
    assert (tmp_path / "a.rdf").read_text().lstrip().startswith("<?xml")
    turtle = conv.convert(prov_json, tmp_path / "a.ttl")
    assert isomorphic(rdf_graph(tmp_path / "a.rdf", "xml"), rdf_graph(turtle, "turtle"))
    assert main(["convert", str(tmp_path / "a.rdf"), str(tmp_path / "back.json")]) == 0  # .rdf read back as RDF/XML
    assert main(["convert", str(turtle), str(tmp_path / "back_ttl.json")]) == 0
    # the same named records as Turtle gives back (tests/test_prov_rdf_terms.py: Turtle gives back a run's document),
    # by full IRI: prefixes are named by each parser, unnamed relations numbered in its parse order (hash-seed bound)
    assert _named(tmp_path / "back.json") == _named(tmp_path / "back_ttl.json")


def _named(path):
    """``{(kind, full IRI)}`` of a PROV-JSON document's named records, and its number of unnamed ones per kind."""
    data = json.loads(path.read_text())
    prefixes = data.get("prefix", {})

    def iri(name):
        prefix, _, local = name.partition(":")
        return prefixes[prefix] + local if prefix in prefixes else name

    named = {(kind, iri(k)) for kind, records in data.items() if kind != "prefix" for k in records if not k.startswith("_:")}
    unnamed = sorted((kind, sum(k.startswith("_:") for k in records)) for kind, records in data.items() if kind != "prefix")
    return named, unnamed


def test_collection_goes_to_trig_not_turtle(tmp_path):
    exp = write_experiment(tmp_path, "exp", runs=1, ranks=2)
    col = create_collection(exp, tmp_path)
    for name in ("c.ttl", "c.rdf"):
        with pytest.raises(InvalidValueError, match="TriG"):
            conv.convert(col, tmp_path / name)
        assert not (tmp_path / name).exists()
    dataset = rdf_graph(conv.convert(col, tmp_path / "c.trig"), "trig")
    named = [g for g in dataset.graphs() if "document" in str(g.identifier)]
    assert len(named) == 2


@pytest.mark.parametrize("name, fmt, expected", [
    ("x.ttl", None, "rdf"), ("x.out", "ttl", "rdf"), ("x.out", "turtle", "rdf"), ("x.provx", None, "xml"),
    ("x.PROVN", None, "provn"), ("x.json", "provn", "provn"), ("x.trig", None, "trig"), ("x.rdf", None, "rdfxml"),
    ("x.out", "rdfxml", "rdfxml"),
])
def test_format_from_suffix_or_argument(name, fmt, expected):
    assert conv.format_for(name, fmt).name == expected


@pytest.mark.parametrize("name, fmt", [("x.nt", None), ("x", None), ("x.ttl", "n3")])
def test_unknown_format_lists_the_known_ones(name, fmt, prov_json, tmp_path, capsys):
    with pytest.raises(InvalidValueError, match=r"known formats: json, .*provn, rdf, rdfxml, trig, ttl.*\.rdf"):
        conv.convert(prov_json, tmp_path / name, fmt)
    argv = ["--prov_json", str(prov_json), "--output", str(tmp_path / name)] + (["--format", fmt] if fmt else [])
    assert conv.main(argv) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / name).exists()


def test_missing_extra_names_it(prov_json, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lxml", None)  # import lxml -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "prov4ml\[xml\]"'):
        conv.convert(prov_json, tmp_path / "a.xml")
    assert conv.main(["--prov_json", str(prov_json), "--output", str(tmp_path / "a.xml")]) == 3


def test_bad_input(tmp_path, capsys):
    bad = tmp_path / "prov_rank0.json"
    bad.write_text('{"entity": {"ex:a": 5}}')
    with pytest.raises(ProvFileError, match="not PROV-JSON"):
        conv.convert(bad, tmp_path / "a.provn")
    assert conv.main(["--prov_json", str(tmp_path / "missing.json"), "--output", str(tmp_path / "a.provn")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prov_rank0.json"]


def test_cli_on_a_real_run(tmp_path):
    src = make_real_experiment(tmp_path / "prov") / "run_0" / "prov_rank0.json"
    for name in ("out.ttl", "out.provn", "out.xml"):
        proc = subprocess.run([sys.executable, "-m", "prov4ml.convert", "--prov_json", str(src), "--output",
                               str(tmp_path / name)], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
    assert len(rdf_graph(tmp_path / "out.ttl", "turtle")) > 50
    # PROV-XML's xs:QName cannot hold rundir:metrics/x.csv: the XML names the same IRI as an xsd:anyURI
    back = ProvDocument.deserialize(str(tmp_path / "out.xml"), format="xml")
    assert back == as_xml_holds_it(ProvDocument.deserialize(str(src)))
    assert back != ProvDocument.deserialize(str(src))


def as_xml_holds_it(doc):
    import json

    from prov4ml.provenance.json import xml_compatible

    return ProvDocument.deserialize(content=json.dumps(xml_compatible(json.loads(doc.serialize(format="json")))), format="json")


def test_xml_formats_refuse_a_control_character_by_name_and_turtle_keeps_it(tmp_path):
    """XML 1.0 has no control characters (but tab, newline, carriage return): PROV-XML and RDF/XML refuse such a
    text with the character, the text and the formats that can hold it, writing nothing; Turtle keeps it."""
    doc = ProvDocument()
    doc.add_namespace("ex", "http://example.org/")
    doc.entity("ex:m", {"prov:label": "ctl\x01\x1f name"})
    source = tmp_path / "doc.json"
    source.write_text(doc.serialize(format="json"))
    for suffix in (".xml", ".rdf"):
        with pytest.raises(InvalidValueError, match=r"U\+0001 of 'ctl\\x01\\x1f name'.*\.provn.*\.ttl"):
            conv.convert(source, tmp_path / f"out{suffix}")
        assert not (tmp_path / f"out{suffix}").exists()
    conv.convert(source, tmp_path / "out.ttl")
    import rdflib

    labels = {str(o) for o in rdflib.Graph().parse(tmp_path / "out.ttl", format="turtle").objects()}
    assert "ctl\x01\x1f name" in labels
