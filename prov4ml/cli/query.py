"""SPARQL over an experiment's provenance: its documents, as RDF with the direct triples, in an embedded store.

Needs the query extra (pyoxigraph; rdflib is the fallback). Prefixes prov,
mls, provml, xsd, rdf, rdfs and dcterms are declared for you.
"""

from __future__ import annotations

import argparse

from ..provenance.query import add_arguments, answer

__all__ = ["add_arguments", "run"]


def run(args: argparse.Namespace) -> int:
    answer(args)
    return 0
