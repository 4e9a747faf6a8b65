"""The picture in docs/architecture.md: prov4ml's packages by layer, with the imports between them.

    python docs/img/architecture.py && dot -Tsvg docs/img/architecture.dot -o docs/img/architecture.svg

The edges are read from the source by the same code that checks the layers
(tests/test_architecture.py), so the picture cannot drift from the code.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))
from test_architecture import LAYERS, graph, unit  # noqa: E402

FACADES = LAYERS[-1]  # re-exports for users and the reference's code: left out of the picture


def edges():
    out = set()
    for module, deps in graph().items():
        for dep in deps:
            a, b = unit(module), unit(dep)
            if a != b and not {a, b} & FACADES:
                out.add((a, b))
    return out


def transitive_reduction(pairs):
    """Only the imports that no longer path implies: the picture stays readable."""
    reach = {}
    for a, b in pairs:
        reach.setdefault(a, set()).add(b)

    def reachable(start, skip):
        seen, todo = set(), [n for n in reach.get(start, ()) if (start, n) != skip]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(reach.get(n, ()))
        return seen

    return {(a, b) for a, b in pairs if b not in reachable(a, (a, b))}


def main() -> None:
    lines = ["digraph architecture {", '  rankdir=BT; node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica", fontsize=11]; edge [color="#8899aa", arrowsize=0.6];']
    for i, layer in enumerate(LAYERS[:-1]):
        names = " ".join(f'"{n}"' for n in sorted(layer))
        lines.append(f"  {{ rank=same; {names} }}  // layer {i}")
    for a, b in sorted(transitive_reduction(edges())):
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    (HERE / "architecture.dot").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
