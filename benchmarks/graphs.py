"""Graph and collection figures: prov2dot, Graphviz and the collection on a synthetic experiment.

    python benchmarks/graphs.py [--series 50] [--versions 100] [--ranks 8]

The documents have the shape of prov4ml's own (tests/conftest_graphs.py builds
them): per rank, ``--series`` metric series, a chain of ``--versions`` model
versions, 20 parameters. Each figure is the best of three.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--ranks", type=int, default=8)
    args = parser.parse_args()
    has_dot = shutil.which("dot") is not None

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
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
