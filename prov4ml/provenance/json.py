"""PROV-JSON text of a document, fast enough for the refreshes during a run and for runs with many series."""

from __future__ import annotations

import io
import itertools
import json
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, Optional, Union

from .._fs import atomic_write

__all__ = ["to_json", "document_json", "write_document", "xml_compatible"]

_CHUNK = 2000  # records per write


def to_json(document, indent: Optional[int] = 1) -> str:
    """PROV-JSON text. The JSON serializer is used directly: ``ProvDocument.serialize``
    imports every serializer (XML, RDF), which costs ~0.2 s. ``indent=None`` is
    several times faster (json's C encoder): the refreshes during a run use it."""
    from prov.serializers.provjson import ProvJSONSerializer

    stream = io.StringIO()
    ProvJSONSerializer(document).serialize(stream, indent=indent)
    return stream.getvalue()


def document_json(snapshot, indent: Optional[int] = 1) -> str:
    """The PROV-JSON text of a rank's snapshot: the document ``build_document`` makes, written as :func:`write_document` does."""
    return "".join(_pieces(snapshot, indent))


def write_document(path: Union[str, Path], snapshot, indent: Optional[int] = 1, fsync: bool = False,
                   check: Optional[Callable[[], None]] = None) -> Path:
    """Write the PROV-JSON of a rank's snapshot to ``path`` atomically, streamed.

    The series' records (a run may have 100,000 series) are written as they are made, never held as
    ``prov`` objects or all at once; the rest of the document is built with ``prov`` as usual.
    ``indent=1`` writes each record on a line of its own (json's C encoder, fast); ``None`` writes one line.
    ``check`` is called between batches of records: it may raise to stop (nothing is written)."""

    def write(fh: IO[bytes]) -> None:
        for piece in _pieces(snapshot, indent):
            fh.write(piece.encode("utf-8"))
            if check is not None:
                check()

    return atomic_write(path, write, fsync=fsync)


def _pieces(snapshot, indent: Optional[int]) -> Iterator[str]:
    """The document's text in pieces: each record kind of the ``prov`` part, then the series' records of that kind,
    a batch of records at a time."""
    from prov.serializers.provjson import encode_json_document

    from .builder import SERIES_KINDS, Builder

    builder = Builder(snapshot)
    container: Dict[str, Dict[str, Any]] = encode_json_document(builder.build(series=False))
    anonymous = sum(k.startswith("_:") for kind, records in container.items() if kind != "prefix" for k in records)
    kinds = list(container) + [k for k in SERIES_KINDS if k not in container]
    dumps, quote = json.dumps, encode_basestring_ascii
    inner, outer, between = ("\n  ", "\n ", ",") if indent is not None else ("", "", ", ")
    yield "{"
    first_kind = True
    for kind in kinds:
        records = itertools.chain(((k, dumps(v)) for k, v in container.get(kind, {}).items()),
                                  builder.series_records(kind))
        first = True
        while True:
            batch = []
            for ident, text in itertools.islice(records, _CHUNK):
                if ident is None:
                    anonymous += 1
                    ident = f"_:id{anonymous}"
                batch.append(f"{inner}{quote(ident)}: {text}")
            if not batch:
                break
            if first:
                yield f"{'' if first_kind else between}{outer}{dumps(kind)}: {{"
            yield f"{'' if first else between}{between.join(batch)}"
            first = first_kind = False
        if not first:
            yield f"{outer}}}"
    yield "\n}" if indent is not None else "}"


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
