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

Reading such RDF back, ``prov`` would take each direct triple for a second
relation (a generation, usage, start, end, invalidation or derivation it does
not reconcile with its qualified form) and a ``prov:wasRevisionOf`` for an
attribute. :func:`read` removes exactly the triples :func:`add_direct_triples`
adds for those (:func:`remove_direct_triples`) before ``prov`` decodes the
graph, so the document comes back equal to the one written. A relation stated
twice, once bare and once with a time or attributes, reads back once.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

__all__ = ["DIRECT", "SUBTYPES", "RECONCILED", "graph", "add_direct_triples", "remove_direct_triples", "read"]

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
#: qualified forms whose direct triple ``prov`` itself reads as the same relation (prov writes both for them)
RECONCILED = frozenset({"qualifiedAssociation", "qualifiedAttribution", "qualifiedDelegation", "qualifiedCommunication",
                        "qualifiedInfluence"})


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


def _implied(g: Any, reconciled: bool = True) -> Iterator[Tuple[Any, Any, Any]]:
    """Each direct triple a qualified influence of ``g`` implies (``reconciled=False``: not those prov reconciles)."""
    from rdflib import URIRef

    rdf_type = URIRef(RDF_TYPE)
    for qualified, (influencer, direct) in DIRECT.items():
        if not reconciled and qualified in RECONCILED:
            continue
        q, by = URIRef(PROV + qualified), URIRef(PROV + influencer)
        for subject, node in list(g.subject_objects(q)):
            properties = [URIRef(PROV + d) for d in direct]
            if qualified == "qualifiedDerivation":
                properties += [URIRef(PROV + p) for t, p in SUBTYPES.items() if (node, rdf_type, URIRef(PROV + t)) in g]
            for obj in list(g.objects(node, by)):
                for p in properties:
                    yield subject, p, obj


def add_direct_triples(g: Any) -> int:
    """Add to the rdflib graph ``g`` the direct triple of each qualified influence; returns how many were new."""
    added = 0
    for triple in list(_implied(g)):
        if triple not in g:
            g.add(triple)
            added += 1
    return added


def remove_direct_triples(g: Any) -> int:
    """Remove from ``g`` the direct triples :func:`add_direct_triples` added that ``prov`` would read as second
    relations; returns how many were removed."""
    removed = 0
    for triple in list(_implied(g, reconciled=False)):
        if triple in g:
            g.remove(triple)
            removed += 1
    return removed


def read(source: Union[str, Path, None], rdf_format: str = "turtle", data: Optional[str] = None):
    """The ``ProvDocument`` in the PROV-O file ``source`` (or the text ``data``) in ``rdf_format`` (Turtle, TriG...),
    read by ``prov`` without the direct triples that would double its relations."""
    from prov.model import ProvDocument
    from prov.serializers.provrdf import ProvRDFSerializer
    from rdflib import Dataset

    with warnings.catch_warnings():  # rdflib 7 warns about ConjunctiveGraph
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = Dataset(default_union=True)
        if data is None:
            dataset.parse(str(source), format=rdf_format)
        else:
            dataset.parse(data=data, format=rdf_format)
        for g in dataset.graphs():
            remove_direct_triples(g)
        document = ProvDocument()
        ProvRDFSerializer(document).decode_document(dataset, document)
    return document
