"""A PROV-JSON document as PROV-N, PROV-XML, Turtle, RDF/XML or TriG (the format: --format, else OUTPUT's suffix).

SOURCE is a PROV-JSON file (a collection too: write it as TriG), a run
(a run of several ranks: --rank K), or Turtle, RDF/XML or TriG that convert wrote
(.ttl, .rdf, .trig), read back as the document it came from. PROV-XML (.xml) needs the xml extra;
Turtle, RDF/XML (.rdf) and TriG the rdf extra. The path written is printed.
"""

from __future__ import annotations

import argparse

from ._documents import one_document
from ._output import busy
from ..runs import DEFAULT_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..provenance.convert import _known

    parser.add_argument("source", metavar="SOURCE", help=f"a PROV-JSON (or .ttl, .rdf, .trig) file, a run directory or EXPERIMENT/run_N under ./{DEFAULT_DIR}")
    parser.add_argument("output", metavar="OUTPUT", help="the file to write; its suffix gives the format")
    parser.add_argument("--format", help=f"override the suffix; {_known()}")
    parser.add_argument("--rank", type=int, metavar="K", help="rank K's document of a run of several ranks")


def run(args: argparse.Namespace) -> int:
    from ..provenance.convert import convert, format_for

    format_for(args.output, args.format)  # a bad format costs nothing
    source = one_document(args.source, args.rank, "convert converts")
    with busy(f"converting {source}"):
        print(convert(source, args.output, args.format))
    return 0
