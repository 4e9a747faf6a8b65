"""PROV-JSON text of a document, fast enough for the refreshes during a run."""

from __future__ import annotations

import io
from typing import Optional

__all__ = ["to_json"]


def to_json(document, indent: Optional[int] = 1) -> str:
    """PROV-JSON text. The JSON serializer is used directly: ``ProvDocument.serialize``
    imports every serializer (XML, RDF), which costs ~0.2 s. ``indent=None`` is
    several times faster (json's C encoder): the refreshes during a run use it."""
    from prov.serializers.provjson import ProvJSONSerializer

    stream = io.StringIO()
    ProvJSONSerializer(document).serialize(stream, indent=indent)
    return stream.getvalue()
