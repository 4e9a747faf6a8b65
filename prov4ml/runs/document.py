"""One rank's ``prov_rank<k>.json`` read as plain JSON: no ``prov`` object model, so a thousand runs read in a second.

This is the one place that parses a run document. Attribute names are read by
namespace IRI (a document re-serialised with other prefixes reads the same),
typed literals come back as Python values (``xsd:int`` -> int, ``xsd:double``
-> float, ``xsd:dateTime`` -> datetime, ``xsd:QName`` -> ``prefix:local``),
and ``prov:location`` as a path (relative for the run's own files).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..exceptions import ProvFileError
from ..provenance.names import RUNDIR, json_location, location_path
from .series import Series

__all__ = ["RankDocument", "read_rank", "load_json", "read_json", "records", "local_attrs", "Names", "ARTIFACT_KINDS",
           "RUN_FIELDS", "plain_time"]

_CANONICAL = {
    "http://www.w3.org/ns/prov#": "prov",
    "http://www.w3.org/ns/mls#": "mls",
    "http://purl.org/dc/terms/": "dcterms",
    "https://prov4ml.github.io/ns/provml#": "provml",
    "http://www.w3.org/2001/XMLSchema#": "xsd",
}
_PARAM_REPEAT = re.compile(r"^(.*)#(\d+)$")  # a key logged again with another value: "lr#2"
_SERIES_FIELDS = ("count", "nan_count", "min", "max", "last", "mean", "first_step", "last_step", "unit", "source", "sampler")
#: Run-activity attributes with a place of their own in ``info`` (the others are final metrics or notes).
RUN_FIELDS = ("experiment", "run_id", "rank", "status", "command", "error_type", "error_message")
# An artifact's kind is the first of its prov:types found in this table (else "artifact").
ARTIFACT_KINDS = (
    ("provml:ModelVersion", "model_version"),
    ("provml:LayerWeights", "layer_weights"),
    ("provml:LayerData", "layer_data"),
    ("provml:ModelArchitecture", "architecture"),
    ("provml:ModelWeights", "model"),
    ("provml:SourceDiff", "diff"),
    ("provml:SourceCode", "source"),
    ("mls:Model", "model"),
)
_SUMMARY_TYPES = frozenset(("provml:Metric", "mls:HyperParameterSetting", "provml:FinalMetric"))


@dataclass
class RankDocument:
    """What one rank's document says.

    ``info``: the run activity's fields (``RUN_FIELDS``), ``rank``, ``start``
    and ``end`` (aware datetimes), ``recorded_dir``, ``final_metrics``,
    ``final_folds`` and ``notes`` (the other ``provml:`` attributes).
    ``environment`` and ``source`` (the source code, a ``prov:Plan``) hold
    those entities' attributes by canonical name (``provml:python``);
    every ``prov:location`` is a path.
    """

    rank: int
    path: Path
    info: Dict[str, Any]
    params: Dict[str, Any] = field(default_factory=dict)
    series: List[Series] = field(default_factory=list)
    artifacts: List[Dict[str, Any]] = field(default_factory=list)
    datasets: List[Dict[str, Any]] = field(default_factory=list)
    agents: Dict[str, Any] = field(default_factory=dict)
    environment: Dict[str, Any] = field(default_factory=dict)
    source: Dict[str, Any] = field(default_factory=dict)


def read_json(path: Path) -> Any:
    """The JSON in ``path``; :class:`ProvFileError` says why it cannot be read (missing, empty, cut short...)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        return json.loads(raw)
    except FileNotFoundError:
        raise ProvFileError(f"{path}: no such file; the run directory changed while it was read, try again") from None
    except IsADirectoryError:
        raise ProvFileError(f"{path} is a directory; give the path of a PROV-JSON file inside it (prov_rank<k>.json)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvFileError(f"{path}: cannot be read ({exc}); check the file and its permissions") from None
    except RecursionError:
        raise ProvFileError(f"{path} nests JSON too deeply to be PROV-JSON; give a PROV-JSON file") from None
    except ValueError as exc:
        text = raw.decode("utf-8", "replace").rstrip()
        if not text:
            raise ProvFileError(f"{path} is empty; a run killed before its first save leaves no document") from None
        if not text.endswith("}"):
            raise ProvFileError(
                f"{path} is cut short, so it is not valid JSON ({exc}); the run may still be writing it or was "
                "copied in part; if the run was killed, run prov4ml recover on its directory"
            ) from None
        raise ProvFileError(
            f"{path} is not valid JSON ({exc}); if the run was killed, run prov4ml recover on its directory"
        ) from None


def load_json(path: Path) -> Dict[str, Any]:
    """A PROV-JSON document as a dict (:class:`ProvFileError` when it is not one)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ProvFileError(f"{path} is JSON but not PROV-JSON (a {type(data).__name__}, not an object)")
    return data


def records(section: Any) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """``(identifier, attributes)`` of each record of a PROV-JSON section (a repeated identifier is a list)."""
    if not isinstance(section, dict):
        return
    for ident, attrs in section.items():
        for one in attrs if isinstance(attrs, list) else [attrs]:
            if isinstance(one, dict):
                yield ident, one


def read_rank(path: Path, rank: int, details: bool = True) -> RankDocument:
    """Rank ``rank``'s document ``path``; ``details=False`` reads only the run, its parameters and series."""
    data = load_json(path)
    canon = Names(data.get("prefix"))
    info = None
    for _ident, attrs in records(data.get("activity")):
        attrs = canon.attrs(attrs)
        if "mls:Run" in attrs["prov:type"]:
            info = _run_info(attrs, rank)
            break
    if info is None:
        raise ProvFileError(f"{path} is PROV-JSON but not a prov4ml run document (no mls:Run activity)")
    rundir = (data.get("prefix") or {}).get(RUNDIR)
    if isinstance(rundir, str):  # where the run was recorded: the IRI its file locations are relative to
        info["recorded_dir"] = location_path(rundir).rstrip("/")
    out = RankDocument(rank=rank, path=Path(path), info=info)
    for _ident, attrs in records(data.get("agent") if details else None):
        attrs = canon.attrs(attrs)
        if "prov:Person" in attrs["prov:type"]:
            out.agents.setdefault("user", attrs.get("prov:label"))
        elif "provml:Host" in attrs["prov:type"]:
            out.agents.setdefault("host", attrs.get("prov:label"))
    repeats: Dict[str, Tuple[int, Any]] = {}
    for ident, attrs in records(data.get("entity")):
        types = canon.types(attrs)
        if not details and not types & _SUMMARY_TYPES:
            continue  # `ls` needs the parameters and series only: the others are not even converted
        attrs = canon.attrs(attrs)
        if "provml:FinalMetric" in types:  # one entity per registered final metric
            name = str(attrs.get("provml:name"))
            info["final_metrics"][name] = attrs.get("prov:value")
            info["final_folds"][name] = attrs.get("provml:fold")  # None: registered without a fold
        elif "provml:Metric" in types:
            out.series.append(Series(
                name=str(attrs.get("provml:name")), context=str(attrs.get("provml:context")), rank=rank,
                location=attrs.get("prov:location"),
                **{f: attrs.get(f"provml:{f}") for f in _SERIES_FIELDS},
            ))
        elif "mls:HyperParameterSetting" in types:
            label = str(attrs.get("prov:label", ident.rsplit("/", 1)[-1]))
            m = _PARAM_REPEAT.match(label)
            key, n = (m.group(1), int(m.group(2))) if m else (label, 1)
            if n >= repeats.get(key, (0, None))[0]:
                repeats[key] = (n, attrs.get("prov:value"))
        elif "provml:Artifact" in types:
            out.artifacts.append({
                "rank": rank, "kind": next((k for t, k in ARTIFACT_KINDS if t in types), "artifact"),
                "name": attrs.get("prov:label"), "location": attrs.get("prov:location"),
                "model_name": attrs.get("provml:model_name"), "version": attrs.get("provml:version"),
                "step": attrs.get("provml:step"), "context": attrs.get("provml:context"),
                "size_bytes": attrs.get("provml:size_bytes"), "sha256": attrs.get("provml:sha256"),
                "created": attrs.get("provml:created", attrs.get("dcterms:created")),
            })
        elif "mls:Dataset" in types:
            out.datasets.append({"rank": rank, "label": attrs.get("prov:label"), **local_attrs(attrs)})
        elif "provml:Environment" in types:
            for key, value in attrs.items():
                if key != "prov:type":
                    out.environment.setdefault(key, value)
        elif "prov:Plan" in types and not out.source:
            out.source = {k: v for k, v in attrs.items() if k != "prov:type"}
    out.params = {key: value for key, (_n, value) in repeats.items()}
    return out


def _run_info(attrs: Dict[str, Any], rank: int) -> Dict[str, Any]:
    info: Dict[str, Any] = {f: attrs.get(f"provml:{f}") for f in RUN_FIELDS}
    info["rank"] = attrs.get("provml:rank", rank)
    info["start"], info["end"] = plain_time(attrs.get("prov:startTime")), plain_time(attrs.get("prov:endTime"))
    info["recorded_dir"] = attrs.get("prov:location")
    finals: Dict[str, Any] = {}
    notes: Dict[str, Any] = {}
    for key, value in attrs.items():
        prefix, _, local = key.partition(":")
        if prefix != "provml" or local in RUN_FIELDS:
            continue
        if local.startswith("final_"):
            finals[local[len("final_"):]] = value
        else:
            notes[local] = value
    folds = {}
    for name in list(finals):  # final_<name>_fold names the fold of final_<name>
        if name.endswith("_fold") and name[:-5] in finals and isinstance(finals[name], str):
            folds[name[:-5]] = finals.pop(name)
    info["final_metrics"], info["final_folds"], info["notes"] = finals, folds, notes
    return info


def local_attrs(attrs: Dict[str, Any], drop: Tuple[str, ...] = ("prov:type", "prov:label")) -> Dict[str, Any]:
    """A record's attributes by local name, without those named in ``drop`` (its type and label)."""
    return {k.partition(":")[2]: v for k, v in attrs.items() if k not in drop}


def plain_time(value: Any) -> Optional[datetime]:
    """An ISO time as an aware datetime (UTC when it names no zone); None for anything else."""
    if isinstance(value, datetime) or value is None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


#: Attributes a record may hold several times, read as lists (any other keeps its first value).
LISTS = frozenset({"provml:note", "provml:tag"})


class Names:
    """Attribute names and values of one document in prov4ml's canonical prefixes, values as Python values."""

    def __init__(self, prefixes: Any):
        self.rename: Dict[str, str] = {}
        for prefix, iri in (prefixes or {}).items():
            canon = _CANONICAL.get(iri)
            if canon is not None and canon != prefix:
                self.rename[prefix] = canon

    def name(self, qname: str) -> str:
        if self.rename:
            prefix, sep, local = qname.partition(":")
            if sep and prefix in self.rename:
                return f"{self.rename[prefix]}:{local}"
        return qname

    def types(self, attrs: Dict[str, Any]) -> set:
        value = attrs.get("prov:type", ())
        if not value and self.rename:  # prov:type under another prefix
            value = next((v for k, v in attrs.items() if self.name(k) == "prov:type"), ())
        values = value if isinstance(value, list) else [value]
        return {self.name(str(v["$"] if isinstance(v, dict) else v)) for v in values}

    def attrs(self, attrs: Dict[str, Any]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for key, value in attrs.items():
            key = self.name(key)
            if key == "prov:type":
                out[key] = self.types({key: value})
            elif key in LISTS:
                out[key] = [self.value(v) for v in (value if isinstance(value, list) else [value])]
            elif key == "prov:location":
                out[key] = json_location(value[0] if isinstance(value, list) and value else value)  # a path
            else:
                out[key] = self.value(value[0] if isinstance(value, list) and value else value)
        out.setdefault("prov:type", set())
        return out

    def value(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        raw, kind = value.get("$"), self.name(str(value.get("type", "")))
        try:
            if kind in ("xsd:int", "xsd:long", "xsd:integer", "xsd:short", "xsd:byte", "xsd:unsignedInt",
                        "xsd:unsignedLong", "xsd:nonNegativeInteger", "xsd:positiveInteger"):
                return int(raw)
            if kind in ("xsd:double", "xsd:float", "xsd:decimal"):
                return float(raw)  # float() reads prov's INF, -INF and NaN
            if kind == "xsd:boolean":
                return str(raw).lower() in ("true", "1")
            if kind == "xsd:dateTime":
                return plain_time(raw)
        except (TypeError, ValueError):
            pass
        return self.name(str(raw)) if kind == "xsd:QName" else raw
