"""Graph and collection figures: the quickstart's graph at 3 and 100 epochs, then prov2dot, Graphviz and the
collection on a synthetic experiment.

    python benchmarks/graphs.py [--series 50] [--versions 100] [--ranks 8] [--epochs 3,100]

First, examples/quickstart.py is run for each of ``--epochs`` and its graph drawn
as the UI and ``prov4ml graph`` draw it (folded) and in full (``--full``): nodes,
edges, and the SVG's width x height in points. Then the synthetic documents,
which have the shape of prov4ml's own (tests/conftest_graphs.py builds them):
per rank, ``--series`` metric series, a chain of ``--versions`` model
versions, 20 parameters. Each time is the best of three.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest_graphs import synthetic_run, write_experiment  # noqa: E402

from _timing import best_of  # noqa: E402
from prov4ml import prov2dot, prov_collection  # noqa: E402


def nodes_in(dot: Path) -> int:
    return sum(1 for line in dot.read_text().splitlines() if line[:1] == "n" and line[1:2].isdigit() and "->" not in line)


def svg_figures(dot_text: str) -> str:
    """``N nodes, E edges, W x H pt (ratio)`` of a DOT graph as Graphviz lays it out."""
    svg = subprocess.run(["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, check=True).stdout
    width, height = (float(v) for v in re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    nodes, edges = svg.count('class="node"'), svg.count('class="edge"')
    return f"{nodes:4d} nodes {edges:4d} edges  {width:6.0f} x {height:5.0f} pt  (width/height {width / height:.2f})"


def quickstart_graphs(tmp: Path, epochs: list) -> None:
    """The quickstart's graph at each number of epochs: folded (the default) and in full."""
    from prov.model import ProvDocument

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for n in epochs:
        out = tmp / f"quickstart{n}"
        subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--out", str(out), "--epochs", str(n)],
                       env=env, check=True, capture_output=True)
        doc = ProvDocument.deserialize(str(out / "quickstart" / "run_0" / "prov_rank0.json"))
        for label, kw in (("folded", {}), ("full", {"fold": False}), ("folded, titles only", {"show_attributes": False})):
            print(f"quickstart, {n:3d} epochs, {label:20s} {svg_figures(prov2dot.prov_to_dot(doc, **kw).to_string())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--epochs", default="3,100", help="the quickstart's epochs to draw, comma-separated")
    args = parser.parse_args()
    has_dot = shutil.which("dot") is not None

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if has_dot:
            quickstart_graphs(tmp, [int(n) for n in args.epochs.split(",") if n])
        exp = write_experiment(tmp, "bench", runs=1, ranks=args.ranks, n_series=args.series,
                               n_versions=args.versions, n_params=20)
        rank0 = exp / "run_0" / "prov_rank0.json"
        records = len(synthetic_run("bench", 0, 0, n_series=args.series, n_versions=args.versions, n_params=20).records)
        print(f"synthetic run: {args.series} metric series, {args.versions} model versions, {args.ranks} ranks; "
              f"{records} records and {rank0.stat().st_size / 1024:.0f} KiB per rank document")

        def draw(label: str, source: Path) -> None:
            """prov2dot of ``source`` and, with Graphviz, its SVG rendering, timed."""
            dot = source.with_suffix(".dot")
            t = best_of(lambda: prov2dot.convert(source, dot))
            print(f"prov2dot, {label:32s}{t:7.3f} s   {nodes_in(dot)} nodes")
            if has_dot:
                svg = str(source.with_suffix(".svg"))
                t = best_of(lambda: subprocess.run(["dot", "-Tsvg", "-o", svg, str(dot)], check=True), 1)
                print(f"dot -Tsvg, {label:31s}{t:7.3f} s")

        draw("one rank", rank0)

        out = tmp / "out"
        t = best_of(lambda: prov_collection.create_collection(exp, out))
        collection = prov_collection.collection_path(exp, out)
        print(f"collection of {args.ranks} ranks                     {t:7.3f} s   "
              f"{collection.stat().st_size / 1024:.0f} KiB")
        draw("the collection", collection)

        big = tmp / "big.json"
        big.write_text(synthetic_run("bench", n_series=200, n_versions=1000, n_params=50).serialize(format="json"))
        draw("1,000 versions + 200 series", big)
        if not has_dot:
            print("(Graphviz `dot` not found: rendering times skipped)")


if __name__ == "__main__":
    main()
