"""PROV-O RDF of a document, with the direct triples its qualified forms imply.

The ``prov`` package writes a relation that has a time, a type or attributes
only in PROV-O's qualified form (``:e prov:qualifiedGeneration [ prov:activity
:a ; prov:atTime ... ]``), so ``?e prov:wasGeneratedBy ?a`` finds nothing.
PROV-O defines each qualified form as the expansion of a direct one
(``prov:qualifiedGeneration`` qualifies ``prov:wasGeneratedBy``):
:func:`add_direct_triples` writes the direct triple beside every qualified one,
so plain SPARQL works, and ``prov:wasRevisionOf`` (``wasQuotedFrom``,
``hadPrimarySource``) beside a derivation typed ``prov:Revision`` (...).
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Tuple

__all__ = ["DIRECT", "SUBTYPES", "graph", "add_direct_triples"]

PROV = "http://www.w3.org/ns/prov#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

#: qualified property -> (property of the influence node naming the influencer, direct property)
DIRECT: Dict[str, Tuple[str, str]] = {
    "qualifiedGeneration": ("activity", "wasGeneratedBy"),
    "qualifiedUsage": ("entity", "used"),
    "qualifiedDerivation": ("entity", "wasDerivedFrom"),
    "qualifiedRevision": ("entity", "wasRevisionOf"),
    "qualifiedQuotation": ("entity", "wasQuotedFrom"),
    "qualifiedPrimarySource": ("entity", "hadPrimarySource"),
    "qualifiedAssociation": ("agent", "wasAssociatedWith"),
    "qualifiedAttribution": ("agent", "wasAttributedTo"),
    "qualifiedDelegation": ("agent", "actedOnBehalfOf"),
    "qualifiedCommunication": ("activity", "wasInformedBy"),
    "qualifiedInvalidation": ("activity", "wasInvalidatedBy"),
    "qualifiedStart": ("entity", "wasStartedBy"),  # the trigger: PROV-O's wasStartedBy names an entity
    "qualifiedEnd": ("entity", "wasEndedBy"),
    "qualifiedInfluence": ("influencer", "wasInfluencedBy"),
}
#: a derivation of this type also gets this direct property
SUBTYPES: Dict[str, str] = {"Revision": "wasRevisionOf", "Quotation": "wasQuotedFrom", "PrimarySource": "hadPrimarySource"}


def graph(document: Any):
    """The document as an rdflib ``Dataset`` (a named graph per bundle), with the direct triples."""
    import rdflib

    with warnings.catch_warnings():  # rdflib 7 warns once per triple about ConjunctiveGraph
        warnings.simplefilter("ignore", DeprecationWarning)
        text = document.serialize(format="rdf", rdf_format="trig")
        data = rdflib.Dataset()
        data.parse(data=text, format="trig")
    for g in data.graphs():
        add_direct_triples(g)
    return data


def add_direct_triples(g: Any) -> int:
    """Add to the rdflib graph ``g`` the direct triple of each qualified influence; returns how many were new."""
    from rdflib import URIRef

    added = 0
    rdf_type = URIRef(RDF_TYPE)
    for qualified, (influencer, direct) in DIRECT.items():
        q, by, d = URIRef(PROV + qualified), URIRef(PROV + influencer), URIRef(PROV + direct)
        for subject, node in list(g.subject_objects(q)):
            properties = [d]
            if qualified == "qualifiedDerivation":
                properties += [URIRef(PROV + p) for t, p in SUBTYPES.items() if (node, rdf_type, URIRef(PROV + t)) in g]
            for obj in list(g.objects(node, by)):
                for p in properties:
                    if (subject, p, obj) not in g:
                        g.add((subject, p, obj))
                        added += 1
    return added
