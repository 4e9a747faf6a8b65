"""Lineage across runs: which runs made the files a run used, and which runs used the files it made.

Runs meet through content, never through each other: every file a rank
generated or used is in its summary with its SHA-256, and the index keeps them
(``files``). The lineage of a run is a join on digests at read time, so a
producer indexed later (another experiment, another machine's runs copied in,
an imported run) is found as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

from .._fs import hash_path
from ..exceptions import InvalidValueError
from .index import Index

__all__ = ["Link", "RunNode", "upstream", "downstream", "of_file", "digest_of"]


@dataclass
class Link:
    """A file between two runs: its digest, how the run at hand knew it (name, location), and the runs on the other side."""

    sha256: str
    name: Optional[str]
    location: Optional[str]
    runs: List["RunNode"] = field(default_factory=list)


@dataclass
class RunNode:
    """A run in a lineage tree: its label, status and commit, and its links further up (or down) the tree."""

    run: str
    status: Optional[str] = None
    commit: Optional[str] = None
    links: List[Link] = field(default_factory=list)
    seen: bool = False  # already shown higher in the tree (a diamond, or a cycle): not expanded again

    def as_dict(self) -> Dict[str, Any]:
        return {"run": self.run, "status": self.status, "commit": self.commit, "seen": self.seen,
                "links": [{"sha256": ln.sha256, "name": ln.name, "location": ln.location,
                           "runs": [r.as_dict() for r in ln.runs]} for ln in self.links]}


def digest_of(target: str) -> Optional[str]:
    """The SHA-256 ``target`` names: a file's content, ``sha256:<hex>``, ``content:sha256-<hex>`` or the hex itself."""
    path = Path(target)
    if path.is_file() or path.is_dir():
        return hash_path(path)[0]
    text = target.strip().lower()
    for prefix in ("content:sha256-", "urn:prov4ml:content:sha256-", "sha256:", "sha256-"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text
    return None


def _node(index: Index, run: str, shown: Set[str]) -> RunNode:
    info = index.run_info(run)
    node = RunNode(run, info.get("status"), info.get("commit"), seen=run in shown)
    shown.add(run)
    return node


def _walk(index: Index, node: RunNode, used: bool, depth: int, shown: Set[str]) -> RunNode:
    """Links of ``node``'s files used (``used=True``: upstream) or generated (downstream), ``depth`` runs deep."""
    if node.seen or depth <= 0:
        return node
    links: Dict[str, Link] = {}
    for f in index.files_of(node.run):
        if f["used"] != used or not f["sha256"] or f["sha256"] in links:
            continue
        others = sorted({g["run"] for g in index.files(f["sha256"]) if g["used"] != used and g["run"] != node.run})
        link = links[f["sha256"]] = Link(f["sha256"], f["name"], f["location"])
        for other in others:
            link.runs.append(_walk(index, _node(index, other, shown), used, depth - 1, shown))
    node.links = list(links.values())
    return node


def upstream(index: Index, run: str, depth: int = 20) -> RunNode:
    """The runs whose files ``run`` used, and theirs, ``depth`` runs deep."""
    return _walk(index, _node(index, run, set()), True, depth, set())


def downstream(index: Index, run: str, depth: int = 20) -> RunNode:
    """The runs that used the files ``run`` generated, and theirs, ``depth`` runs deep."""
    return _walk(index, _node(index, run, set()), False, depth, set())


def of_file(index: Index, sha256: str, depth: int = 20) -> Dict[str, List[RunNode]]:
    """``{"generated_by": [...upstream trees], "used_by": [...downstream trees]}`` of the bytes ``sha256``."""
    rows = index.files(sha256)
    made = sorted({r["run"] for r in rows if not r["used"]})
    used = sorted({r["run"] for r in rows if r["used"]})
    if not rows:
        raise InvalidValueError(f"no indexed run generated or used a file with sha256 {sha256[:12]}…; "
                                "check the folder (--dir) holds the runs that made or used it")
    return {"generated_by": [upstream(index, r, depth) for r in made],
            "used_by": [downstream(index, r, depth) for r in used]}


def short(sha256: str) -> str:
    return f"sha256:{sha256[:12]}"
