"""yProv4ML's getters, for code written for it, over a PROV-JSON written by prov4ml or by yProv4ML.

Every function takes the document as a dict (``json.load`` of the file) or as
the path of the file. Documents the reference wrote (2.x and 3.x) are read too:
:mod:`prov4ml.compat.dialects` says where each of them keeps what is read,
which of its entity types are aliases of ours (``provml:Model`` is
``mls:Model``) and how contexts compare (``"Validation"`` is ``"validation"``
is 2.x's ``"Context.VALIDATION"``). Values come back typed as they were logged (``xsd:int``
-> ``int``, ``xsd:double`` -> ``float``, ``xsd:dateTime`` -> ``datetime``)
unless ``unwrap=False``. :func:`get_metric` reads a series' points from its
file; it needs the run's ``metrics/`` folder beside the document (pandas, the
``analysis`` extra). For more than these, see :mod:`prov4ml.analysis`.

Where prov4ml differs from yProv4ML: parameters are entities
(``mls:HyperParameterSetting``), not attributes of the run, so
``list_parameters(doc)`` returns the logged parameters ``{key: value}`` and
``get_parameter(doc, <the run activity>, key)`` finds one; metric entities
carry ``provml:context`` and ``provml:source`` and point to their file with
``prov:location``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..provenance.names import RUNDIR, json_location, location_path
from .._optional import require
from ..exceptions import InvalidValueError, ProvFileError
from . import dialects
from .dialects import PROV4ML, dialect_of, entity_types, recorded_types, same_context

__all__ = [
    "list_activities", "list_entities", "get_parameter", "list_parameters",
    "list_metrics", "list_metric_paths", "get_metric", "list_runs_in_proj", "list_provjson_in_proj",
]

Source = Union[Dict[str, Any], str, "os.PathLike[str]"]

_INTEGER = {"xsd:int", "xsd:integer", "xsd:long", "xsd:short", "xsd:byte", "xsd:unsignedInt",
            "xsd:unsignedLong", "xsd:nonNegativeInteger", "xsd:positiveInteger"}
_FLOAT = {"xsd:double", "xsd:float", "xsd:decimal"}


def _load(source: Source) -> Dict[str, Any]:
    if isinstance(source, dict):
        return source
    from ..runs import read_json  # the reading side, imported when a getter is first used (it brings NumPy)

    path = Path(source)
    try:
        return read_json(path)  # prov4ml.runs reads every run document
    except ProvFileError as exc:
        if path.is_file():
            raise ProvFileError(f"{exc} (not JSON a PROV-JSON reader can use; give a PROV-JSON written by prov4ml or yProv4ML)") from None
        raise ProvFileError(f"{exc}; give the path of a prov_rank<k>.json") from None


def _unwrap(value: Any) -> Any:
    """A PROV-JSON literal as a Python value: ``{"$": "3", "type": "xsd:int"}`` -> ``3``; lists item by item."""
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if not isinstance(value, dict) or "$" not in value:
        return value
    text, kind = value["$"], value.get("type")
    try:
        if kind in _INTEGER:
            return int(text)
        if kind in _FLOAT:
            return float(text)
        if kind == "xsd:boolean":
            return str(text).lower() in ("true", "1")
        if kind == "xsd:dateTime":
            return datetime.fromisoformat(str(text))
    except ValueError:
        pass
    return text


def _record(doc: Dict[str, Any], name: str) -> Dict[str, Any]:
    record = doc.get("activity", {}).get(name) or doc.get("entity", {}).get(name) or doc.get("agent", {}).get(name)
    if record is None:
        raise KeyError(f"no activity, entity or agent named {name!r}; list_activities() and list_entities() give the names")
    return record


def list_activities(source: Source) -> List[str]:
    """For code written for yProv4ML: the identifiers of the document's activities (the run, its contexts)."""
    return list(_load(source).get("activity", {}))


def list_entities(source: Source, entity_type: Optional[str] = None) -> List[str]:
    """For code written for yProv4ML: the identifiers of its entities, of ``entity_type`` (e.g. ``"provml:Metric"``) if given.

    The reference's types and ours are aliases: ``"provml:Model"`` finds ``mls:Model`` entities, and so on.
    """
    doc = _load(source)
    if entity_type is None:
        return list(doc.get("entity", {}))
    return [name for name, types in entity_types(doc).items() if entity_type in types]


def get_parameter(source: Source, name: str, param: str, unwrap: bool = True) -> Any:
    """For code written for yProv4ML: attribute ``param`` of the record ``name``, or ``None``.

    ``param`` may omit its prefix (``"run_id"`` finds ``provml:run_id``, and
    ``yprov:run_id`` in the reference's documents). On the run activity, or a
    context activity, a logged parameter of that key is found too
    (``get_parameter(doc, run, "lr")``).
    """
    doc = _load(source)
    record = _record(doc, name)
    dialect = dialect_of(doc)
    alias = dialects.ATTRIBUTE_ALIASES.get(param.partition(":")[2] or param) if dialect is PROV4ML else None
    for key in (param, *(p + param for p in dialect.prefixes), *([alias] if alias else [])):
        if key in record:
            return _unwrap(record[key]) if unwrap else record[key]
    if name in doc.get("activity", {}):
        context = _unwrap(record.get("provml:context"))
        for attrs in _params(doc).values():
            if _unwrap(attrs.get("prov:label")) == param and _unwrap(attrs.get("provml:context")) == context:
                return _unwrap(attrs.get("prov:value")) if unwrap else attrs.get("prov:value")
    return None


def _params(doc: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    types = entity_types(doc)
    return {n: a for n, a in doc.get("entity", {}).items() if "mls:HyperParameterSetting" in types[n]}


def list_parameters(data: Source, name: Optional[str] = None, unwrap: bool = True) -> Dict[str, Any]:
    """For code written for yProv4ML: the logged parameters ``{key: value}``; with ``name``, that record's attributes.

    A key logged again with another value appears as ``key#2``, as in the document.
    """
    doc = _load(data)
    value = _unwrap if unwrap else (lambda v: v)
    if name is not None:
        return {k: value(v) for k, v in _record(doc, name).items()}
    if dialect_of(doc) is dialects.REFERENCE_2:
        return {k: value(v) for k, v in dialects.run_parameters_2x(doc).items()}
    return {_unwrap(a.get("prov:label")): value(a.get("prov:value")) for a in _params(doc).values()}


def _metrics(doc: Dict[str, Any], context: Optional[str], source: Optional[str]) -> Dict[str, Dict[str, Any]]:
    dialect = dialect_of(doc)
    out = {}
    for name, types in entity_types(doc).items():
        if "provml:Metric" not in types:
            continue
        attrs = doc["entity"][name]
        if context is not None and not same_context(_unwrap(attrs.get(dialect.context)), context):
            continue
        if source is not None and _unwrap(attrs.get(dialect.source)) != str(getattr(source, "value", source)):
            continue
        out[name] = attrs
    return out


def _metric_path(data: Source, doc: Dict[str, Any], attrs: Dict[str, Any]) -> Optional[str]:
    """The path of a metric series' data file (see :func:`dialects.reference_location` for the reference's)."""
    dialect = dialect_of(doc)
    if dialect is PROV4ML:
        return _path(data, doc, json_location(attrs.get("prov:location")))
    document = None if isinstance(data, dict) else Path(data)
    return dialects.reference_location(doc, dialect, _unwrap(attrs.get(dialect.location)), document)


def _file_size(dialect: dialects.Dialect, attrs: Dict[str, Any], path: Optional[str]) -> Optional[int]:
    recorded = _unwrap(attrs.get(dialect.file_size)) if dialect.file_size else None
    if recorded is not None:
        return int(recorded)
    return os.path.getsize(path) if path is not None and os.path.isfile(path) else None


def list_metrics(data: Source, context: Optional[str] = None, source: Optional[str] = None):
    """For code written for yProv4ML: one row per metric series, as a DataFrame.

    Columns ``label, context, source, csv_path``, then the series' other
    attributes (on prov4ml's documents its summary: ``count, min, max, last,
    mean, first_step`` ... and ``prov:label``), then ``yprov:file_size`` (the
    data file's size in bytes, as recorded by the reference, else measured now).
    """
    pd = require("pandas", "analysis", "list_metrics()")
    doc = _load(data)
    dialect = dialect_of(doc)
    named = {dialect.label, dialect.context, dialect.source, dialect.location}
    rows = {}
    for ident, attrs in _metrics(doc, context, source).items():
        path = _metric_path(data, doc, attrs)
        rest = {k.replace(dialect.column_prefix, "", 1) if dialect.column_prefix else k: _unwrap(v)
                for k, v in attrs.items() if k not in named and (dialect.type_column or k != "prov:type")}
        rows[ident] = {
            "label": _unwrap(attrs.get(dialect.label)), "context": _unwrap(attrs.get(dialect.context)),
            "source": _unwrap(attrs.get(dialect.source)), "csv_path": path,
            **rest, "yprov:file_size": _file_size(dialect, attrs, path),  # where the reference has it, or last
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "metric_entity"
    return frame


def list_metric_paths(data: Source, context: Optional[str] = None, source: Optional[str] = None,
                      file_type: Optional[str] = None) -> Dict[str, str]:
    """For code written for yProv4ML: ``{metric entity: path of its data file}`` (of ``file_type``, e.g. ``"csv"``, if given)."""
    doc = _load(data)
    out = {}
    for ident, attrs in _metrics(doc, context, source).items():
        path = _metric_path(data, doc, attrs)
        if path is not None and (file_type is None or path.rsplit(".", 1)[-1] == file_type.lstrip(".")):
            out[ident] = path
    return out


def _run_dir(data: Source, doc: Dict[str, Any]) -> Optional[Path]:
    """The run directory: the document's folder when given a path, else where its ``rundir:`` prefix points."""
    if not isinstance(data, dict):
        return Path(data).resolve().parent
    folder = doc.get("prefix", {}).get(RUNDIR)  # the IRI the run's file locations are relative to
    if folder:
        return Path(location_path(folder))
    for attrs in doc.get("activity", {}).values():  # older documents
        if "mls:Run" in recorded_types(attrs) and attrs.get("prov:location"):
            return Path(json_location(attrs["prov:location"]))
    return None


def _path(data: Source, doc: Dict[str, Any], location: Optional[str]) -> Optional[str]:
    if not location:
        return None  # a series no point of which was written
    run_dir = _run_dir(data, doc)
    return str(run_dir / location) if run_dir is not None else location


def get_metric(data: Source, name: Optional[str] = None, context: Optional[str] = None, source: Optional[str] = None):
    """For code written for yProv4ML: the points of one metric series, a DataFrame ``step, value, time``.

    ``name`` is a metric entity's identifier or a metric name (with
    ``context`` when the name is logged in several). ``time`` is in Unix
    seconds. A series the reference recorded is read from its CSV file (its
    ``epoch`` column is ``step``, its ``timestep`` in milliseconds is ``time``).
    """
    pd = require("pandas", "analysis", "get_metric()")
    doc = _load(data)
    label = dialect_of(doc).label
    found = _metrics(doc, context, source)
    if name is not None:
        found = {i: a for i, a in found.items() if i == name or _unwrap(a.get(label)) == name}
    if len(found) != 1:
        ctx = dialect_of(doc).context
        series = sorted(f"{_unwrap(a.get(label))} ({_unwrap(a.get(ctx))})" for a in _metrics(doc, None, None).values())
        what = "no metric series matches" if not found else f"{len(found)} metric series match"
        raise InvalidValueError(f"get_metric(name={name!r}, context={context!r}): {what}; the document has: {', '.join(series) or 'none'}")
    (attrs,) = found.values()
    path = _metric_path(data, doc, attrs)
    if path is None:
        return pd.DataFrame({"step": [], "value": [], "time": []})
    if dialect_of(doc) is not PROV4ML:
        return pd.DataFrame(dialects.reference_points(path))
    from ..runs import read_points

    return pd.DataFrame(read_points(Path(path).parent, Path(path).name))


def list_runs_in_proj(path: Union[str, "os.PathLike[str]"]) -> List[Path]:
    """For code written for yProv4ML: the run directories of an experiment directory."""
    return sorted(p for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith("."))


def list_provjson_in_proj(path: Union[str, "os.PathLike[str]"]) -> List[Path]:
    """For code written for yProv4ML: every PROV-JSON of an experiment directory's runs (``prov_rank<k>.json``,
    the reference's ``prov_<experiment>_GR<rank>_<run>.json``)."""
    return [f for run in list_runs_in_proj(path) for f in sorted(run.glob("prov_*.json"))]
