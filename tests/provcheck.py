"""Standards checks of a PROV-JSON file, for the tests: every oracle is a W3C artifact.

``check_all(path)`` asserts that the file
* validates against the PROV-JSON schema shipped in the ``prov`` package (its
  ``wasEndedby`` key typo tolerated: ``wasEndedBy`` is accepted too);
* converts (``prov4ml.convert``) to PROV-XML that validates against ``prov.xsd``;
* has no PROV-CONSTRAINTS violation (``prov4ml.provenance.checks``);
* round-trips equal to itself through the TriG ``prov4ml convert`` writes (the direct triples beside the
  qualified ones), read back by ``prov`` (``prov4ml.provenance.rdf.read``);
* names, in its RDF, only classes and properties that PROV-O, ML-Schema or
  ``provml.ttl`` define.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

STANDARDS = Path(__file__).resolve().parent / "standards"
PROV_NS = "http://www.w3.org/ns/prov#"
MLS_NS = "http://www.w3.org/ns/mls#"
PROVML_NS = "https://prov4ml.github.io/ns/provml#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


@functools.lru_cache(maxsize=None)
def json_validator():
    import jsonschema
    import prov

    path = Path(prov.__file__).parent / "tests" / "schemas" / "prov-json.schema.json"
    schema = json.loads(path.read_text())
    for holder in (schema["properties"], schema["definitions"]["bundle"].get("properties", {})):
        if "wasEndedby" in holder:  # the schema's typo: documents rightly write wasEndedBy
            holder["wasEndedBy"] = copy.deepcopy(holder["wasEndedby"])
    return jsonschema.Draft4Validator(schema)


@functools.lru_cache(maxsize=None)
def xml_schema():
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(STANDARDS / "prov.xsd")))


@functools.lru_cache(maxsize=None)
def vocabulary():
    """Every class and property IRI PROV-O, ML-Schema and provml.ttl define."""
    import rdflib

    from prov4ml.provenance.vocabulary import ttl_path

    terms = set()
    for path in (STANDARDS / "prov-o.ttl", STANDARDS / "mls.ttl", ttl_path()):
        g = rdflib.Graph()
        g.parse(str(path), format="turtle")
        terms |= {str(s) for s in g.subjects() if isinstance(s, rdflib.URIRef)}
    return frozenset(terms)


def json_errors(path) -> list:
    data = json.loads(Path(path).read_text())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in json_validator().iter_errors(data)]


def xml_errors(path, tmp) -> list:
    from lxml import etree

    from prov4ml import convert

    out = convert.convert(path, Path(tmp) / (Path(path).stem + ".xml"))
    schema = xml_schema()
    ok = schema.validate(etree.parse(str(out)))
    return [] if ok else [str(e) for e in schema.error_log][:20]


def rdf_round_trip_differences(document) -> list:
    """What differs after ``prov4ml convert`` writes the document as TriG (with the direct triples) and ``prov``
    reads it back (``prov4ml.provenance.rdf.read``); empty: equal."""
    from prov4ml.provenance.convert import FORMATS
    from prov4ml.provenance.rdf import read

    back = read(None, "trig", data=FORMATS["trig"].write(document))
    if back == document:
        return []
    left, right = _records(document), _records(back)
    return [f"only in the original: {r}" for r in sorted(left - right)][:5] + [f"only after RDF: {r}" for r in sorted(right - left)][:5]


def _records(document) -> set:
    out = {str(r) for r in document.get_records()}
    for b in document.bundles:
        out |= {f"[{b.identifier}] {r}" for r in b.get_records()}
    return out


def unknown_terms(document) -> list:
    """Classes and properties of the document's RDF (with the direct triples) that no vocabulary defines."""
    import rdflib

    from prov4ml.provenance.rdf import graph

    known = vocabulary()
    unknown = set()
    for s, p, o, _g in graph(document).quads():
        names = [str(p)]
        if str(p) == RDF_NS + "type":
            names.append(str(o))
        for name in names:
            if name.startswith(RDF_NS):
                continue
            if name not in known:
                unknown.add(name)
    return sorted(unknown)


def check_all(path, tmp) -> None:
    """Assert every check on the PROV-JSON file ``path`` (``tmp``: a folder for the XML)."""
    from prov.model import ProvDocument

    from prov4ml.provenance.checks import violations

    assert json_errors(path) == [], path
    assert xml_errors(path, tmp) == [], path
    document = ProvDocument.deserialize(str(path))
    assert violations(document) == [], path
    assert rdf_round_trip_differences(document) == [], path
    assert unknown_terms(document) == [], path
