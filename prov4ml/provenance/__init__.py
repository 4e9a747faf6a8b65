"""The only place that knows PROV: a run's plain records become a W3C PROV document.

* :mod:`.builder`    records -> ``prov.model.ProvDocument`` (the mapping, docs/prov-mapping.md)
* :mod:`.names`      namespaces, identifiers (XML NCNames), file locations (IRIs)
* :mod:`.json`       PROV-JSON text (a snapshot's written streamed: its series as they are made)
* :mod:`.vocabulary` the ``provml:`` terms, shipped as ``provml.ttl`` (docs/vocabulary.md)
* :mod:`.rdf`        RDF with the direct triples PROV-O's qualified forms imply
* :mod:`.checks`     PROV-CONSTRAINTS, PROV-JSON schema and vocabulary checks of a document
"""

from .builder import build_document, user_iri
from .json import document_json, to_json, write_document
from .names import NAMESPACES, PROVML, json_location, location_path, user_namespace_iri

__all__ = ["NAMESPACES", "PROVML", "build_document", "to_json", "document_json", "write_document", "user_namespace_iri", "user_iri", "location_path", "json_location"]
