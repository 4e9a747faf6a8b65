"""The PROV-JSON documents the getters read: prov4ml's and those yProv4ML 2.x and 3.x wrote.

Users arrive with runs the reference recorded. Its documents name the same
things differently; one :class:`Dialect` per writer says where each thing is:

=================  ===============================  ===================================  ==================================
                   prov4ml                          yProv4ML 3.x                         yProv4ML 2.x
=================  ===============================  ===================================  ==================================
recognised by      (any other document)             the ``yprov`` prefix                 the ``yProv4ML`` prefix
entity types       ``prov:type``                    ``prov:type``                        none: read from the relations
                                                                                         (made by the MODELS context: a
                                                                                         model; used by DATASETS: a dataset;
                                                                                         with a context: a metric)
a metric's name    ``provml:name``                  ``prov:label``                       ``yProv4ML:label``
its context        ``provml:context`` (lower case)  ``yprov:context`` (``Validation``)   ``yProv4ML:context``
                                                                                         (``Context.VALIDATION``)
its data file      ``prov:location`` (``rundir:``)  ``dcterms:identifier``, from the     ``yProv4ML:path``, from the folder
                                                    folder the script ran in             the script ran in
its file's size    the file's size now              ``yprov:file_size``                  the file's size now
parameters         ``mls:HyperParameterSetting``    ``provml:HyperParameter`` entities   attributes of the run activity
=================  ===============================  ===================================  ==================================

The reference's entity types are aliases of ours (:data:`TYPE_ALIASES`):
asking for ``provml:Model`` finds prov4ml's ``mls:Model`` entities too, and
the other way round. Contexts compare by name, in any case, with or without
the 2.x ``Context.`` prefix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Set, Tuple

from ..exceptions import InvalidValueError, ProvFileError

__all__ = ["Dialect", "PROV4ML", "REFERENCE_3", "REFERENCE_2", "TYPE_ALIASES", "ATTRIBUTE_ALIASES", "dialect_of",
           "entity_types", "recorded_types",
           "same_context", "reference_location", "reference_points", "run_parameters_2x"]


@dataclass(frozen=True)
class Dialect:
    """Where one writer's documents keep what the getters read (see the module docstring)."""

    name: str
    label: str  # a metric's name
    context: str
    source: str
    location: str  # a metric's data file
    file_size: Optional[str]  # the attribute holding a metric file's size; None: the file is measured
    prefixes: Tuple[str, ...]  # tried in order when a getter is given a name without its prefix
    column_prefix: str = ""  # stripped from the other attributes' names in list_metrics' columns
    type_column: bool = True  # list_metrics keeps prov:type as a column


PROV4ML = Dialect("prov4ml", "provml:name", "provml:context", "provml:source", "prov:location", None,
                  ("provml:", "prov:", "dcterms:", "mls:", "yprov:"), column_prefix="provml:", type_column=False)
REFERENCE_3 = Dialect("yProv4ML 3.x", "prov:label", "yprov:context", "yprov:source", "dcterms:identifier",
                      "yprov:file_size", ("yprov:", "prov:", "dcterms:"))
REFERENCE_2 = Dialect("yProv4ML 2.x", "yProv4ML:label", "yProv4ML:context", "yProv4ML:source", "yProv4ML:path",
                      None, ("yProv4ML:", "prov:", "prov-ml:"))

#: Types that mean the same thing in prov4ml's documents and the reference's.
TYPE_ALIASES: List[Set[str]] = [
    {"mls:Model", "provml:Model"},
    {"mls:Dataset", "provml:Dataset"},
    {"mls:HyperParameterSetting", "provml:HyperParameter"},
]
_ALIAS = {name: group for group in TYPE_ALIASES for name in group}

#: What a 2.x document's relations say an entity is: (relation, its activity's context) -> type.
_INFERRED_2X = {("wasGeneratedBy", "models"): "provml:Model", ("used", "datasets"): "provml:Dataset"}

#: Attributes yProv4ML 2.x puts on the run activity itself; the others there are logged parameters.
_RUN_ATTRIBUTES_2X = {"level", "provenance_path", "artifact_uri", "experiment_dir", "experiment_name", "run_id",
                      "python_version", "global_rank"}

#: Attribute names of the reference that prov4ml records under another name.
ATTRIBUTE_ALIASES = {"file_size": "provml:size_bytes"}


def dialect_of(doc: Dict[str, Any]) -> Dialect:
    """Which writer's document ``doc`` is, by the prefixes it binds."""
    prefixes = doc.get("prefix", {})
    if "yprov" in prefixes:
        return REFERENCE_3
    if "yProv4ML" in prefixes:
        return REFERENCE_2
    return PROV4ML


def _plain(value: Any) -> Any:
    return value.get("$") if isinstance(value, dict) and "$" in value else value


def recorded_types(record: Dict[str, Any]) -> List[str]:
    """The types a record names in ``prov:type``, as text."""
    types = record.get("prov:type", [])
    return [str(_plain(t)) for t in (types if isinstance(types, list) else [types])]


def entity_types(doc: Dict[str, Any]) -> Dict[str, Set[str]]:
    """``{entity: its types}``, each with its aliases; on a 2.x document, read from the relations."""
    out = {}
    for name, record in doc.get("entity", {}).items():
        out[name] = set(recorded_types(record))
    if dialect_of(doc) is REFERENCE_2:
        for relation, context in _INFERRED_2X:
            for rel in doc.get(relation, {}).values():
                entity, activity = rel.get("prov:entity"), str(rel.get("prov:activity", ""))
                if entity in out and same_context(activity.partition(":")[2], context):
                    out[entity].add(_INFERRED_2X[relation, context])
        for name, record in doc.get("entity", {}).items():
            if REFERENCE_2.context in record:
                out[name].add("provml:Metric")
    for types in out.values():
        types.update(*(_ALIAS.get(t, ()) for t in list(types)))
    return out


#: The members of 2.x's ``Context`` enum, which its documents record as ``Context.<NAME>``.
_ENUM_2X = {"context.training", "context.validation", "context.testing", "context.datasets", "context.models"}


def _context_name(context: Any) -> str:
    text = str(getattr(context, "value", context)).lower()
    return text[len("context."):] if text in _ENUM_2X else text


def same_context(recorded: Any, asked: Any) -> bool:
    """Whether a recorded context is the one asked for: ``"Context.VALIDATION"``, ``"Validation"`` and
    ``"validation"`` are one context."""
    return recorded is not None and _context_name(recorded) == _context_name(asked)


def _experiment_dir(doc: Dict[str, Any], dialect: Dialect) -> Optional[str]:
    key = dialect.prefixes[0] + "experiment_dir"
    return next((str(_plain(a[key])) for a in doc.get("activity", {}).values() if key in a), None)


def reference_location(doc: Dict[str, Any], dialect: Dialect, recorded: Optional[str],
                       document: Optional[Path]) -> Optional[str]:
    """A file the reference recorded, as a path.

    The reference records paths from the folder its script ran in
    (``prov/ref_0/metrics_GR0/loss.csv``). Given the document's own path, a
    file inside the run's folder is found from where the document is now;
    otherwise (a document given as a dict) the path is returned as recorded,
    as the reference's own getters do.
    """
    if not recorded:
        return None
    experiment_dir = _experiment_dir(doc, dialect)
    if document is None or experiment_dir is None or os.path.isabs(recorded):
        return recorded
    inside = os.path.relpath(os.path.normpath(recorded), os.path.normpath(experiment_dir))
    if inside == ".." or inside.startswith(".." + os.sep):
        return recorded
    return str(document.resolve().parent / PurePosixPath(inside))


def reference_points(path: str) -> Dict[str, list]:
    """The points of a metric file the reference wrote (CSV: a header line, then ``step, value, time in ms``),
    as ``{"step", "value", "time"}`` with the time in Unix seconds, as prov4ml's get_metric gives them."""
    if not path.endswith(".csv"):
        raise InvalidValueError(f"get_metric() reads the reference's CSV metric files; {path} is not one "
                                "(open a .nc file with xarray.open_dataset, a .zarr folder with xarray.open_zarr)")
    from ..runs import reference_csv_rows  # the one reader of recorded runs (it brings NumPy)

    try:
        rows = reference_csv_rows(Path(path))
    except OSError as exc:
        raise ProvFileError(f"{path}: the metric file the document names cannot be read ({exc}); give the "
                            "document's path (not a dict) so that its files are found beside it") from None
    return {"step": [int(r[0]) for r in rows], "value": [float(r[1]) for r in rows],
            "time": [int(r[2]) / 1000 for r in rows]}


def run_parameters_2x(doc: Dict[str, Any]) -> Dict[str, Any]:
    """The parameters a 2.x run logged: the attributes of its run activity that the library did not set itself."""
    prefix = REFERENCE_2.prefixes[0]
    for record in doc.get("activity", {}).values():
        if prefix + "experiment_dir" in record:
            return {key[len(prefix):]: value for key, value in record.items()
                    if key.startswith(prefix) and key[len(prefix):] not in _RUN_ATTRIBUTES_2X}
    return {}
