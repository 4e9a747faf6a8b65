"""A run's records become a ``prov.model.ProvDocument``; docs/prov-mapping.md draws the result.

=================  ==========  =============================================  ==========================================
record             PROV        prov:type                                      relations (and ML-Schema properties)
=================  ==========  =============================================  ==========================================
experiment         activity    mls:Experiment, provml:Experiment              mls:hasPart the rank's run activity
run (all ranks)    entity      prov:Collection, provml:Run                    hadMember(run, this rank's document)
rank process       activity    mls:Run, provml:LearningStageExecution         wasAssociatedWith(user, plan, role researcher),
                                                                              (prov4ml, role recorder), (host, role host);
                                                                              mls:executes plan, mls:hasInput, mls:hasOutput,
                                                                              mls:hasPart its contexts
context            activity    provml:LearningStage + Training/Validation/...  wasStartedBy/wasEndedBy(context, starter=parent);
                                                                              parent mls:hasPart context
epoch              activity    provml:Epoch                                   started/ended by its context; context mls:hasPart epoch
hyper-parameter    entity      mls:HyperParameterSetting                      used(run, param); run mls:hasInput param
metric series      entity      provml:Metric (+ mls:ModelEvaluation for       wasGeneratedBy(series, context); an evaluation is
                               the metrics of validation/testing contexts)    mls:specifiedBy its mls:EvaluationMeasure, mls:hasValue
final metric       entity      provml:FinalMetric                             wasGeneratedBy(final, run)
model              entity      mls:Model                                      (the model across its versions; never generated)
model weights      entity      provml:Artifact, provml:ModelWeights           wasGeneratedBy(weights, run), specializationOf(weights, model),
                                                                              wasDerivedFrom(weights, identical last version)
model version      entity      mls:Model, provml:ModelVersion                 wasGeneratedBy(v, context or epoch), wasDerivedFrom(v, v-1,
                                                                              prov:Revision), specializationOf(v, model)
dataset            entity      mls:Dataset                                    used(run, dataset); run mls:hasInput dataset
source code        entity      prov:Plan, mls:Implementation                  plan of the researcher's association; its copy wasDerivedFrom it
environment        entity      provml:Environment                             used(run, environment)
artifact           entity      provml:Artifact                                wasGeneratedBy(copy, context), wasDerivedFrom(copy, original)
user               agent       prov:Person
prov4ml            agent       prov:SoftwareAgent                             actedOnBehalfOf(prov4ml, user)
host               agent       provml:Host
=================  ==========  =============================================  ==========================================

Each record kind is one method of :class:`Builder`; a record that feeds the
run (``is_input``, when a record carries it) is ``used`` by it.

Until the run ends, what goes on has no end (the run, its contexts, each context's last epoch) and what
grows (a series, a final metric) is a ``provml:Snapshot`` the complete entity is a revision of, so any
document of a run merges with its final one (:meth:`Builder.growing`, docs/prov-mapping.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from json.encoder import encode_basestring_ascii as _quote  # json.dumps's text of a str
from urllib.parse import quote
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ..context import Context
from ..metrics.formats import media_type
from ..records.model import ArtifactRecord, ModelVersionRecord, RunSnapshot, SeriesSummary
from . import vocabulary
from .names import CONTENT_IRI, FILES, NAMESPACES, RUNDIR, dir_iri, file_local, local_name, part, user_namespace_iri

__all__ = ["Builder", "build_document", "user_iri", "CONTEXT_TYPES", "ARTIFACT_TYPES", "SERIES_FIELDS", "EVALUATION_CONTEXTS",
           "SERIES_KINDS"]

CONTEXT_TYPES = {
    "training": "provml:Training",
    "validation": "provml:Validation",
    "testing": "provml:Evaluation",
    "evaluation": "provml:Evaluation",
}
#: Contexts whose metrics evaluate the model (ML-Schema's ModelEvaluation), with their sub-contexts.
EVALUATION_CONTEXTS = frozenset({"validation", "testing", "evaluation"})
ARTIFACT_TYPES = {
    "artifact": ("provml:Artifact",),
    "model": ("provml:Artifact", "provml:ModelWeights"),
    "model_version": ("provml:Artifact", "provml:ModelWeights"),
    "architecture": ("provml:Artifact", "provml:ModelArchitecture"),
    "diff": ("provml:Artifact", "provml:SourceDiff"),
    "source": ("provml:Artifact", "provml:SourceCode"),
    "model_card": ("provml:Artifact", "provml:ModelCard"),
    "layers": ("provml:Artifact", "provml:ModelLayers"),
    "layer_data": ("provml:Artifact", "provml:LayerData"),  # a wrapped model's layer inputs and outputs
    "weights": ("provml:Artifact", "provml:ModelWeights", "provml:LayerWeights"),  # one layer's weights at an epoch
}
SERIES_FIELDS = (  # SeriesSummary field -> attribute, in document order
    "name", "context", "source", "unit", "sampler", "count", "nan_count", "min", "max",
    "last", "mean", "first_step", "last_step", "first_time", "last_time",
)
#: The fields that change as points come (the others are known from the first point on)
SERIES_GROWING = ("count", "nan_count", "min", "max", "last", "mean", "last_step", "last_time")
#: Statuses of a run that stopped in the middle of a stage: the stage and its epoch get them as provml:outcome
STOPPED = ("failed", "interrupted", "terminated", "killed")
ROLES = {"user": "provml:researcher", "library": "provml:recorder", "host": "provml:host"}
#: the run note naming the run this one retries (prov4ml.sweep)
RETRY_NOTE = "retry_of"
_RANGES = vocabulary.RANGES
#: The PROV-JSON record kinds of the series' records (:meth:`Builder.series_records`)
SERIES_KINDS = ("entity", "wasGeneratedBy", "wasDerivedFrom")
_REVISION = '{"$": "prov:Revision", "type": "xsd:QName"}'
_STABLE = [(f, f"provml:{f}") for f in SERIES_FIELDS if f not in SERIES_GROWING]  # (field, attribute)


def user_iri(namespace: str, user: str) -> str:
    """The IRI of the user agent of a run (also the RO-Crate's agent)."""
    return user_namespace_iri(namespace) + local_name("agent", "user", user)


def _attr_key(name: str) -> str:
    """An ``other_attrs`` name: ``"dcterms:creator"`` (a known prefix) stays; ``"author"`` is the user's
    own term, ``ex:author``, in the run's namespace (not a prov4ml term)."""
    prefix, sep, local = name.partition(":")
    if sep and (prefix in NAMESPACES or prefix == "prov") and local:
        return name
    return f"ex:{local_name(name)}"


def _value(v: Any) -> Any:
    """Typed PROV literal: numbers, booleans and datetimes stay native, others become text."""
    if isinstance(v, (bool, int, float, datetime, str)):
        return str(v) if isinstance(v, Context) else v
    item = getattr(v, "item", None)  # NumPy scalars
    if callable(item):
        try:
            return _value(item())
        except Exception:  # a tensor of several elements, a meta tensor: recorded as text
            pass
    try:
        return str(v)
    except Exception:
        return f"<{type(v).__name__}>"


def _in_range(key: str, value: Any) -> Any:
    """A value as the vocabulary's range for ``key`` says: an integer of an ``xsd:long`` property is written
    ``xsd:long`` (``prov`` would write a small one ``xsd:int``), a number of an ``xsd:string`` one as text."""
    declared = vocabulary.RANGES.get(key)
    if declared is None or isinstance(value, bool):
        return value
    if declared == "xsd:long" and isinstance(value, int):
        from prov.constants import XSD_LONG
        from prov.model import Literal

        return Literal(str(value), XSD_LONG)
    if declared == "xsd:double" and isinstance(value, int):
        return float(value)
    if declared == "xsd:string" and not isinstance(value, str):
        return str(value)
    return value


def _json_text(key: str, v: Any) -> str:
    """A value of attribute ``key`` as the PROV-JSON text ``prov`` writes once it holds it (typed as :func:`_in_range`
    says), byte for byte as ``json.dumps`` would write that value.

    Text, doubles, longs and times (every value of a series) are written here; the rest as ``prov`` does."""
    kind = type(v)
    if kind is float and _RANGES.get(key) != "xsd:string":
        return f'{{"$": "{_double_text(v)}", "type": "xsd:double"}}'
    if kind is str:
        return _quote(v)
    if isinstance(v, str):
        return _quote(str(v))  # a Context is text
    if kind is int and _RANGES.get(key) == "xsd:long":
        return f'{{"$": "{v}", "type": "xsd:long"}}'
    if kind is datetime and _RANGES.get(key) != "xsd:string":
        return f'{{"$": "{_time_text(v)}", "type": "xsd:dateTime"}}'
    if hasattr(v, "uri"):
        return _qname_text(str(v))
    from prov.serializers.provjson import encode_json_representation

    return json.dumps(encode_json_representation(_in_range(key, _value(v))))


def _qname_text(name: str) -> str:
    return f'{{"$": {_quote(name)}, "type": "xsd:QName"}}'


def _types_text(types: Iterable[str]) -> str:
    """``prov:type``'s value: one QName, or a list of them."""
    qnames = [_qname_text(t) for t in types]
    return qnames[0] if len(qnames) == 1 else "[" + ", ".join(qnames) + "]"


def _plain(m: SeriesSummary) -> bool:
    """Whether ``m`` has the usual shape of a series with points, which :func:`_plain_entity_text` writes: text
    name and source, no unit, no sampler, integer counts and steps, float values, both times."""
    return (m.unit is None and m.sampler is None and type(m.name) is str and type(m.source) is str
            and type(m.count) is int and type(m.nan_count) is int and type(m.first_step) is int
            and type(m.last_step) is int and type(m.min) is float and type(m.max) is float and type(m.last) is float
            and type(m.mean) is float and type(m.first_time) is datetime and type(m.last_time) is datetime)


def _plain_entity_text(m: SeriesSummary, types: List[str], label: str, media: Optional[str], measure: Optional[str],
                       has_value: bool, location: Optional[str], last_time: str) -> str:
    """A :func:`_plain` series' entity, the text :meth:`Builder.json_text` writes for it, from one template: a run's
    100,000 series are most of its document. ``last_time``: the text of ``m.last_time``."""
    finite = m.min - m.min == 0 == m.max - m.max and m.last - m.last == 0 == m.mean - m.mean  # their repr, then
    key = (tuple(types), media, measure is not None, has_value, location is not None, finite)
    template = _TEMPLATES.get(key)
    if template is None:
        template = _TEMPLATES[key] = _entity_template(*key)
    values = [_quote(m.name), _quote(str(m.context)), _quote(m.source), m.first_step, _time_text(m.first_time),
              _quote(label)]
    if measure is not None:
        values.append(_quote(measure))
    doubles = [m.min, m.max, m.last, m.mean]
    if not finite:
        doubles = [_double_text(v) for v in doubles]
    values += [m.count, m.nan_count, *doubles, m.last_step, last_time]
    if has_value:
        values.append(doubles[2])  # the last value
    if location is not None:
        values.append(_quote(location))
    return template % tuple(values)


def _entity_template(types: Tuple[str, ...], media: Optional[str], measure: bool, has_value: bool,
                     location: bool, finite: bool) -> str:
    """The ``%`` template of :func:`_plain_entity_text` (json.dumps's layout, as :meth:`Builder.json_text`);
    ``finite``: the doubles are given as floats (their repr is xsd:double's form), else as their text."""
    def typed(xsd: str) -> str:
        return f'{{"$": "{"%r" if finite and xsd == "xsd:double" else "%s"}", "type": "{xsd}"}}'

    parts = [f'"prov:type": {_types_text(types).replace("%", "%%")}',
             '"provml:name": %s', '"provml:context": %s', '"provml:source": %s',
             f'"provml:first_step": {typed("xsd:long")}', f'"provml:first_time": {typed("xsd:dateTime")}',
             '"prov:label": %s']
    if media is not None:
        parts.append(f'"provml:format": {_quote(media).replace("%", "%%")}')
    if measure:
        parts.append('"mls:specifiedBy": {"$": %s, "type": "xsd:QName"}')
    parts += [f'"provml:count": {typed("xsd:long")}', f'"provml:nan_count": {typed("xsd:long")}']
    parts += [f'"provml:{f}": {typed("xsd:double")}' for f in ("min", "max", "last", "mean")]
    parts += [f'"provml:last_step": {typed("xsd:long")}', f'"provml:last_time": {typed("xsd:dateTime")}']
    if has_value:
        parts.append(f'"mls:hasValue": {typed("xsd:double")}')
    if location:
        parts.append('"prov:location": {"$": %s, "type": "xsd:QName"}')
    return "{" + ", ".join(parts) + "}"


_TEMPLATES: Dict[Tuple[Any, ...], str] = {}
_URI_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote(..., safe="/-._~") leaves as it is (a file name has no /)


def _suffix(path: str) -> str:
    """``posixpath.splitext(path)[1]`` (a location is a POSIX path), without its cost: a run's 100,000 series."""
    name = path[path.rfind("/") + 1:]
    dot = name.rfind(".")
    return name[dot:] if dot > 0 and name[:dot].strip(".") else ""


def _double_text(v: float) -> str:
    """xsd:double's lexical form: INF, -INF and NaN for the non-finite values, the shortest repr otherwise."""
    if v - v == 0:  # finite (NaN and the infinities give NaN)
        return float.__repr__(v)
    if v != v:
        return "NaN"
    return "INF" if v > 0 else "-INF"


def _time_text(t: datetime) -> str:
    """xsd:dateTime's form: ISO 8601, in UTC where the offset is not a whole number of minutes (as ``prov`` writes it)."""
    if t.tzinfo is timezone.utc:  # a series' times: the common case, nothing to convert
        return t.isoformat()
    offset = t.utcoffset()
    if offset is not None and (offset.total_seconds() % 60 or offset.microseconds):
        t = t.astimezone(timezone.utc)
    return t.isoformat()


def _state_digest(values: Dict[str, Any]) -> str:
    """The name part of a snapshot of a growing entity: a digest of its ``values``."""
    state = hashlib.sha1(repr([(k, _value(v)) for k, v in values.items()]).encode("utf-8", "surrogatepass"))
    return state.hexdigest()[:12]


def _depth(ctx: Context) -> int:
    depth = 0
    while ctx.parent is not None:
        depth, ctx = depth + 1, ctx.parent
    return depth


def _is_evaluation(ctx: Optional[Context]) -> bool:
    while ctx is not None:
        if str(ctx) in EVALUATION_CONTEXTS:
            return True
        ctx = ctx.parent
    return False


class Builder:
    """Builds one rank's document; each ``add_*`` method maps one kind of record."""

    def __init__(self, snap: RunSnapshot) -> None:
        from prov.model import ProvDocument

        self.snap = snap
        self.doc = ProvDocument()
        for prefix, iri in NAMESPACES.items():
            self.doc.add_namespace(prefix, iri)
        self.ns = self.doc.add_namespace("ex", user_namespace_iri(snap.user_namespace))
        self.files = self.doc.add_namespace(RUNDIR, dir_iri(snap.run_dir))
        self.elsewhere = None  # the fs: namespace, bound when a file outside the run is named
        self.base = (snap.experiment_name, f"run_{snap.run_id}", f"rank{snap.rank}")
        self.run = None
        self.contexts: Dict[Context, Any] = {}
        self.epochs: List[Tuple[Context, int, Any, Optional[datetime], Optional[datetime]]] = []
        self.originals: Dict[Any, Any] = {}  # the plan by its path; other originals by (path, sha256)
        self.contents = None  # the namespace of content entities, once a file has a digest
        self.used_ids: Dict[str, int] = {}
        self.run_parts: Dict[str, List[Any]] = {"mls:hasPart": [], "mls:hasInput": [], "mls:hasOutput": [], "mls:executes": []}

    # -- names ---------------------------------------------------------------------
    def qn(self, *parts: Any):
        return self.ns[local_name(*self.base, *parts)]

    def fresh(self, *parts: Any):
        """Like ``qn``, with a ``-2``, ``-3``... suffix when a name was recorded twice (a dataset label, say)."""
        local = local_name(*self.base, *parts)
        n = self.used_ids.get(local, 0) + 1
        self.used_ids[local] = n
        return self.ns[local if n == 1 else f"{local}-{n}"]

    def q(self, name: str):
        """A prefixed name as a QualifiedName, so it serialises as one."""
        return self.doc.valid_qualified_name(name)

    def location(self, path: Optional[str]):
        """A file's IRI: ``rundir:<relative path>`` inside the run, ``fs:<absolute path>`` elsewhere."""
        if path is None:
            return None
        if not path.startswith("/"):
            return self.files[file_local(path)]
        if self.elsewhere is None:
            self.elsewhere = self.doc.add_namespace(FILES, "file:///")
        return self.elsewhere[file_local(path)]

    def attrs(self, types: Iterable[str], values: Dict[str, Any], extra: Iterable[Tuple[str, Any]] = ()) -> List[Tuple[str, Any]]:
        """``extra``: the caller's ``other_attrs`` (see ``_attr_key``)."""
        out: List[Tuple[str, Any]] = [("prov:type", self.q(t)) for t in types]
        values = {**values, **{_attr_key(k): v for k, v in extra}}
        for key, v in values.items():
            if v is None:
                continue
            for item in (v if isinstance(v, list) else [v]):
                out.append((key, item if hasattr(item, "uri") else _in_range(key, _value(item))))
        return out

    @staticmethod
    def facts(values: Dict[str, Any]) -> Dict[str, Any]:
        """Free-form facts as ``provml:<key>`` where the vocabulary has the key, else ``provml:note`` 'key: value'."""
        out: Dict[str, Any] = {}
        notes = []
        for key, value in values.items():
            if value is None:
                continue
            if vocabulary.known_property(key):
                out[f"provml:{key}"] = value
            else:
                notes.append(f"{key}: {_value(value)}")
        if notes:
            out["provml:note"] = notes
        return out

    @staticmethod
    def json_text(types: Iterable[str], values: Dict[str, Any], location: Optional[str] = None) -> str:
        """What :meth:`attrs` says, as the PROV-JSON text (``json.dumps``'s) of a record holding it, one value per
        attribute; ``location``: a ``prov:location`` QName, last."""
        types = list(types)
        parts = [f'"prov:type": {_types_text(types)}'] if types else []
        parts.extend(f"{_quote(key)}: {_json_text(key, v)}" for key, v in values.items() if v is not None)
        if location is not None:
            parts.append(f'"prov:location": {_qname_text(location)}')
        return "{" + ", ".join(parts) + "}"

    # -- the document ----------------------------------------------------------------
    def build(self, series: bool = True):
        """The document as ``prov`` objects; ``series=False``: without the series' records, which
        :meth:`series_records` gives as PROV-JSON (the namespaces and run attributes they need are in)."""
        s = self.snap
        user = self.doc.agent(
            self.ns[local_name("agent", "user", s.user)],  # user_iri
            self.attrs(["prov:Person"], {"prov:label": s.user}),
        )
        lib = self.doc.agent(
            "provml:prov4ml",
            self.attrs(["prov:SoftwareAgent"], {"prov:label": "prov4ml", "provml:software_version": s.library_version}),
        )
        self.doc.actedOnBehalfOf(lib, user)
        host_name = str(s.environment.get("host", "")) or "localhost"
        host = self.doc.agent(
            self.ns[local_name("agent", "host", host_name)], self.attrs(["provml:Host"], {"prov:label": host_name}),
        )
        self.add_run()
        plan = self.add_source_code()
        for agent, role, with_plan in ((user, "user", plan), (lib, "library", None), (host, "host", None)):
            self.doc.wasAssociatedWith(self.run, agent, with_plan, other_attributes={"prov:role": self.q(ROLES[role])})
        self.add_experiment()
        self.add_environment()
        for ctx in s.contexts:
            self.context(ctx)
        epochs = list(getattr(s, "epochs", ()))  # a journal written before epochs existed has none
        last = {e.context: i for i, e in enumerate(epochs)}
        for i, epoch in enumerate(epochs):
            self.add_epoch(epoch, last[epoch.context] == i)
        self.mark_where_it_stopped()
        self.add_params()
        self.prepare_series()
        if series:
            self.add_series()
        self.add_final_metrics()
        for art in s.artifacts:
            self.add_artifact(art)
        self.add_models()
        self.add_datasets()
        self.run.add_attributes([(k, v) for k, values in self.run_parts.items() for v in values])
        return self.doc

    def add_run(self) -> None:
        s = self.snap
        values: Dict[str, Any] = {
            "prov:label": f"{s.experiment_name} run {s.run_id} rank {s.rank}",
            "provml:experiment": s.experiment_name,
            "provml:run_id": s.run_id,
            "provml:rank": s.rank,
            "provml:status": s.status,
            "provml:command": s.command,
        }
        if s.error:
            values["provml:error_type"], values["provml:error_message"] = s.error
        values.update(self.facts({k: v for k, v in s.notes.items() if k != RETRY_NOTE}))
        retried = s.notes.get(RETRY_NOTE)
        if retried is not None:  # sweep(retries=...): a retry of a failed run, not a consumer of its data
            values["provml:retryOf"] = self.ns[local_name(s.experiment_name, f"run_{retried}", "rank0")]
        self.run = self.doc.activity(
            self.qn(), s.start_time, s.end_time,
            self.attrs(["mls:Run", "provml:LearningStageExecution"], values),
        )
        if retried is not None:
            failed = self.doc.activity(values["provml:retryOf"], other_attributes=self.attrs(
                ["mls:Run", "provml:LearningStageExecution"],
                {"prov:label": f"{s.experiment_name} run {retried} rank 0", "provml:run_id": int(retried)}))
            self.doc.wasInfluencedBy(self.run, failed)
        self.doc.wasStartedBy(self.run, time=s.start_time)
        if s.end_time is not None:
            self.doc.wasEndedBy(self.run, time=s.end_time)

    def add_experiment(self) -> None:
        """ML-Schema's experiment is a process whose parts are runs: an activity (docs/prov-mapping.md)."""
        s = self.snap
        self.doc.activity(
            self.ns[local_name(s.experiment_name)], None, None,
            self.attrs(["mls:Experiment", "provml:Experiment"], {"prov:label": s.experiment_name, "mls:hasPart": self.run.identifier}),
        )
        run = self.doc.entity(
            self.ns[local_name(s.experiment_name, f"run_{s.run_id}")],
            self.attrs(["prov:Collection", "provml:Run"], {"prov:label": f"{s.experiment_name} run {s.run_id}", "provml:run_id": s.run_id}),
        )
        record = self.doc.entity(
            self.qn("document"),
            self.attrs(["provml:ProvenanceDocument"], {
                "prov:label": f"prov_rank{s.rank}.json", "prov:location": self.location(f"prov_rank{s.rank}.json"),
                "provml:rank": s.rank,
            }),
        )
        self.doc.hadMember(run, record)
        self.doc.wasGeneratedBy(record, self.run)

    def add_source_code(self):
        """The plan: the script as it was, with the hash of the copy the run made of it."""
        s = self.snap
        if not s.source_code:
            return None
        git = {k: v for k, v in s.environment.items() if k.startswith("git_")}
        copy = next((a for a in s.artifacts if a.role == "source" and a.original == s.source_code), None)
        values: Dict[str, Any] = {
            "prov:label": s.source_code.rsplit("/", 1)[-1],
            "prov:location": self.location(s.source_code),
            "provml:sha256": None if copy is None or copy.is_dir else copy.sha256,
        }
        values.update(self.facts(git))
        plan = self.doc.entity(self.qn("source"), self.attrs(["prov:Plan", "mls:Implementation"], values))
        self.originals[s.source_code] = plan
        self.run_parts["mls:executes"].append(plan.identifier)
        return plan

    def add_environment(self) -> None:
        env = {k: v for k, v in self.snap.environment.items() if k != "host"}  # the host is an agent
        if self.snap.source_code:  # git facts go on the source-code entity then
            env = {k: v for k, v in env.items() if not k.startswith("git_")}
        if env:
            values = {"prov:label": "environment", **self.facts(env)}
            e = self.doc.entity(self.qn("environment"), self.attrs(["provml:Environment"], values))
            self.doc.used(self.run, e)

    def context(self, ctx: Context):
        """The activity of a context; its parent (another context, or the run) starts and ends it."""
        act = self.contexts.get(ctx)
        if act is not None:
            return act
        start, end = self.snap.contexts.get(ctx, (None, None))
        end = self.until_ended(end)
        types = ["provml:LearningStage", CONTEXT_TYPES.get(str(ctx), "provml:LearningStage")]
        values: Dict[str, Any] = {"prov:label": str(ctx), "provml:context": str(ctx),
                                  "provml:source_of_data": getattr(ctx, "source_of_data", None)}
        if ctx.parent is not None:
            values["provml:parent_context"] = str(ctx.parent)
        act = self.contexts[ctx] = self.doc.activity(
            self.qn("context", ctx), start, end, self.attrs(dict.fromkeys(types), values),
        )
        parent = self.context(ctx.parent) if ctx.parent is not None else self.run
        self.has_part(parent, act)
        self.doc.wasStartedBy(act, starter=parent, time=start)
        if end is not None:
            self.doc.wasEndedBy(act, ender=parent, time=end)
        return act

    def until_ended(self, end: Optional[datetime]) -> Optional[datetime]:
        """``end`` once the run has ended, else None: a stage (or its last epoch) ends with the run, so a document
        read mid-run says nothing of an end the final document would contradict (docs/prov-mapping.md)."""
        return end if self.snap.end_time is not None else None

    def mark_where_it_stopped(self) -> None:
        """A run that failed (or was interrupted, terminated, killed) gives its status as ``provml:outcome`` to the
        stage it was in: the
        context of its last record (of contexts ending together, the deepest sub-context), and to that stage's last
        epoch (else to the last epoch of its nearest parent that has epochs)."""
        s = self.snap
        if s.end_time is None or s.status not in STOPPED or not s.contexts:
            return
        ctx = max(s.contexts, key=lambda c: (s.contexts[c][1] or s.start_time, _depth(c)))
        marked = [self.context(ctx)]
        node: Optional[Context] = ctx
        while node is not None:
            epochs = [act for c, _n, act, _start, _end in self.epochs if c == node]
            if epochs:
                marked.append(epochs[-1])
                break
            node = node.parent
        for act in marked:
            act.add_attributes([("provml:outcome", s.status)])

    def has_part(self, whole, part) -> None:
        if whole is self.run:
            self.run_parts["mls:hasPart"].append(part.identifier)
        else:
            whole.add_attributes([("mls:hasPart", part.identifier)])

    def add_epoch(self, epoch, last: bool = False) -> None:
        """An epoch lasts until the next mark of its context; the ``last`` one, until the run ends."""
        ctx = epoch.context
        end = self.until_ended(epoch.end) if last else epoch.end  # the next mark ended it
        act = self.doc.activity(
            self.qn("context", ctx, "epoch", epoch.epoch), epoch.start, end,
            self.attrs(["provml:Epoch"], {"prov:label": f"{ctx} epoch {epoch.epoch}", "provml:epoch": epoch.epoch,
                                          "provml:context": str(ctx)}),
        )
        parent = self.context(ctx)
        self.has_part(parent, act)
        self.doc.wasStartedBy(act, starter=parent, time=epoch.start)
        if end is not None:
            self.doc.wasEndedBy(act, ender=parent, time=end)
        self.epochs.append((ctx, epoch.epoch, act, epoch.start, end))

    def activity_for(self, ctx: Optional[Context], when: Optional[datetime] = None):
        """The activity a record of ``ctx`` at ``when`` comes from: its epoch, its context, or the run."""
        if ctx is None:
            return self.run
        if when is not None:
            for c, _n, act, start, end in reversed(self.epochs):
                if c == ctx and start is not None and start <= when and (end is None or when <= end):
                    return act
        return self.context(ctx)

    def add_params(self) -> None:
        for p in self.snap.params:
            values: Dict[str, Any] = {"prov:label": p.key, "prov:value": p.value, "provml:context": p.context,
                                      "provml:source": p.source}
            if p.value is None:
                values["provml:is_none"] = True
            e = self.doc.entity(self.qn("param", p.key), self.attrs(["mls:HyperParameterSetting"], values))
            # a setting is used by the run; one logged with is_input=False is a result of its context
            self.produced(p, e, self.run if p.is_input else self.activity_for(p.context), None)

    def prepare_series(self) -> None:
        """What the series' records need of the rest: their activities, namespaces, and the run's outputs."""
        self.series_contexts: Dict[Context, Tuple[str, str, bool]] = {}  # name prefix, activity, evaluation
        self.series_folders: Dict[str, str] = {}
        self.snapshot_names: Dict[int, str] = {}  # while the run runs: each series' snapshot, named once
        self.series_idents: Dict[int, str] = {}  # each series' name, made once for its records of every kind
        self.last_times: Dict[int, str] = {}  # a series' last time as its entity wrote it, for its generation
        self.media_types: Dict[str, Optional[str]] = {}
        for m in self.snap.series:
            ctx = m.context
            if ctx not in self.series_contexts:
                self.series_contexts[ctx] = (f"ex:{local_name(*self.base, 'metric', ctx)}",
                                             str(self.activity_for(ctx).identifier), _is_evaluation(ctx))
            if m.location is not None and m.location.startswith("/"):
                self.location(m.location)  # binds fs:
            if m.source == "metric" and self.series_contexts[ctx][2]:
                self.run_parts["mls:hasOutput"].append(self.doc.valid_qualified_name(self.series_state(m)[2]))

    def series_state(self, m: SeriesSummary, values: bool = True) -> Tuple[str, Dict[str, Any], str]:
        """A series' identifier, its growing values (empty unless ``values``), and the identifier of the entity
        generated (see :meth:`growing`)."""
        # local_name(..., context, name): its parts are NCName characters, so the context's prefix decides its start
        ident = self.series_idents.get(id(m))
        if ident is None:
            ident = self.series_idents[id(m)] = f"{self.series_contexts[m.context][0]}.{part(m.name)}"
        growing = self.growing_values(m) if values else {}
        if self.snap.end_time is not None:
            return ident, growing, ident
        generated = self.snapshot_names.get(id(m))  # the series outlive the builder's passes: id() stays theirs
        if generated is None:
            generated = self.snapshot_names[id(m)] = f"{ident}.snapshot.{_state_digest(growing or self.growing_values(m))}"
        return ident, growing, generated

    def growing_values(self, m: SeriesSummary) -> Dict[str, Any]:
        growing: Dict[str, Any] = {f"provml:{f}": getattr(m, f) for f in SERIES_GROWING}
        if m.source == "metric" and self.series_contexts[m.context][2]:
            growing["mls:hasValue"] = m.last
        return growing

    def series_location(self, path: Optional[str]) -> Optional[str]:
        """The QName of ``location(path)``, one ``location`` per folder: the many files of a folder differ
        in their last segment only, which the path's normalisation leaves as it is."""
        if path is None:
            return None
        folder, _, name = path.rpartition("/")
        if not folder.strip("/") or name in ("", ".", ".."):
            return str(self.location(path))
        prefix = self.series_folders.get(folder)
        if prefix is None:
            prefix = self.series_folders[folder] = str(self.location(folder))
        return f"{prefix}/{name if _URI_SAFE.fullmatch(name) else quote(name, safe='/-._~')}"

    def media_type(self, path: Optional[str]) -> Optional[str]:
        """``media_type(path)``, which depends on the suffix alone, once per suffix."""
        if path is None:
            return None
        suffix = _suffix(path)
        if suffix not in self.media_types:
            self.media_types[suffix] = media_type(path)
        return self.media_types[suffix]

    def add_series(self) -> None:
        """The series' records as ``prov`` objects (read from their PROV-JSON: one mapping for both)."""
        from prov.serializers.provjson import decode_json_container

        container: Dict[str, Dict[str, Any]] = {}
        for kind in SERIES_KINDS:
            for n, (ident, text) in enumerate(self.series_records(kind)):
                container.setdefault(kind, {})[ident or f"_:series{n}"] = json.loads(text)
        decode_json_container(container, self.doc)

    def series_records(self, kind: str) -> Iterator[Tuple[Optional[str], str]]:
        """The series' records of one PROV-JSON ``kind`` (of :data:`SERIES_KINDS`) as ``(identifier, content)``,
        the content as ``json.dumps`` writes it; a relation's identifier is None. Made one at a time, so a run's
        many series are never all held.

        A series is ``growing`` (see :meth:`growing`); a metric of an evaluation context is an
        ``mls:ModelEvaluation`` specified by its measure."""
        ended = self.snap.end_time is not None
        measures: Dict[str, Any] = {}
        if kind not in SERIES_KINDS or (kind == "wasDerivedFrom" and ended):
            return
        for m in self.snap.series:
            plain = kind == "entity" and _plain(m)
            ident, growing, generated = self.series_state(m, kind == "entity" and not plain)
            _prefix, activity, evaluation = self.series_contexts[m.context]
            evaluation = evaluation and m.source == "metric"  # mls:hasValue and a measure
            if kind == "wasGeneratedBy":
                last = self.last_times.pop(id(m), None)
                if last is None and m.last_time is not None:
                    last = _time_text(m.last_time)
                time = "" if last is None else f', "prov:time": "{last}"'
                yield None, f'{{"prov:entity": {_quote(generated)}, "prov:activity": {_quote(activity)}{time}}}'
            elif kind == "wasDerivedFrom" and not ended:
                yield None, (f'{{"prov:generatedEntity": {_quote(ident)}, "prov:usedEntity": {_quote(generated)}, '
                             f'"prov:type": {_REVISION}}}')
            elif kind == "entity":
                label = f"{m.name} ({m.context})"
                media = self.media_type(m.location)
                types = ["provml:Metric"]
                measure = None
                if evaluation:
                    types.append("mls:ModelEvaluation")
                    measure = f"ex:{local_name(self.snap.experiment_name, 'measure', m.name)}"
                    if measure not in measures:
                        measures[measure] = self.doc.valid_qualified_name(measure)
                        yield measure, self.json_text(["mls:EvaluationMeasure", "provml:EvaluationMeasure"],
                                                      {"prov:label": m.name})
                if not ended:
                    yield ident, f'{{"prov:label": {_quote(label)}}}'
                    types.append("provml:Snapshot")
                location = self.series_location(m.location)
                if plain:
                    last = self.last_times[id(m)] = _time_text(m.last_time)
                    yield generated, _plain_entity_text(m, types, label, media, measure and str(measures[measure]),
                                                        evaluation, location, last)
                    continue
                stable: Dict[str, Any] = {key: getattr(m, f) for f, key in _STABLE}
                stable["prov:label"] = label
                stable["provml:format"] = media
                if measure is not None:
                    stable["mls:specifiedBy"] = measures[measure]
                stable.update(growing)
                yield generated, self.json_text(types, stable, location)

    def add_final_metrics(self) -> None:
        for fm in self.snap.final_metrics:
            stable = {"prov:label": f"final {fm.name}", "provml:name": fm.name, "provml:fold": fm.operation_name}
            growing = {"prov:value": fm.value, "provml:fold_error": fm.error or None}
            self.growing(self.qn("final", fm.name), ["provml:FinalMetric"], stable, growing, self.run, self.snap.end_time)

    def growing(self, ident, types: List[str], stable: Dict[str, Any], values: Dict[str, Any], activity: Any,
                when: Optional[datetime]):
        """An entity that grows while the run records: a metric series, a fold's value.

        Once the run has ended it is ``ident``, complete (``stable`` facts and ``values``), generated
        at ``when``. Before that ``ident`` is not complete, so not generated and not described: the document
        holds a ``provml:Snapshot`` in its place (the same types, ``stable`` facts and ``values``), generated at
        ``when``, which ``ident`` is a revision of. A snapshot's name ends with a digest of its values, so two
        documents that saw the same state name the same snapshot, and any documents of a run merge
        (docs/prov-mapping.md, "Documents that merge").
        """
        if self.snap.end_time is not None:
            e = self.doc.entity(ident, self.attrs(types, {**stable, **values}))
            self.doc.wasGeneratedBy(e, activity, when)
            return e
        whole = self.doc.entity(ident, self.attrs((), {"prov:label": stable["prov:label"]}))
        e = self.doc.entity(self.ns[f"{ident.localpart}.snapshot.{_state_digest(values)}"],
                            self.attrs([*types, "provml:Snapshot"], {**stable, **values}))
        self.doc.wasGeneratedBy(e, activity, when)
        self.doc.wasDerivedFrom(whole, e, other_attributes={"prov:type": self.q("prov:Revision")})
        return e

    def produced(self, record: Any, entity: Any, activity: Any, when: Optional[datetime]) -> None:
        """A record's file came out of ``activity`` (wasGeneratedBy), or fed it when the record says ``is_input``."""
        if getattr(record, "is_input", False):
            self.doc.used(activity, entity, when)
            if activity is self.run:
                self.run_parts["mls:hasInput"].append(entity.identifier)
        else:
            self.doc.wasGeneratedBy(entity, activity, when)

    def original(self, path: str, art: Optional[ArtifactRecord] = None):
        """The file an artifact was copied from (the plan, for the script): one entity per path and content.

        With ``art``, the original holds the bytes the copy was made of: their digest, and the shared content.
        """
        plan = self.originals.get(path)  # the script: the plan, known by its path alone
        if plan is not None:
            return plan
        sha = art.sha256 if art is not None else None
        orig = self.originals.get((path, sha))
        if orig is None:
            digest = hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:12]
            ident = self.qn("original", digest)
            values: Dict[str, Any] = {"prov:label": path.rsplit("/", 1)[-1], "prov:location": self.location(path)}
            if sha:
                values.update({"provml:sha256": sha, "provml:size_bytes": art.size})
                if self.doc.get_record(ident):  # the same path copied again with other bytes: the file changed
                    ident = self.qn("original", digest, sha[:12])
            orig = self.originals[(path, sha)] = self.doc.entity(ident, self.attrs(["provml:SourceFile"], values))
            if sha:
                self.same_bytes(orig, art)
        return orig

    def same_bytes(self, entity: Any, art: Any) -> None:
        """``entity`` holds the bytes ``art.sha256`` names (of ``art.size`` or ``art.size_bytes``): a specialization
        of their content entity.

        The content entity (``content:sha256-<hex>``, one IRI for the same bytes
        in every document) is generated by no run, so runs written apart on any
        machine meet in it when their documents are merged or joined.
        """
        if not art.sha256:
            return
        if self.contents is None:
            self.contents = self.doc.add_namespace("content", CONTENT_IRI)
        ident = self.contents[f"sha256-{art.sha256}"]
        if not self.doc.get_record(ident):
            size = getattr(art, "size", None) if hasattr(art, "size") else getattr(art, "size_bytes", None)
            self.doc.entity(ident, self.attrs(["provml:Content"], {
                "prov:label": f"sha256:{art.sha256[:12]}", "provml:sha256": art.sha256, "provml:size_bytes": size}))
        self.doc.specializationOf(entity, ident)

    def add_artifact(self, art: ArtifactRecord, types: Tuple[str, ...] = (), extra: Optional[Dict[str, Any]] = None, ident=None):
        values = {
            "prov:label": art.name,
            "prov:location": self.location(art.location),
            "provml:sha256": art.sha256,
            "provml:size_bytes": art.size,
            "provml:is_directory": art.is_dir,
            "provml:step": art.step,
            "provml:context": art.context,
            "provml:created": art.time,
            "provml:source": art.source,
        }
        values.update(extra or {})
        e = self.doc.entity(ident or self.qn("artifact", art.location),
                            self.attrs(ARTIFACT_TYPES[art.role] + types, values, art.attributes))
        activity = self.activity_for(art.context, art.time)
        copied = art.original is not None and art.original != art.location
        if art.is_input and copied:  # the run used the file where it was; the copy is the run's own
            original = self.original(art.original, art)
            self.produced(art, original, activity, art.time)
            self.doc.wasGeneratedBy(e, activity, art.time)
            self.doc.wasDerivedFrom(e, original)
        else:
            self.produced(art, e, activity, art.time)
            if copied:
                self.doc.wasDerivedFrom(e, self.original(art.original, art))
        self.same_bytes(e, art)
        return e

    def model(self, name: str):
        """The model across its versions: never generated itself, so its versions may come at any time."""
        ident = self.qn("model", name)
        if not self.doc.get_record(ident):
            self.doc.entity(ident, self.attrs(["mls:Model"], {"prov:label": name}))
            self.run_parts["mls:hasOutput"].append(ident)
        return ident

    def add_models(self) -> None:
        versions = []
        for v in self.snap.versions:
            e = self.add_artifact(
                v.artifact, ("mls:Model", "provml:ModelVersion"),
                {"provml:model_name": v.model_name, "provml:version": v.version,
                 "prov:label": f"{v.model_name} v{v.version}" + ("" if v.artifact.step is None else f" (step {v.artifact.step})")},
                ident=self.qn("model_version", v.model_name, v.version),
            )
            versions.append((v, e))
            if v.previous is not None:
                self.doc.wasDerivedFrom(e, versions[v.previous][1], other_attributes={"prov:type": self.q("prov:Revision")})
            self.doc.specializationOf(e, self.model(v.model_name))
            self.run_parts["mls:hasOutput"].append(e.identifier)
        self.evaluations_used(versions)
        for m in self.snap.models:
            model = self.model(m.name)
            info = self.doc.get_record(model)[0]
            facts = {**self.facts(m.info), "provml:context": m.context, "provml:source": m.source}
            info.add_attributes(self.attrs((), facts, m.attributes))
            if m.is_input:  # a model the run started from (pretrained): used, not produced
                self.doc.used(self.activity_for(m.context), model)
                self.run_parts["mls:hasInput"].append(model)
            if m.artifact is not None:
                weights = self.add_artifact(m.artifact)
                self.doc.specializationOf(weights, model)
                same = [e for v, e in versions if v.model_name == m.name and v.artifact.sha256 == m.artifact.sha256
                        and v.artifact.time <= m.artifact.time]
                if same:  # the file log_model wrote holds the bytes of the last version saved before it
                    self.doc.wasDerivedFrom(weights, same[-1])
            for part in (m.architecture, m.layers):
                if part is not None:
                    self.doc.wasDerivedFrom(self.add_artifact(part), model)

    def evaluations_used(self, versions: List[Tuple[ModelVersionRecord, Any]]) -> None:
        """An evaluation epoch used, of each model, the version saved last before it began: the weights it measured."""
        for ctx, _n, act, start, _end in self.epochs:
            if start is None or not _is_evaluation(ctx):
                continue
            latest: Dict[str, Any] = {}
            for v, e in versions:
                if v.artifact.time is not None and v.artifact.time <= start:
                    latest[v.model_name] = e
            for e in latest.values():
                self.doc.used(act, e, start)

    def add_datasets(self) -> None:
        for d in self.snap.datasets:
            values = {"prov:label": d.label, **self.facts(d.stats), "provml:context": d.context, "provml:source": d.source}
            location = getattr(d, "location", None)  # a journal written before datasets had digests has none
            if location:
                values.update({"prov:location": self.location(location), "provml:digest": d.digest,
                               "provml:digestMethod": d.digest_method, "provml:size_bytes": d.size_bytes,
                               "provml:sha256": d.sha256})
            e = self.doc.entity(self.fresh("dataset", d.label), self.attrs(["mls:Dataset"], values, d.attributes))
            if getattr(d, "sha256", None):
                self.same_bytes(e, d)
            activity = self.activity_for(d.context)
            self.doc.used(activity, e)
            if activity is self.run:
                self.run_parts["mls:hasInput"].append(e.identifier)


def build_document(snapshot: RunSnapshot):
    """The ``ProvDocument`` of one rank of one run."""
    return Builder(snapshot).build()
