"""PROV-JSON to the other W3C PROV serialisations.

    python -m prov4ml.convert --prov_json prov_rank0.json --output prov_rank0.ttl [--format rdf]

========  ==========================  ===============  ====================================
format    suffix                      extra            what
========  ==========================  ===============  ====================================
json      ``.json``                   (none)           PROV-JSON, re-indented
provn     ``.provn``                  (none)           PROV-N, the human-readable notation
xml       ``.xml``, ``.provx``        ``prov4ml[xml]`` PROV-XML (lxml)
rdf, ttl  ``.ttl``                    ``prov4ml[rdf]`` PROV-O as Turtle (rdflib)
rdfxml    ``.rdf``                    ``prov4ml[rdf]`` PROV-O as RDF/XML (not PROV-XML: that is ``.xml``)
trig      ``.trig``                   ``prov4ml[rdf]`` PROV-O as TriG: a named graph per bundle
========  ==========================  ===============  ====================================

The RDF formats hold, beside PROV-O's qualified forms, the direct triples
they imply (``prov:wasGeneratedBy``, ``prov:used``, ``prov:wasDerivedFrom``,
``prov:wasRevisionOf``...; see :mod:`prov4ml.provenance.rdf`), so plain SPARQL
finds them; :func:`prov4ml.provenance.rdf.read` (and ``convert`` given a ``.ttl``,
``.rdf`` or ``.trig`` file) reads them back through ``prov`` as the document that was
written. In PROV-XML a location whose IRI does not fit an ``xs:QName``
(``rundir:metrics/loss.csv``) is written as the ``xsd:anyURI`` it stands for.

The format is the ``format`` argument, else the output's suffix. Turtle and RDF/XML have no
named graphs, so a document with bundles (a collection) must go to TriG: the
error says so rather than merging the bundles silently. One registry,
``FORMATS``, maps each format to its writer; an unknown format is an error
listing the known ones.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from .. import _commands
from . import files
from .._optional import require
from ..exceptions import InvalidValueError

__all__ = ["convert", "main", "FORMATS", "Format", "format_for"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Format:
    """How one serialisation is written: its suffixes, the optional module it needs, the writer."""

    name: str
    suffixes: Tuple[str, ...]
    write: Callable[[Any], str]
    needs: Optional[Tuple[str, str]] = None   # (module, extra)
    description: str = ""


def _json(doc: Any) -> str:
    return doc.serialize(format="json", indent=1)


def _provn(doc: Any) -> str:
    return doc.serialize(format="provn")


def _xml(doc: Any) -> str:
    import json

    from prov.model import ProvDocument

    from .json import xml_compatible

    data = xml_compatible(json.loads(doc.serialize(format="json")))
    _check_xml_text(data, "PROV-XML")
    return ProvDocument.deserialize(content=json.dumps(data), format="json").serialize(format="xml")


#: What XML 1.0 cannot hold: control characters but tab, newline and carriage return, surrogates, U+FFFE/U+FFFF
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _check_xml_text(node: Any, what: str) -> None:
    """Raise InvalidValueError naming the first text (a key or a value) ``what`` (XML) cannot hold, and the way out."""
    texts = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in texts:
        for text in (key, value):
            found = _NOT_XML.search(text) if isinstance(text, str) else None
            if found:
                raise InvalidValueError(
                    f"{what} cannot hold the character U+{ord(found.group()):04X} of {text!r} (XML 1.0 has no "
                    "control characters but tab, newline and carriage return); convert to PROV-N (.provn), "
                    "Turtle (.ttl) or PROV-JSON, which can, or log the name without it")
        _check_xml_text(value, what)


_RDF_NAMES = {"turtle": "Turtle", "xml": "RDF/XML", "trig": "TriG"}


def _rdf(rdf_format: str) -> Callable[[Any], str]:
    def write(doc: Any) -> str:
        if rdf_format != "trig" and list(doc.bundles):
            raise InvalidValueError(
                f"the document has {len(list(doc.bundles))} bundles and {_RDF_NAMES[rdf_format]} cannot keep them apart; "
                "write TriG instead (--format trig, or an output ending in .trig)"
            )
        if rdf_format == "xml":  # RDF/XML is XML: the same characters are out
            import json

            _check_xml_text(json.loads(doc.serialize(format="json")), "RDF/XML")
        from .rdf import graph

        data = graph(doc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return data.serialize(format=rdf_format)

    return write


FORMATS: Dict[str, Format] = {
    "json": Format("json", (".json",), _json, None, "PROV-JSON"),
    "provn": Format("provn", (".provn",), _provn, None, "PROV-N"),
    "xml": Format("xml", (".xml", ".provx"), _xml, ("lxml", "xml"), "PROV-XML"),
    "rdf": Format("rdf", (".ttl",), _rdf("turtle"), ("rdflib", "rdf"), "PROV-O in Turtle"),
    "rdfxml": Format("rdfxml", (".rdf",), _rdf("xml"), ("rdflib", "rdf"), "PROV-O in RDF/XML"),
    "trig": Format("trig", (".trig",), _rdf("trig"), ("rdflib", "rdf"), "PROV-O in TriG"),
}
ALIASES: Dict[str, str] = {"ttl": "rdf", "turtle": "rdf", "prov-n": "provn", "prov-xml": "xml", "prov-json": "json"}


def _known() -> str:
    names = sorted(set(FORMATS) | set(ALIASES))
    suffixes = sorted(s for f in FORMATS.values() for s in f.suffixes)
    return f"known formats: {', '.join(names)} (suffixes {', '.join(suffixes)})"


def format_for(output: PathLike, format: Optional[str] = None) -> Format:
    """The :class:`Format` named by ``format``, else by ``output``'s suffix."""
    if format is not None:
        key = str(format).lower().lstrip(".")
        key = ALIASES.get(key, key)
        if key not in FORMATS:
            raise InvalidValueError(f"unknown format {format!r}; {_known()}")
        return FORMATS[key]
    suffix = Path(output).suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    raise InvalidValueError(
        f"cannot tell the format of {Path(output).name!r} from its suffix; pass --format, {_known()}"
    )


def convert(prov_json: PathLike, output: PathLike, format: Optional[str] = None) -> Path:
    """Write the PROV-JSON file ``prov_json`` to ``output`` in ``format`` (atomically); returns ``output``."""
    fmt = format_for(output, format)  # before reading: a bad format costs nothing
    if fmt.needs is not None:
        module, extra = fmt.needs
        require(module, extra, f"writing {fmt.description}")
    document = files.read_prov(prov_json)
    return files.write_output(output, fmt.write(document))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _commands.parser("prov4ml.convert", "Convert a PROV-JSON document to PROV-N, PROV-XML, Turtle or TriG.")
    p.add_argument("--prov_json", required=True, help="the PROV-JSON file")
    p.add_argument("--output", required=True, help="the file to write; its suffix gives the format")
    p.add_argument("--format", default=None, help=f"override the suffix; {_known()}")
    args = p.parse_args(argv)
    return _commands.run("prov4ml.convert", lambda: convert(args.prov_json, args.output, args.format))
