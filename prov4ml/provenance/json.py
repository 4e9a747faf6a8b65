"""PROV-JSON text of a document, fast enough for the refreshes during a run."""

from __future__ import annotations

import io
from typing import Any, Dict, Optional

__all__ = ["to_json", "xml_compatible"]


def to_json(document, indent: Optional[int] = 1) -> str:
    """PROV-JSON text. The JSON serializer is used directly: ``ProvDocument.serialize``
    imports every serializer (XML, RDF), which costs ~0.2 s. ``indent=None`` is
    several times faster (json's C encoder): the refreshes during a run use it."""
    from prov.serializers.provjson import ProvJSONSerializer

    stream = io.StringIO()
    ProvJSONSerializer(document).serialize(stream, indent=indent)
    return stream.getvalue()


def xml_compatible(data: dict) -> dict:
    """The PROV-JSON ``data`` with each ``xsd:QName`` value that PROV-XML's ``xs:QName`` cannot hold
    (a location such as ``rundir:metrics/loss.csv``: its local part has a '/') written as the
    ``xsd:anyURI`` it stands for. Identifiers are NCNames already (names.py)."""
    from .names import is_ncname

    def fix(node: Any, prefixes: Dict[str, str]) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "xsd:QName" and isinstance(node.get("$"), str):
                prefix, _, local = node["$"].partition(":")
                if prefix in prefixes and not is_ncname(local):
                    return {"$": prefixes[prefix] + local, "type": "xsd:anyURI"}
                return node
            scope = {**prefixes, **node.get("prefix", {})} if isinstance(node.get("prefix"), dict) else prefixes
            return {k: fix(v, scope) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v, prefixes) for v in node]
        return node

    return fix(data, {"prov": "http://www.w3.org/ns/prov#", "xsd": "http://www.w3.org/2001/XMLSchema#"})
