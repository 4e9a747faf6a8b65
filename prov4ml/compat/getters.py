"""yProv4ML's getters, for code written for it, over a PROV-JSON written by prov4ml.

Every function takes the document as a dict (``json.load`` of the file) or as
the path of the file. Values come back typed as they were logged (``xsd:int``
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

__all__ = [
    "list_activities", "list_entities", "get_parameter", "list_parameters",
    "list_metrics", "list_metric_paths", "get_metric", "list_runs_in_proj", "list_provjson_in_proj",
]

Source = Union[Dict[str, Any], str, "os.PathLike[str]"]

_INTEGER = {"xsd:int", "xsd:integer", "xsd:long", "xsd:short", "xsd:byte", "xsd:unsignedInt",
            "xsd:unsignedLong", "xsd:nonNegativeInteger", "xsd:positiveInteger"}
_FLOAT = {"xsd:double", "xsd:float", "xsd:decimal"}
_PREFIXES = ("provml:", "prov:", "dcterms:", "mls:")


def _load(source: Source) -> Dict[str, Any]:
    if isinstance(source, dict):
        return source
    from ..runs import read_json  # the reading side, imported when a getter is first used (it brings NumPy)

    path = Path(source)
    try:
        return read_json(path)  # prov4ml.runs reads every run document
    except ProvFileError as exc:
        if path.is_file():
            raise ProvFileError(f"{exc} (not JSON a PROV-JSON reader can use; give a PROV-JSON written by prov4ml)") from None
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


def _types(record: Dict[str, Any]) -> List[str]:
    types = _unwrap(record.get("prov:type", []))
    return types if isinstance(types, list) else [types]


def _record(doc: Dict[str, Any], name: str) -> Dict[str, Any]:
    record = doc.get("activity", {}).get(name) or doc.get("entity", {}).get(name) or doc.get("agent", {}).get(name)
    if record is None:
        raise KeyError(f"no activity, entity or agent named {name!r}; list_activities() and list_entities() give the names")
    return record


def list_activities(source: Source) -> List[str]:
    """For code written for yProv4ML: the identifiers of the document's activities (the run, its contexts)."""
    return list(_load(source).get("activity", {}))


def list_entities(source: Source, entity_type: Optional[str] = None) -> List[str]:
    """For code written for yProv4ML: the identifiers of its entities, of ``entity_type`` (e.g. ``"provml:Metric"``) if given."""
    entities = _load(source).get("entity", {})
    if entity_type is None:
        return list(entities)
    return [name for name, attrs in entities.items() if entity_type in _types(attrs)]


def get_parameter(source: Source, name: str, param: str, unwrap: bool = True) -> Any:
    """For code written for yProv4ML: attribute ``param`` of the record ``name``, or ``None``.

    ``param`` may omit its prefix (``"run_id"`` finds ``provml:run_id``). On the
    run activity, or a context activity, a logged parameter of that key is
    found too (``get_parameter(doc, run, "lr")``).
    """
    doc = _load(source)
    record = _record(doc, name)
    for key in (param, *(p + param for p in _PREFIXES)):
        if key in record:
            return _unwrap(record[key]) if unwrap else record[key]
    if name in doc.get("activity", {}):
        context = _unwrap(record.get("provml:context"))
        for attrs in _params(doc).values():
            if _unwrap(attrs.get("prov:label")) == param and _unwrap(attrs.get("provml:context")) == context:
                return _unwrap(attrs.get("prov:value")) if unwrap else attrs.get("prov:value")
    return None


def _params(doc: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {n: a for n, a in doc.get("entity", {}).items() if "mls:HyperParameterSetting" in _types(a)}


def list_parameters(data: Source, name: Optional[str] = None, unwrap: bool = True) -> Dict[str, Any]:
    """For code written for yProv4ML: the logged parameters ``{key: value}``; with ``name``, that record's attributes.

    A key logged again with another value appears as ``key#2``, as in the document.
    """
    doc = _load(data)
    value = _unwrap if unwrap else (lambda v: v)
    if name is not None:
        return {k: value(v) for k, v in _record(doc, name).items()}
    return {_unwrap(a.get("prov:label")): value(a.get("prov:value")) for a in _params(doc).values()}


def _metrics(doc: Dict[str, Any], context: Optional[str], source: Optional[str]) -> Dict[str, Dict[str, Any]]:
    context = None if context is None else str(context).lower()  # contexts are recorded in lower case
    out = {}
    for name, attrs in doc.get("entity", {}).items():
        if "provml:Metric" not in _types(attrs):
            continue
        if context is not None and _unwrap(attrs.get("provml:context")) != context:
            continue
        if source is not None and _unwrap(attrs.get("provml:source")) != str(getattr(source, "value", source)):
            continue
        out[name] = attrs
    return out


def list_metrics(data: Source, context: Optional[str] = None, source: Optional[str] = None):
    """For code written for yProv4ML: one row per metric series, as a DataFrame.

    Columns ``label, context, source, csv_path``, then the series' summary
    (``count, min, max, last, mean, first_step`` ...) and ``prov:label``.
    """
    pd = require("pandas", "analysis", "list_metrics()")
    doc = _load(data)
    rows = {}
    for ident, attrs in _metrics(doc, context, source).items():
        row = {k.replace("provml:", "", 1): _unwrap(v) for k, v in attrs.items() if k != "prov:type"}
        rows[ident] = {
            "label": row.pop("name", None), "context": row.pop("context", None),
            "source": row.pop("source", None), "csv_path": _path(data, doc, json_location(row.pop("prov:location", None))),
            **row,
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
        path = _path(data, doc, json_location(attrs.get("prov:location")))
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
        if "mls:Run" in _types(attrs) and attrs.get("prov:location"):
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
    ``context`` when the name is logged in several). ``time`` is in Unix seconds.
    """
    pd = require("pandas", "analysis", "get_metric()")
    doc = _load(data)
    found = _metrics(doc, context, source)
    if name is not None:
        found = {i: a for i, a in found.items() if i == name or _unwrap(a.get("provml:name")) == name}
    if len(found) != 1:
        series = sorted(f"{_unwrap(a.get('provml:name'))} ({_unwrap(a.get('provml:context'))})" for a in _metrics(doc, None, None).values())
        what = "no metric series matches" if not found else f"{len(found)} metric series match"
        raise InvalidValueError(f"get_metric(name={name!r}, context={context!r}): {what}; the document has: {', '.join(series) or 'none'}")
    (attrs,) = found.values()
    path = _path(data, doc, json_location(attrs.get("prov:location")))
    if path is None:
        return pd.DataFrame({"step": [], "value": [], "time": []})
    from ..runs import read_points

    return pd.DataFrame(read_points(Path(path).parent, Path(path).name))


def list_runs_in_proj(path: Union[str, "os.PathLike[str]"]) -> List[Path]:
    """For code written for yProv4ML: the run directories of an experiment directory."""
    return sorted(p for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith("."))


def list_provjson_in_proj(path: Union[str, "os.PathLike[str]"]) -> List[Path]:
    """For code written for yProv4ML: every ``prov_rank<k>.json`` of an experiment directory's runs."""
    return [f for run in list_runs_in_proj(path) for f in sorted(run.glob("prov_rank*.json"))]
