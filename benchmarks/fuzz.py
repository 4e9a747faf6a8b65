"""Fuzz every public recording call and print the figures: calls, rejections by type, crashes,
hangs, points lost.

    python benchmarks/fuzz.py [--examples 20000] [--seed 1]

The strategies and the oracle are those of the test suite (tests/fuzzing.py),
which runs 2,000 examples; this runs as many as asked, with a random seed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import fuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1, help="0: the suite's fixed examples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = fuzz(Path(tmp) / "prov", args.examples, seed=args.seed)
    for line in figures.lines():
        print(line)
    return 1 if figures.crashes or figures.points_lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
