"""The provenance graph of a run as inline SVG: :func:`prov4ml.prov2dot.prov_to_dot`, then Graphviz ``dot``.

Model versions and contents are folded into one node each unless ``fold`` is
off (the graph page's "full detail" link). Big runs are drawn collapsed: elements of one kind beyond ``per_kind`` become
one summary node (prov2dot's rule), and above ``ATTRIBUTES_UP_TO`` nodes only
titles are drawn. The SVG of a document is cached until the document changes.
"""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path
from typing import Dict, Tuple

from ..provenance import files
from ..provenance.svg import TIMEOUT_S, dot_executable
from ..exceptions import Prov4MLError
from ..provenance.dot import prov_to_dot

__all__ = ["render_svg", "PER_KIND", "ATTRIBUTES_UP_TO"]

PER_KIND = 10  # elements of one kind drawn before the rest collapse into one node
ATTRIBUTES_UP_TO = 120  # nodes; past that the graph draws titles only

_cache: Dict[Tuple, str] = {}
_lock = threading.Lock()
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_SIZE = re.compile(r'(<svg\b[^>]*?)\s(width|height)="[^"]*"')


def render_svg(prov_json: Path, per_kind: int = PER_KIND, attributes: bool = True, fold: bool = True) -> str:
    """The ``<svg>`` element (no XML prolog, no fixed size: it fills its box) of the document ``prov_json``;
    ``fold``: each model's versions as one node (prov2dot's ``fold``)."""
    st = prov_json.stat()
    key = (str(prov_json), st.st_mtime_ns, st.st_size, per_kind, attributes, fold)
    with _lock:
        if key in _cache:
            return _cache[key]
    document = files.read_prov(prov_json)
    dot = prov_to_dot(document, show_attributes=attributes, max_per_kind=per_kind, attribute_node_limit=ATTRIBUTES_UP_TO,
                      fold=fold)
    try:
        proc = subprocess.run([dot_executable(), "-Tsvg"], input=dot.to_string(), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Prov4MLError(f"Graphviz took more than {TIMEOUT_S:.0f} s on {prov_json}; draw fewer nodes per kind") from None
    if proc.returncode != 0:
        raise Prov4MLError(f"Graphviz could not draw {prov_json}: {' '.join(proc.stderr.split())[:300]}")
    svg = _PROLOG.sub("", proc.stdout, count=1)
    for _ in range(2):
        svg = _SIZE.sub(r"\1", svg, count=1)
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = svg
    return svg
