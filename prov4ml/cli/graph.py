"""The provenance graph of a run as Graphviz DOT, and as SVG with --svg (needs Graphviz's `dot`).

By default each rank's graph is written beside its document (prov_rank<k>.dot,
.svg); -o names the output of a single document (a run of one rank, --rank K,
or a PROV-JSON file such as a collection). The paths written are printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..exceptions import InvalidValueError
from ._documents import documents, one_document
from ._output import busy
from ..runs import DEFAULT_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help=f"a run directory, EXPERIMENT/run_N under ./{DEFAULT_DIR}, or a PROV-JSON file")
    parser.add_argument("--svg", action="store_true", help="render the DOT graph to SVG too (implied by -o FILE.svg)")
    parser.add_argument("-o", "--output", metavar="OUT", help="the file to write (.dot, or .svg with --svg)")
    parser.add_argument("--rank", type=int, metavar="K", help="only rank K's document")
    parser.add_argument("--no-attributes", action="store_true", help="titles only: a smaller, quicker picture")
    parser.add_argument("--max-per-kind", type=int, default=20, metavar="N",
                        help="elements of one kind drawn before the rest fold into one summary node (default 20)")
    parser.add_argument("--full", action="store_true",
                        help="every model version and content entity as its own node (default: one node per model's versions)")


def run(args: argparse.Namespace) -> int:
    from ..provenance import svg as dot2svg, dot as prov2dot

    svg = args.svg or (args.output is not None and args.output.lower().endswith(".svg"))
    if args.output is not None:
        targets = {one_document(args.run, args.rank, "-o draws"): Path(args.output)}
    else:
        targets = {doc: doc.with_suffix(".svg" if svg else ".dot") for doc in documents(args.run, args.rank).values()}
    if svg:
        dot2svg.dot_executable()  # before any work: say how to install Graphviz
    for doc, out in targets.items():
        if not svg and out.suffix.lower() == ".svg":
            raise InvalidValueError(f"{out} is an SVG name; add --svg, or name a .dot file")
        dot = out.with_suffix(".dot") if svg else out
        with busy(f"drawing {doc}"):
            prov2dot.convert(doc, dot, show_attributes=not args.no_attributes, max_per_kind=args.max_per_kind,
                             fold=not args.full)
            print(dot)
            if svg:
                print(dot2svg.convert(dot, out))
    return 0
