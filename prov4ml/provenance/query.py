"""SPARQL over an experiment's provenance.

    python -m prov4ml.query prov/mnist "SELECT ?run ?status WHERE { ?run provml:status ?status }"

Every run document of the experiment (``prov_rank<k>.json`` of every run,
collections left out) is converted to RDF with the direct triples
(:mod:`prov4ml.provenance.rdf`) and loaded into one embedded store, its default
graph: pyoxigraph (``pip install "prov4ml[query]"``), else rdflib's own SPARQL
engine. The prefixes ``prov``, ``mls``, ``provml``, ``xsd``, ``rdf``, ``rdfs``
and ``dcterms`` are declared for the query unless it declares them itself.
docs/prov-mapping.md lists the questions a researcher asks, as queries.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

from .. import _commands
from . import files
from .._optional import require
from ..exceptions import InvalidValueError

__all__ = ["query", "load", "PREFIXES", "main", "format_table"]

PathLike = Union[str, "os.PathLike[str]"]
XSD = "http://www.w3.org/2001/XMLSchema#"
PREFIXES = {
    "prov": "http://www.w3.org/ns/prov#",
    "mls": "http://www.w3.org/ns/mls#",
    "provml": "https://prov4ml.github.io/ns/provml#",
    "xsd": XSD,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "dcterms": "http://purl.org/dc/terms/",
}
_INTEGERS = {XSD + t for t in ("int", "integer", "long", "short", "byte", "nonNegativeInteger", "unsignedInt", "unsignedLong")}
_FLOATS = {XSD + t for t in ("double", "float", "decimal")}


def _engine() -> str:
    try:
        import pyoxigraph  # noqa: F401

        return "pyoxigraph"
    except ImportError:
        require("rdflib", "query", "answering SPARQL queries (pyoxigraph, or rdflib as a fallback)")
        return "rdflib"


def _ntriples(experiment_dir: PathLike) -> List[str]:
    from .collection import find_documents
    from .rdf import graph

    out = []
    for path in find_documents(experiment_dir):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            out.append(graph(files.read_prov(path)).serialize(format="nt"))
    return out


def load(experiment_dir: PathLike, engine: Optional[str] = None) -> Any:
    """A store (pyoxigraph ``Store`` or rdflib ``Graph``) holding every run document under ``experiment_dir``."""
    engine = engine or _engine()
    documents = _ntriples(experiment_dir)
    if engine == "pyoxigraph":
        import pyoxigraph

        store = pyoxigraph.Store()
        for text in documents:
            store.load(text, format=pyoxigraph.RdfFormat.N_TRIPLES)
        return store
    import rdflib

    g = rdflib.Graph()
    for text in documents:
        g.parse(data=text, format="nt")
    return g


def _with_prefixes(sparql: str) -> str:
    lowered = sparql.lower()
    missing = [f"PREFIX {p}: <{iri}>" for p, iri in PREFIXES.items() if f"prefix {p}:" not in lowered]
    return "\n".join(missing + [sparql])


def _python(term: Any) -> Any:
    """A result term as a Python value: IRIs and strings as text, typed literals as numbers, booleans, datetimes."""
    if term is None:
        return None
    datatype = getattr(term, "datatype", None)
    if datatype is None:  # an IRI or a blank node
        return str(getattr(term, "value", term))
    lexical = str(term.value) if hasattr(term, "value") and not hasattr(term, "toPython") else str(term)
    kind = str(getattr(datatype, "value", datatype))
    try:
        if kind in _INTEGERS:
            return int(lexical)
        if kind in _FLOATS:
            return float(lexical.replace("INF", "inf"))
        if kind == XSD + "boolean":
            return lexical in ("true", "1")
        if kind == XSD + "dateTime":
            return datetime.fromisoformat(lexical.replace("Z", "+00:00"))
    except ValueError:
        pass
    return lexical


def query(experiment_dir: PathLike, sparql: str, engine: Optional[str] = None) -> Tuple[List[str], List[Tuple[Any, ...]]]:
    """Answer a SPARQL SELECT (or ASK) over the experiment's documents: ``(columns, rows)``, values as Python values."""
    if not isinstance(sparql, str) or not sparql.strip():
        raise InvalidValueError('give a SPARQL query, e.g. "SELECT ?run ?status WHERE { ?run provml:status ?status }"')
    engine = engine or _engine()
    store = load(experiment_dir, engine)
    text = _with_prefixes(sparql)
    try:
        if engine == "pyoxigraph":
            return _oxigraph_answer(store.query(text))
        return _rdflib_answer(store.query(text))
    except SyntaxError as exc:
        raise InvalidValueError(f"the SPARQL query does not parse: {exc}") from None
    except Exception as exc:
        if type(exc).__name__ in ("ParseException", "ParseSyntaxException"):
            raise InvalidValueError(f"the SPARQL query does not parse: {exc}") from None
        raise


def _oxigraph_answer(result: Any) -> Tuple[List[str], List[Tuple[Any, ...]]]:
    import pyoxigraph

    if isinstance(result, pyoxigraph.QueryBoolean):
        return ["ask"], [(bool(result),)]
    if isinstance(result, pyoxigraph.QueryTriples):
        return ["subject", "predicate", "object"], [tuple(_python(t) for t in (q.subject, q.predicate, q.object)) for q in result]
    columns = [v.value for v in result.variables]
    return columns, [tuple(_python(s[c]) for c in columns) for s in result]


def _rdflib_answer(result: Any) -> Tuple[List[str], List[Tuple[Any, ...]]]:
    if result.type == "ASK":
        return ["ask"], [(bool(result.askAnswer),)]
    if result.type == "CONSTRUCT":
        return ["subject", "predicate", "object"], [tuple(_python(t) for t in triple) for triple in result]
    columns = [str(v) for v in result.vars]
    return columns, [tuple(_python(row[c]) for c in columns) for row in result]


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: a header, a rule, one line per row."""
    text = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n({len(rows)} row{'s' if len(rows) != 1 else ''})\n"


def _csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``prov4ml query`` (also ``python -m prov4ml.query``)."""
    p.add_argument("experiment_dir", help="the experiment directory (<provenance_save_dir>/<experiment_name>) or a run directory")
    p.add_argument("sparql", help="the query; prefixes prov, mls, provml, xsd, rdf, rdfs, dcterms are declared for you")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def answer(args: argparse.Namespace) -> None:
    """Print the answer to ``args.sparql`` over ``args.experiment_dir``."""
    columns, rows = query(Path(args.experiment_dir), args.sparql)
    print((_csv if args.csv else format_table)(columns, rows), end="")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _commands.parser("prov4ml.query", "Answer a SPARQL query over an experiment's provenance.")
    add_arguments(p)
    args = p.parse_args(argv)
    return _commands.run("prov4ml.query", lambda: answer(args))
