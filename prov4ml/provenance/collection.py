"""One PROV document for a whole experiment: every run, every rank.

    python -m prov4ml.prov_collection --experiment_path prov/mnist --output_dir prov/mnist

``create_collection`` reads every ``prov*.json`` under the directory it is given
(an experiment directory, a single run directory, or a directory of
experiments) and writes ``<output_dir>/<directory name>_collection.json``, a
PROV-JSON document shaped like this (docs/graphs.md draws it):

* **a bundle per document.** Each rank's document is copied, record for record,
  into a bundle. The bundle's identifier is the identifier the run gave its own
  document (the ``provml:ProvenanceDocument`` entity, ``…/run_0/rank1/document``),
  so the statements the run made about its document now describe the bundle.
* **an entity per document** with the same identifier, typed ``prov:Bundle``
  and ``provml:ProvenanceDocument``, with ``prov:location`` (the file's IRI),
  ``provml:run_id``, ``provml:rank`` and ``provml:sha256`` of the file as read.
* **the experiment**, an activity (``mls:Experiment``: ML-Schema's experiment
  is a process) that ``mls:hasPart`` every rank's run activity; each **run**
  (``prov:Collection``, ``provml:Run``) ``hadMember`` its rank documents. The
  identifiers are those the runs use themselves, so the top level and the
  bundles name the same things; every identifier the top level names is
  declared there (the rank activities are declared again, with their times).
* **ranks of one run**: the run activities of rank 0 and of every rank k > 0
  inform each other (``wasInformedBy`` both ways: rank 0 leads the launch and,
  under DistributedDataParallel, broadcasts the initial weights; gradients flow
  back). Weights files of equal bytes (``provml:sha256``) saved by several
  ranks are ``alternateOf`` one another.

A document that carries no identifiers of its own (written by another tool)
gets identifiers under the ``collection`` namespace, the directory's
``file:`` URI. Files named ``*_collection.json`` (earlier collections) and
files under a run's ``artifacts/`` or ``metrics/`` are not collected. A missing or corrupt document stops the collection with its name:
nothing is skipped silently, and nothing half written is left behind.

Both paths may be URLs (``s3://bucket/prefix/experiment``, any fsspec URL):
the documents are read from the bucket, every rank's whichever host wrote it,
the collection names them by their URLs, and it is written to the bucket.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from prov.constants import PROV_LABEL, PROV_LOCATION, PROV_TYPE
from prov.identifier import Namespace, QualifiedName
from prov.model import PROV, ProvActivity, ProvDocument, ProvEntity

from .. import _commands
from .._fs import is_url
from .._optional import require
from . import files
from ..exceptions import ProvFileError
from .dot import type_uris
from .names import location_path

__all__ = ["create_collection", "collection_path", "find_documents", "main", "COLLECTION_SUFFIX"]

COLLECTION_SUFFIX = "_collection.json"

PROVML = Namespace("provml", "https://prov4ml.github.io/ns/provml#")
MLS = Namespace("mls", "http://www.w3.org/ns/mls#")

_SKIPPED_DIRS = {"artifacts", "metrics"}  # a run's copies of user files, and its metric files
_RUN_DIR = re.compile(r"^run_(\d+)$")
_RANK_FILE = re.compile(r"^prov_rank(\d+)\.json$")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class _Doc:
    """One rank's document and what it says about itself."""

    path: Path
    document: ProvDocument
    sha256: str
    run_id: Optional[int]
    rank: Optional[int]
    experiment: Optional[QualifiedName]      # its mls:Experiment entity
    experiment_label: Optional[str]
    run_entity: Optional[QualifiedName]      # its provml:Run entity
    doc_entity: Optional[QualifiedName]      # its provml:ProvenanceDocument entity
    run_activity: Optional[QualifiedName]    # its mls:Run activity


def collection_path(experiment_path: PathLike, output_dir: PathLike) -> Union[Path, str]:
    """Where :func:`create_collection` writes: ``<output_dir>/<directory name>_collection.json`` (a URL in a URL)."""
    if is_url(str(experiment_path)):
        name = str(experiment_path).rstrip("/").rsplit("/", 1)[-1] or "experiment"
    else:
        name = Path(os.path.abspath(experiment_path)).name or "experiment"
    if is_url(str(output_dir)):
        return f"{str(output_dir).rstrip('/')}/{name}{COLLECTION_SUFFIX}"
    return Path(output_dir) / f"{name}{COLLECTION_SUFFIX}"


def _collected(rel_parts: Sequence[str], name: str) -> bool:
    return (name.startswith("prov") and name.endswith(".json") and not name.endswith(COLLECTION_SUFFIX)
            and not _SKIPPED_DIRS.intersection(rel_parts))


def _order(p: Path) -> Tuple[int, int, str]:
    run = _RUN_DIR.match(p.parent.name)
    rank = _RANK_FILE.match(p.name)
    return (int(run.group(1)) if run else -1, int(rank.group(1)) if rank else -1, p.as_posix())


def find_documents(experiment_path: PathLike) -> List[Path]:
    """Every ``prov*.json`` under ``experiment_path``, by run id, then rank, then path.

    Collections (``*_collection.json``) and files inside a run's ``artifacts/``
    and ``metrics/`` folders (copies of the user's files) are left out.
    """
    root = Path(experiment_path)
    if not root.exists():
        raise ProvFileError(f"{root}: no such directory; give an experiment directory (<provenance_save_dir>/<experiment_name>)")
    if not root.is_dir():
        raise ProvFileError(f"{root} is not a directory; give the experiment directory that holds the run_<id>/ folders")
    found = [p for p in root.rglob("prov*.json") if p.is_file() and _collected(p.relative_to(root).parts[:-1], p.name)]
    if not found:
        raise ProvFileError(
            f"no prov*.json under {root}; give the experiment directory (<provenance_save_dir>/<experiment_name>) "
            "of runs that have saved their provenance"
        )
    return sorted(found, key=_order)


def create_collection(experiment_path: PathLike, output_dir: PathLike,
                      progress: Callable[[List[Path]], Iterable[Path]] = iter) -> Union[Path, str]:
    """Write the collection document of every run and rank under ``experiment_path``; returns its path (or URL).

    ``progress`` wraps the list of documents as they are read (the console command shows a bar with it).
    """
    out = collection_path(experiment_path, output_dir)
    if is_url(str(experiment_path)):
        with tempfile.TemporaryDirectory(prefix="prov4ml-collect-") as tmp:
            root = _fetch(str(experiment_path).rstrip("/"), Path(tmp))
            docs = [_read(path) for path in progress(find_documents(root))]
            collection = build_collection(docs, root, Path(tmp), base=str(experiment_path).rstrip("/") + "/")
    else:
        root = Path(experiment_path)
        docs = [_read(path) for path in progress(find_documents(root))]
        collection = build_collection(docs, root, Path(out).parent)
    text = collection.serialize(format="json", indent=1)
    if isinstance(out, str):
        fs, key = _file_system(out)
        try:
            fs.pipe_file(key, text.encode("utf-8"))
        except Exception as exc:
            raise ProvFileError(f"cannot write {out} ({type(exc).__name__}: {exc}); check the URL and the credentials") from None
        return out
    return files.write_output(out, text)


def _file_system(url: str) -> Tuple[Any, str]:
    fsspec = require("fsspec", "s3", url)
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:  # fsspec knows the protocol, its driver (s3fs, gcsfs, ...) is missing
        raise ProvFileError(f'{url}: {exc} (for s3:// URLs: pip install "prov4ml[s3]")') from None


def _fetch(url: str, into: Path) -> Path:
    """The documents under the experiment ``url``, copied under ``into`` at their relative paths (to be parsed)."""
    fs, root = _file_system(url)
    root = root.rstrip("/")
    try:
        keys = [k for k in fs.find(root) if k.startswith(root + "/")]
    except Exception as exc:
        raise ProvFileError(f"cannot list {url} ({type(exc).__name__}: {exc}); check the URL and the credentials") from None
    wanted = []
    for key in keys:
        rel = key[len(root) + 1:].split("/")
        if not any(part.startswith(".") for part in rel[:-1]) and _collected(rel[:-1], rel[-1]):
            wanted.append((key, into.joinpath(*rel)))
    for _key, path in wanted:
        path.parent.mkdir(parents=True, exist_ok=True)
    if wanted:
        fs.get([k for k, _p in wanted], [str(p) for _k, p in wanted])
    elif not keys:
        raise ProvFileError(f"{url} holds nothing; give the experiment's URL (<provenance_save_dir>/<experiment_name>)")
    return into


def build_collection(docs: Sequence[_Doc], root: Path, out_dir: Path, base: Optional[str] = None) -> ProvDocument:
    """``base``: the IRI the documents' paths are relative to (default: ``root``'s ``file:`` URI; an experiment's URL)."""
    col = ProvDocument()
    col.add_namespace(PROVML)
    col.add_namespace(MLS)
    local = col.add_namespace("collection", base or Path(os.path.abspath(root)).as_uri() + "/")

    experiments: "OrderedDict[Any, Tuple[Optional[str], OrderedDict[Any, List[_Doc]]]]" = OrderedDict()
    for d in docs:
        exp_id = d.experiment or local["experiment"]
        label, runs = experiments.setdefault(exp_id, (d.experiment_label or Path(os.path.abspath(root)).name, OrderedDict()))
        run_key = d.run_entity or (local[f"run_{d.run_id}"] if d.run_id is not None else local[_rel(d.path.parent, root)])
        runs.setdefault(run_key, []).append(d)

    bundle_ids = set()
    for exp_id, (label, runs) in experiments.items():
        parts = [d.run_activity for members in runs.values() for d in members if d.run_activity is not None]
        # ML-Schema's experiment is a process whose parts are runs (docs/prov-mapping.md)
        col.activity(exp_id, None, None, [
            (PROV_TYPE, MLS["Experiment"]), (PROV_TYPE, PROVML["Experiment"]), (PROV_LABEL, label),
            (PROVML["runs"], len(runs)), (PROVML["documents"], sum(len(v) for v in runs.values())),
        ] + [(MLS["hasPart"], a) for a in parts])
        for run_id_q, members in runs.items():
            run_attrs: Dict[Any, Any] = {PROV_TYPE: PROV["Collection"]}
            if members[0].run_id is not None:
                run_attrs[PROVML["run_id"]] = members[0].run_id
            col.entity(run_id_q, run_attrs).add_asserted_type(PROVML["Run"])
            for d in members:
                bundle_id = d.doc_entity
                if bundle_id is None or bundle_id in bundle_ids:
                    bundle_id = local[_rel(d.path, root)]
                bundle_ids.add(bundle_id)
                attrs: Dict[Any, Any] = {
                    PROV_TYPE: PROV["Bundle"],
                    PROV_LOCATION: local[quote(_rel(d.path, root), safe="/-._~")],  # the file's IRI
                    PROVML["sha256"]: d.sha256,
                }
                if d.run_id is not None:
                    attrs[PROVML["run_id"]] = d.run_id
                if d.rank is not None:
                    attrs[PROVML["rank"]] = d.rank
                col.entity(bundle_id, attrs).add_asserted_type(PROVML["ProvenanceDocument"])
                col.hadMember(run_id_q, bundle_id)
                col.bundle(bundle_id).update(d.document)
                if d.run_activity is not None:  # named at the top level, so declared there too
                    _declare(col, d.document, d.run_activity)
            _link_ranks(col, members)
    return col


def _declare(col: ProvDocument, document: ProvDocument, ident: QualifiedName) -> None:
    """Declare at the top level an element of a bundle: its identifier, times, types and label."""
    (record,) = document.get_record(ident)[:1]
    attrs = [(PROV_TYPE, t) for t in record.get_asserted_types()] + [(PROV_LABEL, v) for v in record.get_attribute(PROV_LABEL)]
    if isinstance(record, ProvActivity):
        col.activity(ident, record.get_startTime(), record.get_endTime(), attrs)
    else:
        col.entity(ident, attrs + [(PROVML["sha256"], v) for v in record.get_attribute(PROVML["sha256"])])


def _link_ranks(col: ProvDocument, members: List[_Doc]) -> None:
    """Ranks of one run inform each other (rank 0 leads the launch and broadcasts; the others report back),
    and the weights files of equal bytes that several ranks saved are alternates of one another."""
    leaders = [d for d in members if d.rank == 0 and d.run_activity is not None]
    if leaders:
        lead = leaders[0]
        for d in members:
            if d.run_activity is not None and d.run_activity != lead.run_activity:
                for informed, informant in ((d, lead), (lead, d)):
                    if _may_inform(informant, informed):
                        col.wasInformedBy(informed.run_activity, informant.run_activity)
    first_of: Dict[str, Tuple[_Doc, QualifiedName]] = {}
    for d in members:
        for ident, digest in _weights(d.document):
            if digest in first_of and first_of[digest][0] is not d:
                other = first_of[digest][1]
                for e in (other, ident):
                    if not col.get_record(e):
                        _declare(col, first_of[digest][0].document if e == other else d.document, e)
                col.alternateOf(ident, other)
            else:
                first_of.setdefault(digest, (d, ident))


def _span(d: _Doc) -> Tuple[Any, Any]:
    record = d.document.get_record(d.run_activity)[0]
    return record.get_startTime(), record.get_endTime()


def _may_inform(informant: _Doc, informed: _Doc) -> bool:
    """PROV-CONSTRAINTS 37: the informant starts before the informed activity ends (ranks run side by side;
    ranks run one after another, as in a test, inform only forwards)."""
    start, end = _span(informant)[0], _span(informed)[1]
    return start is None or end is None or start <= end


def _weights(document: ProvDocument) -> List[Tuple[QualifiedName, str]]:
    out = []
    for record in document.get_records(ProvEntity):
        if PROVML["ModelWeights"].uri in set(type_uris(record)):
            for digest in record.get_attribute(PROVML["sha256"]):
                out.append((record.identifier, str(digest)))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _commands.parser("prov4ml.prov_collection", "Link every PROV-JSON of an experiment's runs and ranks in one document.")
    p.add_argument("--experiment_path", required=True,
                   help="the experiment directory (<provenance_save_dir>/<experiment_name>), or its URL (s3://...)")
    p.add_argument("--output_dir", required=True, help=f"where to write <name>{COLLECTION_SUFFIX} (a directory or a URL)")
    args = p.parse_args(argv)
    return _commands.run("prov4ml.prov_collection", lambda: create_collection(args.experiment_path, args.output_dir))


# ------------------------------------------------------------------ reading
def _read(path: Path) -> _Doc:
    document = files.read_prov(path)
    if list(document.bundles):
        raise ProvFileError(
            f"{path} holds bundles, so it is a collection, not a run's document; "
            f"rename it to end in {COLLECTION_SUFFIX} or move it out of the experiment directory"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    run_dir, rank_file = _RUN_DIR.match(path.parent.name), _RANK_FILE.match(path.name)
    d = _Doc(path, document, digest, int(run_dir.group(1)) if run_dir else None,
             int(rank_file.group(1)) if rank_file else None, None, None, None, None, None)
    for record in document.get_records((ProvActivity, ProvEntity)):
        types = set(type_uris(record))
        if isinstance(record, ProvActivity) and MLS["Run"].uri in types:
            if d.run_activity is None:
                d.run_activity = record.identifier
                d.run_id = _int(record, PROVML["run_id"], d.run_id)
                d.rank = _int(record, PROVML["rank"], d.rank)
        elif MLS["Experiment"].uri in types and d.experiment is None:  # an activity (an entity before 0.2)
            d.experiment = record.identifier
            labels = record.get_attribute(PROV_LABEL)
            d.experiment_label = str(next(iter(labels))) if labels else None
        elif PROVML["Run"].uri in types and d.run_entity is None:
            d.run_entity = record.identifier
        elif PROVML["ProvenanceDocument"].uri in types and d.doc_entity is None:
            locations = {location_path(v) for v in record.get_attribute(PROV_LOCATION)}
            if not locations or path.name in locations or str(path.resolve()) in locations:
                d.doc_entity = record.identifier
    return d


def _int(record: Any, attr: QualifiedName, default: Optional[int]) -> Optional[int]:
    for value in record.get_attribute(attr):
        try:
            return int(getattr(value, "value", value))
        except (TypeError, ValueError):
            pass
    return default


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(start))).as_posix()
