"""PROV-O RDF of a document, with the direct triples its qualified forms imply.

The ``prov`` package writes a relation that has a time, a type or attributes
only in PROV-O's qualified form (``:e prov:qualifiedGeneration [ prov:activity
:a ; prov:atTime ... ]``), so ``?e prov:wasGeneratedBy ?a`` finds nothing.
PROV-O defines each qualified form as the expansion of a direct one
(``prov:qualifiedGeneration`` qualifies ``prov:wasGeneratedBy``):
:func:`add_direct_triples` writes the direct triple beside every qualified one,
so plain SPARQL works: ``prov:wasRevisionOf`` and ``prov:wasDerivedFrom``
beside a ``prov:qualifiedRevision``, and ``prov:wasRevisionOf`` (``wasQuotedFrom``,
``hadPrimarySource``) beside a ``prov:qualifiedDerivation`` typed ``prov:Revision``.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Tuple

__all__ = ["DIRECT", "SUBTYPES", "graph", "add_direct_triples"]

PROV = "http://www.w3.org/ns/prov#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

#: qualified property -> (property of the influence node naming the influencer, direct properties);
#: a revision is also a derivation (prov:wasRevisionOf is a sub-property of prov:wasDerivedFrom)
DIRECT: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "qualifiedGeneration": ("activity", ("wasGeneratedBy",)),
    "qualifiedUsage": ("entity", ("used",)),
    "qualifiedDerivation": ("entity", ("wasDerivedFrom",)),
    "qualifiedRevision": ("entity", ("wasRevisionOf", "wasDerivedFrom")),
    "qualifiedQuotation": ("entity", ("wasQuotedFrom", "wasDerivedFrom")),
    "qualifiedPrimarySource": ("entity", ("hadPrimarySource", "wasDerivedFrom")),
    "qualifiedAssociation": ("agent", ("wasAssociatedWith",)),
    "qualifiedAttribution": ("agent", ("wasAttributedTo",)),
    "qualifiedDelegation": ("agent", ("actedOnBehalfOf",)),
    "qualifiedCommunication": ("activity", ("wasInformedBy",)),
    "qualifiedInvalidation": ("activity", ("wasInvalidatedBy",)),
    "qualifiedStart": ("entity", ("wasStartedBy",)),  # the trigger: PROV-O's wasStartedBy names an entity
    "qualifiedEnd": ("entity", ("wasEndedBy",)),
    "qualifiedInfluence": ("influencer", ("wasInfluencedBy",)),
}
#: a derivation of this type also gets this direct property
SUBTYPES: Dict[str, str] = {"Revision": "wasRevisionOf", "Quotation": "wasQuotedFrom", "PrimarySource": "hadPrimarySource"}


def graph(document: Any):
    """The document as an rdflib ``Dataset`` (a named graph per bundle), with the direct triples."""
    from prov.serializers.provrdf import ProvRDFSerializer

    # prov's own graph, not its text parsed again: its doubles keep every digit when written
    with warnings.catch_warnings():  # rdflib 7 warns about ConjunctiveGraph
        warnings.simplefilter("ignore", DeprecationWarning)
        data = ProvRDFSerializer(document).encode_document(document)
        for g in data.graphs():
            add_direct_triples(g)
    return data


def add_direct_triples(g: Any) -> int:
    """Add to the rdflib graph ``g`` the direct triple of each qualified influence; returns how many were new."""
    from rdflib import URIRef

    added = 0
    rdf_type = URIRef(RDF_TYPE)
    for qualified, (influencer, direct) in DIRECT.items():
        q, by = URIRef(PROV + qualified), URIRef(PROV + influencer)
        for subject, node in list(g.subject_objects(q)):
            properties = [URIRef(PROV + d) for d in direct]
            if qualified == "qualifiedDerivation":
                properties += [URIRef(PROV + p) for t, p in SUBTYPES.items() if (node, rdf_type, URIRef(PROV + t)) in g]
            for obj in list(g.objects(node, by)):
                for p in properties:
                    if (subject, p, obj) not in g:
                        g.add((subject, p, obj))
                        added += 1
    return added
