"""DOT graphs as SVG pictures, with Graphviz's ``dot``.

    python -m prov4ml.dot2svg --dot prov_rank0.dot --output prov_rank0.svg

``dot`` is a program, not a Python package: install Graphviz with
``apt-get install graphviz``, ``brew install graphviz`` or
``conda install graphviz``. The SVG is written next to its final name and
renamed into place, so a failed or interrupted rendering leaves no half file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Union

from .. import _commands
from . import files
from ..exceptions import MissingDependencyError, Prov4MLError, ProvFileError

__all__ = ["convert", "main", "INSTALL_HINT", "TIMEOUT_S"]

INSTALL_HINT = "install Graphviz: apt-get install graphviz / brew install graphviz / conda install graphviz"
TIMEOUT_S = 600.0

PathLike = Union[str, "os.PathLike[str]"]


def dot_executable() -> str:
    """The path of Graphviz's ``dot``, or :class:`MissingDependencyError` saying how to install it."""
    found = shutil.which("dot")
    if found is None:
        raise MissingDependencyError(f"the SVG needs Graphviz's `dot` program, which is not on PATH; {INSTALL_HINT}")
    return found


def convert(dot: PathLike, output: PathLike) -> Path:
    """Render the DOT file ``dot`` to the SVG file ``output`` (atomically); returns ``output``."""
    dot, output = Path(dot), Path(output)
    if not dot.is_file():
        what = "is a directory" if dot.is_dir() else "no such file"
        raise ProvFileError(f"{dot}: {what}; give a DOT file (make one with python -m prov4ml.prov2dot)")
    if dot.stat().st_size == 0:
        raise ProvFileError(f"{dot} is empty; make it again with python -m prov4ml.prov2dot")
    if output.is_dir():
        raise ProvFileError(f"the output {output} is a directory; give a file name")
    exe = dot_executable()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    except OSError as exc:
        raise ProvFileError(f"cannot write {output}: {exc.strerror or exc}; choose a writable output path") from None
    os.close(fd)
    try:
        try:
            proc = subprocess.run([exe, "-Tsvg", "-o", tmp, str(dot)], capture_output=True, text=True,
                                  timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise Prov4MLError(
                f"Graphviz took more than {TIMEOUT_S:.0f} s on {dot}; draw a smaller graph "
                "(python -m prov4ml.prov2dot --no_attributes --max_per_kind 10)"
            ) from None
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            detail = " ".join((proc.stderr or "").split())[:300] or f"exit status {proc.returncode}"
            raise ProvFileError(f"Graphviz could not render {dot}: {detail}; check that it is a DOT file made by prov2dot")
        os.chmod(tmp, files.READABLE)  # mkstemp made it private (0600)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _commands.parser("prov4ml.dot2svg", "Render a DOT graph as SVG with Graphviz.")
    p.add_argument("--dot", required=True, help="the DOT file (made by python -m prov4ml.prov2dot)")
    p.add_argument("--output", required=True, help="the SVG file to write")
    args = p.parse_args(argv)
    return _commands.run("prov4ml.dot2svg", lambda: convert(args.dot, args.output))
