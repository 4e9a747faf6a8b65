"""PROV documents as Graphviz DOT graphs that still open after a 1,000-epoch run.

    python -m prov4ml.prov2dot --prov_json prov_rank0.json --output prov_rank0.dot

The drawing rules (also in docs/graphs.md):

* Shapes and colours are PROV's own (those of ``prov.dot``): entities are
  yellow ellipses, activities blue boxes, agents orange houses; each bundle of
  a collection document is a framed cluster (an element declared in several
  bundles, like the user, is drawn once, outside them). An element that a
  relation names but no record declares is grey and dashed.
* A node's title is its ``prov:label``, else the local part of its
  identifier, shortened to ``max_label`` (40) characters, keeping the tail of
  a path (``…/model_version/3/net``). Its first ``max_attributes`` (8)
  attributes follow: the type, then those named in ``FIRST_ATTRIBUTES``
  (value, count, min, max, last, ...), then the others in document order, then
  "… N more"; long values are cut in the middle. The full identifier is the
  node's tooltip.
* Model versions (checkpoints included) and the content entities files
  specialise are folded (``fold=True``, the default; ``FOLDED_KINDS``): each
  model's versions become ONE node "model versions ×N" naming the first and
  the last, the contents one node "contents ×N"; ``fold=False`` draws them.
* Elements of one kind (metric series, model versions, parameters, datasets,
  artifacts, contexts, ... see ``KINDS``) in one bundle are capped at
  ``max_per_kind`` (20): the first 10 and the last 10 are drawn, the ones
  between become ONE dashed summary node "… 980 more model versions".
  Relations to and from them are redrawn to the summary node, once, labelled
  with their count ("wasGeneratedBy ×980").
* Above ``attribute_node_limit`` (300) nodes the attributes are dropped and
  only the titles are drawn, so Graphviz lays out any document in seconds.
* Edges point from the effect to its cause, as in PROV, labelled with the
  relation's name; a plan of an association is a dashed "hadPlan" edge.
* The layout fits a screen: leaves hanging off one node (a run's parameters,
  a context's metric series) are staggered over up to ``STAGGER`` ranks, as
  Graphviz's ``unflatten`` does, so a run with many of them is not a strip.

Styles are data (``ELEMENT_STYLE``, ``RELATION_STYLE``, ``KINDS``), and
``prov_to_dot`` is the one entry point; ``convert`` and ``main`` wrap it.
"""

from __future__ import annotations

import html
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import pydot
from prov.constants import PROV_LABEL, PROV_TYPE
from prov.model import Literal, ProvElement

from .. import _commands
from . import files
from ..exceptions import InvalidValueError

__all__ = ["prov_to_dot", "convert", "main", "ELEMENT_STYLE", "RELATION_STYLE", "KINDS", "FIRST_ATTRIBUTES",
           "FOLDED_KINDS", "STAGGER", "LEAVES_PER_RANK"]

_PROV = "http://www.w3.org/ns/prov#"
_MLS = "http://www.w3.org/ns/mls#"
_PROVML = "https://prov4ml.github.io/ns/provml#"

# --------------------------------------------------------------------- styles
# Keyed by the PROV record type's URI (the keys of prov's own DOT_PROV_STYLE).
ELEMENT_STYLE: Dict[str, Dict[str, str]] = {
    _PROV + "Entity": {"shape": "ellipse", "style": "filled", "fillcolor": "#FFFC87", "color": "#808080"},
    _PROV + "Activity": {"shape": "box", "style": "filled", "fillcolor": "#9FB1FC", "color": "#0000FF"},
    _PROV + "Agent": {"shape": "house", "style": "filled", "fillcolor": "#FED37F", "color": "#808080"},
}
SUMMARY_STYLE: Dict[str, str] = {"style": "filled,dashed", "penwidth": "1.5"}
INFERRED_STYLE: Dict[str, str] = {"shape": "ellipse", "style": "dashed", "color": "#A0A0A0", "fontcolor": "#606060"}
BUNDLE_STYLE: Dict[str, str] = {"style": "filled,rounded", "fillcolor": "aliceblue", "color": "#7090B0"}
_EDGE = {"fontsize": "10"}
_AGENT_EDGE = {**_EDGE, "color": "#E0A030", "fontcolor": "#B07000"}
RELATION_STYLE: Dict[str, Dict[str, str]] = {
    _PROV + "Generation": {**_EDGE, "label": "wasGeneratedBy", "color": "darkgreen", "fontcolor": "darkgreen"},
    _PROV + "Usage": {**_EDGE, "label": "used", "color": "red4", "fontcolor": "red"},
    _PROV + "Communication": {**_EDGE, "label": "wasInformedBy"},
    _PROV + "Start": {**_EDGE, "label": "wasStartedBy"},
    _PROV + "End": {**_EDGE, "label": "wasEndedBy"},
    _PROV + "Invalidation": {**_EDGE, "label": "wasInvalidatedBy"},
    _PROV + "Derivation": {**_EDGE, "label": "wasDerivedFrom"},
    _PROV + "Attribution": {**_AGENT_EDGE, "label": "wasAttributedTo"},
    _PROV + "Association": {**_AGENT_EDGE, "label": "wasAssociatedWith"},
    _PROV + "Delegation": {**_AGENT_EDGE, "label": "actedOnBehalfOf"},
    _PROV + "Influence": {**_EDGE, "label": "wasInfluencedBy", "color": "grey"},
    _PROV + "Alternate": {**_EDGE, "label": "alternateOf"},
    _PROV + "Specialization": {**_EDGE, "label": "specializationOf"},
    _PROV + "Mention": {**_EDGE, "label": "mentionOf"},
    _PROV + "Membership": {**_EDGE, "label": "hadMember"},
}
PLAN_STYLE: Dict[str, str] = {**_EDGE, "label": "hadPlan", "style": "dashed", "color": "#E0A030"}

# What a group of elements is called in a summary node, by prov:type; the first
# type of this list an element has decides its kind (model versions are also
# artifacts and models, so they come first).
KINDS: Sequence[Tuple[str, str]] = (
    (_PROVML + "ModelVersion", "model versions"),
    (_PROVML + "Metric", "metric series"),
    (_MLS + "HyperParameterSetting", "parameters"),
    (_MLS + "Dataset", "datasets"),
    (_MLS + "Model", "models"),
    (_PROV + "Plan", "source files"),
    (_PROVML + "Artifact", "artifacts"),
    (_PROVML + "ProvenanceDocument", "documents"),
    (_PROV + "Bundle", "documents"),
    (_MLS + "Run", "runs"),
    (_PROVML + "LearningStage", "contexts"),
    (_PROVML + "Epoch", "epochs"),
    (_PROVML + "Content", "contents"),
)
#: Kinds drawn as one node per bundle (per model, for model versions) when folding: their detail is
#: a chain or a set that tells nothing at a glance.
FOLDED_KINDS: Tuple[str, ...] = ("model versions", "contents")
#: At most this many ranks to stagger the leaves of one node over, with about ``LEAVES_PER_RANK`` per rank.
STAGGER = 2
LEAVES_PER_RANK = 8
_KIND_RANK = {uri: i for i, (uri, _noun) in enumerate(KINDS)}
_GENERIC_KIND = {_PROV + "Entity": "entities", _PROV + "Activity": "activities", _PROV + "Agent": "agents"}
# ML-Schema's object properties: links, not rows. A part of a run or context (mls:hasPart) and the
# measure an evaluation is specified by are drawn as edges; the others repeat used / wasGeneratedBy / the plan.
LINK_STYLE: Dict[str, Dict[str, str]] = {
    _MLS + "hasPart": {**_EDGE, "label": "hasPart", "style": "dashed", "color": "#4060C0", "dir": "back", "arrowtail": "odiamond"},
    _MLS + "specifiedBy": {**_EDGE, "label": "specifiedBy", "style": "dashed", "color": "grey"},
}
_LINKS = set(LINK_STYLE) | {_MLS + "hasInput", _MLS + "hasOutput", _MLS + "executes"}
_HIDDEN = {_PROV + "label", _PROV + "type"} | _LINKS  # the title, the first row, and the links
# Attributes with these local names come first (in this order), the rest in document order.
FIRST_ATTRIBUTES: Sequence[str] = (
    "value", "count", "min", "max", "last", "mean", "step", "version", "status", "run_id", "rank",
    "size", "batch_size", "location",
)
_RANK = {name: i for i, name in enumerate(FIRST_ATTRIBUTES)}


# ------------------------------------------------------------------ the model
@dataclass
class _Node:
    name: str                 # DOT node name: n<k>
    record_type: str          # URI of prov:Entity / prov:Activity / prov:Agent
    title: str
    tooltip: str
    rows: List[Tuple[str, str]] = field(default_factory=list)
    hidden_rows: int = 0
    summary: bool = False
    inferred: bool = False


@dataclass
class _Graph:
    nodes: "OrderedDict[str, _Node]" = field(default_factory=OrderedDict)
    clusters: Dict[Any, Tuple[str, List[str]]] = field(default_factory=dict)  # bundle id -> (title, node names)
    edges: "OrderedDict[Tuple[str, str, str], int]" = field(default_factory=OrderedDict)


def prov_to_dot(
    document: Any,
    *,
    show_attributes: bool = True,
    max_attributes: int = 8,
    max_per_kind: int = 20,
    attribute_node_limit: int = 300,
    max_label: int = 40,
    fold: bool = True,
) -> pydot.Dot:
    """The DOT graph of a ``prov.model.ProvDocument`` (or bundle), by the rules of this module.

    ``fold``: draw each model's versions, and the contents, as one node each (``FOLDED_KINDS``).
    """
    for name, value, low in (("max_attributes", max_attributes, 0), ("max_per_kind", max_per_kind, 2),
                             ("attribute_node_limit", attribute_node_limit, 0), ("max_label", max_label, 8)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InvalidValueError(f"{name} must be an integer >= {low}, got {value!r}")
    builder = _Builder(max_attributes if show_attributes else 0, max_per_kind, max_label,
                       FOLDED_KINDS if fold else ())
    graph = builder.build(document)
    if len(graph.nodes) > attribute_node_limit:
        for node in graph.nodes.values():
            node.rows, node.hidden_rows = [], 0
    return _to_pydot(graph)


def convert(prov_json: Union[str, "os.PathLike[str]"], output: Union[str, "os.PathLike[str]"], **kw: Any) -> Path:
    """Read the PROV-JSON file ``prov_json``, write its DOT graph to ``output`` atomically; returns ``output``.

    Keyword arguments go to :func:`prov_to_dot`.
    """
    document = files.read_prov(prov_json)
    text = prov_to_dot(document, **kw).to_string()
    return files.write_output(output, text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _commands.parser("prov4ml.prov2dot", "Draw a PROV-JSON document as a Graphviz DOT graph.")
    p.add_argument("--prov_json", required=True, help="the PROV-JSON file (prov_rank<k>.json or a collection)")
    p.add_argument("--output", required=True, help="the DOT file to write")
    p.add_argument("--no_attributes", action="store_true", help="draw titles only")
    p.add_argument("--max_attributes", type=int, default=8, help="attributes drawn per node (default 8)")
    p.add_argument("--max_per_kind", type=int, default=20,
                   help="elements of one kind drawn before the rest become one summary node (default 20)")
    p.add_argument("--full", action="store_true",
                   help="draw every model version and content entity (default: one node per model's versions)")
    args = p.parse_args(argv)
    return _commands.run("prov4ml.prov2dot", lambda: convert(
        args.prov_json, args.output, show_attributes=not args.no_attributes,
        max_attributes=args.max_attributes, max_per_kind=args.max_per_kind, fold=not args.full,
    ))


# -------------------------------------------------------------- the building
class _Builder:
    def __init__(self, max_attributes: int, max_per_kind: int, max_label: int, fold: Sequence[str] = ()) -> None:
        self.fold = fold
        self.max_attributes = max_attributes
        self.max_per_kind = max_per_kind
        self.max_label = max_label
        self.graph = _Graph()
        self.node_of: Dict[Any, str] = {}   # identifier -> DOT node name (a summary's for collapsed ones)
        self.pairs: set = set()             # (source, target, relation type) already drawn

    def build(self, document: Any) -> _Graph:
        containers = [(None, document)] + [(b.identifier, b) for b in _bundles(document)]
        # An element declared in several bundles (the user, the experiment) is drawn once, outside them.
        first: "OrderedDict[Any, Tuple[Any, Any]]" = OrderedDict()   # identifier -> (container key, record)
        for key, container in containers:
            for record in container.records:
                if isinstance(record, ProvElement):
                    seen = first.get(record.identifier)
                    if seen is None:
                        first[record.identifier] = (key, record)
                    elif seen[0] != key:
                        first[record.identifier] = (None, seen[1])
        groups: "OrderedDict[Tuple[Any, str, str, Any], List[Any]]" = OrderedDict()
        for key, record in first.values():
            rtype = record.get_type().uri
            kind = self._kind(record, rtype)
            model = _attribute(record, "model_name") if kind in self.fold else None
            groups.setdefault((key, rtype, kind, model), []).append(record)
        for (key, rtype, kind, model), records in groups.items():
            cluster = self._cluster(key)
            head = self.max_per_kind - self.max_per_kind // 2
            tail = self.max_per_kind // 2
            if kind in self.fold and len(records) > 1:
                keep, hidden = [], records
            elif len(records) <= self.max_per_kind:
                keep, hidden = records, []
            else:
                keep = records[:head] + records[len(records) - tail:]
                hidden = records[head:len(records) - tail]
            for record in keep:
                self.node_of[record.identifier] = self._element_node(record, rtype, cluster)
            if hidden:
                name = self._summary_node(rtype, kind, hidden, cluster, model, folded=not keep)
                for record in hidden:
                    self.node_of[record.identifier] = name
        for _key, container in containers:
            for record in container.records:
                if not isinstance(record, ProvElement):
                    self._relation(record)
        for _key, record in first.values():
            for attr, value in record.attributes:
                if getattr(attr, "uri", None) in LINK_STYLE and value in self.node_of:
                    self._edge(record.identifier, value, attr.uri)
        return self.graph

    # nodes ----------------------------------------------------------------
    def _kind(self, record: Any, rtype: str) -> str:
        ranks = [_KIND_RANK[uri] for uri in type_uris(record) if uri in _KIND_RANK]
        if ranks:
            return KINDS[min(ranks)][1]
        return _GENERIC_KIND.get(rtype, "elements")

    def _cluster(self, key: Any) -> Any:
        if key is not None and key not in self.graph.clusters:
            self.graph.clusters[key] = (_shorten(_local(key), self.max_label), [])
        return key

    def _add(self, node: _Node, cluster: Any) -> str:
        self.graph.nodes[node.name] = node
        if cluster is not None:
            self.graph.clusters[cluster][1].append(node.name)
        return node.name

    def _new_name(self) -> str:
        return f"n{len(self.graph.nodes) + 1}"

    def _element_node(self, record: Any, rtype: str, cluster: Any) -> str:
        node = _Node(self._new_name(), rtype, self._title(record), str(record.identifier.uri))
        if self.max_attributes:
            rows = [(_local(attr), _value_text(value)) for attr, value in record.attributes
                    if getattr(attr, "uri", str(attr)) not in _HIDDEN]
            rows.sort(key=lambda row: _RANK.get(row[0], len(_RANK)))  # stable: document order otherwise
            types = sorted(_value_text(t) for t in _types(record))
            if types:
                rows.insert(0, ("type", ", ".join(types)))
            node.rows = rows[: self.max_attributes]
            node.hidden_rows = len(rows) - len(node.rows)
        return self._add(node, cluster)

    def _summary_node(self, rtype: str, kind: str, hidden: List[Any], cluster: Any, model: Any = None,
                      folded: bool = False) -> str:
        """One node for ``hidden``: "model versions ×3" when folded, else "… 980 more model versions"."""
        title = f"{kind} ×{len(hidden)}" if folded else f"… {len(hidden)} more {kind}"
        node = _Node(self._new_name(), rtype, title, "", summary=True)
        first, last = self._title(hidden[0]), self._title(hidden[-1])
        node.tooltip = f"{hidden[0].identifier.uri} … {hidden[-1].identifier.uri}"
        if self.max_attributes:
            node.rows = ([("model", _value_text(model))] if model is not None else []) + [("from", first), ("to", last)]
        return self._add(node, cluster)

    def _title(self, record: Any) -> str:
        labels = record.get_attribute(PROV_LABEL)
        text = str(next(iter(labels))) if labels else _local(record.identifier)
        return _shorten(text, self.max_label)

    def _endpoint(self, identifier: Any) -> str:
        name = self.node_of.get(identifier)
        if name is None:  # named by a relation, declared nowhere
            uri = str(getattr(identifier, "uri", identifier))
            node = _Node(self._new_name(), _PROV + "Entity", _shorten(_local(identifier), self.max_label), uri,
                         inferred=True)
            name = self.node_of[identifier] = self._add(node, None)
        return name

    # edges ----------------------------------------------------------------
    def _relation(self, record: Any) -> None:
        rtype = record.get_type().uri
        formal = record.formal_attributes
        if len(formal) < 2 or formal[0][1] is None or formal[1][1] is None:
            return  # e.g. wasStartedBy with a time but no starter: nothing to draw to
        self._edge(formal[0][1], formal[1][1], rtype)
        if rtype == _PROV + "Association" and len(formal) > 2 and formal[2][1] is not None:
            self._edge(formal[0][1], formal[2][1], "hadPlan")

    def _edge(self, src_id: Any, dst_id: Any, rtype: str) -> None:
        if (src_id, dst_id, rtype) in self.pairs:
            return  # the same statement made again, e.g. in two bundles
        self.pairs.add((src_id, dst_id, rtype))
        src, dst = self._endpoint(src_id), self._endpoint(dst_id)
        if src == dst and self.graph.nodes[src].summary:
            return  # a chain inside a collapsed run (v11 wasDerivedFrom v10)
        key = (src, dst, rtype)
        self.graph.edges[key] = self.graph.edges.get(key, 0) + 1


# ------------------------------------------------------------------ rendering
def _staggered(graph: _Graph) -> Dict[Tuple[str, str, str], int]:
    """``minlen`` of the edges to leaves: the leaves of one node spread over ranks (``unflatten -l``).

    A leaf is a node with a single neighbour; a node with ``k`` leaves puts about ``LEAVES_PER_RANK``
    of them on each of up to ``STAGGER`` ranks, so a run with 30 parameters is a block, not a strip.
    """
    neighbours: Dict[str, set] = {}
    for src, dst, _rtype in graph.edges:
        if src != dst:
            neighbours.setdefault(src, set()).add(dst)
            neighbours.setdefault(dst, set()).add(src)
    leaves: "OrderedDict[str, List[Tuple[str, str, str]]]" = OrderedDict()
    for edge in graph.edges:
        src, dst, _rtype = edge
        for leaf, hub in ((src, dst), (dst, src)):
            if len(neighbours.get(leaf, ())) == 1 and len(neighbours.get(hub, ())) > 1:
                leaves.setdefault(hub, []).append(edge)
    out: Dict[Tuple[str, str, str], int] = {}
    for edges in leaves.values():
        levels = min(STAGGER, -(-len(edges) // LEAVES_PER_RANK))
        for i, edge in enumerate(edges):
            if i % levels:
                out[edge] = 1 + i % levels
    return out


def _to_pydot(graph: _Graph) -> pydot.Dot:
    dot = pydot.Dot("prov", graph_type="digraph", rankdir="RL", charset="utf-8")
    dot.set_node_defaults(fontname="Helvetica", fontsize="11")
    dot.set_edge_defaults(fontname="Helvetica")
    in_cluster = {n for _title, names in graph.clusters.values() for n in names}
    for node in graph.nodes.values():
        if node.name not in in_cluster:
            dot.add_node(_pydot_node(node))
    for i, (title, names) in enumerate(graph.clusters.values()):
        cluster = pydot.Cluster(f"b{i + 1}", label=_html_label(title, [], 0), **BUNDLE_STYLE)
        for name in names:
            cluster.add_node(_pydot_node(graph.nodes[name]))
        dot.add_subgraph(cluster)
    minlen = _staggered(graph)
    for (src, dst, rtype), count in graph.edges.items():
        style = dict(PLAN_STYLE if rtype == "hadPlan" else LINK_STYLE.get(rtype) or RELATION_STYLE.get(rtype, {**_EDGE, "label": _local(rtype)}))
        if count > 1:
            style["label"] = f"{style['label']} ×{count}"
        if (src, dst, rtype) in minlen:
            style["minlen"] = str(minlen[(src, dst, rtype)])
        dot.add_edge(pydot.Edge(src, dst, **style))
    return dot


def _pydot_node(node: _Node) -> pydot.Node:
    if node.inferred:
        style = dict(INFERRED_STYLE)
    else:
        style = dict(ELEMENT_STYLE.get(node.record_type, ELEMENT_STYLE[_PROV + "Entity"]))
        if node.summary:
            style.update(SUMMARY_STYLE)
    style["label"] = _html_label(node.title, node.rows, node.hidden_rows)
    if node.tooltip:
        style["tooltip"] = '"' + node.tooltip.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return pydot.Node(node.name, **style)


def _html_label(title: str, rows: List[Tuple[str, str]], hidden: int) -> str:
    if not rows and not hidden:
        return f"<{_esc(title)}>"
    out = ['<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">',
           f'<TR><TD COLSPAN="2"><B>{_esc(title)}</B></TD></TR>']
    for key, value in rows:
        out.append(f'<TR><TD ALIGN="RIGHT"><FONT POINT-SIZE="9" COLOR="#555555">{_esc(key)}</FONT></TD>'
                   f'<TD ALIGN="LEFT"><FONT POINT-SIZE="9">{_esc(value)}</FONT></TD></TR>')
    if hidden:
        out.append(f'<TR><TD COLSPAN="2"><FONT POINT-SIZE="9" COLOR="#555555">… {hidden} more</FONT></TD></TR>')
    out.append("</TABLE>>")
    return "".join(out)


# -------------------------------------------------------------------- helpers
def _bundles(document: Any) -> Iterator[Any]:
    return iter(getattr(document, "bundles", ()) or ())


def _attribute(record: Any, local: str) -> Any:
    """The first value of the attribute whose local name is ``local`` (``model_name``), or None."""
    for attr, value in record.attributes:
        if _local(attr) == local:
            return value.value if isinstance(value, Literal) else value
    return None


def _types(record: Any) -> List[Any]:
    return list(record.get_attribute(PROV_TYPE))


def type_uris(record: Any) -> List[str]:
    """The URIs of a record's ``prov:type`` values; a string ``"mls:Run"`` is read with its bundle's prefixes."""
    out = []
    for t in _types(record):
        uri = getattr(t, "uri", None)
        if uri is None and isinstance(t, str) and ":" in t:
            try:
                qn = record.bundle.valid_qualified_name(t)
            except Exception:  # not a qualified name after all
                qn = None
            uri = getattr(qn, "uri", None)
        if uri is not None:
            out.append(str(uri))
    return out


def _local(identifier: Any) -> str:
    local = getattr(identifier, "localpart", None)
    if local is None:
        text = str(getattr(identifier, "uri", identifier))
        local = text.rsplit("#", 1)[-1] if "#" in text else text
    return str(local)


def _shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: the tail of a path, else both ends."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if "/" in text:
        parts = text.split("/")
        tail: List[str] = []
        for part in reversed(parts):
            if len("…/" + "/".join([part] + tail)) > limit:
                break
            tail.insert(0, part)
        if tail:
            return "…/" + "/".join(tail)
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def _value_text(value: Any, limit: int = 40) -> str:
    if isinstance(value, Literal):
        value = value.value
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > limit:
        head = (limit - 1) // 2
        text = text[:head] + "…" + text[len(text) - (limit - 1 - head):]
    return text


def _esc(text: str) -> str:
    return html.escape("".join(ch for ch in text if ch >= " "), quote=True)
