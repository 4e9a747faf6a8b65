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
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..context import Context
from ..metrics.formats import media_type
from ..records.model import ArtifactRecord, RunSnapshot
from . import vocabulary
from .names import CONTENT_IRI, FILES, NAMESPACES, RUNDIR, dir_iri, file_local, local_name, user_namespace_iri

__all__ = ["Builder", "build_document", "user_iri", "CONTEXT_TYPES", "ARTIFACT_TYPES", "SERIES_FIELDS", "EVALUATION_CONTEXTS"]

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
ROLES = {"user": "provml:researcher", "library": "provml:recorder", "host": "provml:host"}
#: the run note naming the run this one retries (prov4ml.sweep)
RETRY_NOTE = "retry_of"


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
                out.append((key, item if hasattr(item, "uri") else _value(item)))
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

    # -- the document ----------------------------------------------------------------
    def build(self):
        s = self.snap
        user = self.doc.agent(
            self.ns[local_name("agent", "user", s.user)],  # user_iri
            self.attrs(["prov:Person"], {"prov:label": s.user}),
        )
        lib = self.doc.agent(
            "provml:prov4ml",
            self.attrs(["prov:SoftwareAgent"], {"prov:label": "prov4ml", "provml:version": s.library_version}),
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
        for epoch in getattr(s, "epochs", ()):  # a journal written before epochs existed has none
            self.add_epoch(epoch)
        self.add_params()
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

    def has_part(self, whole, part) -> None:
        if whole is self.run:
            self.run_parts["mls:hasPart"].append(part.identifier)
        else:
            whole.add_attributes([("mls:hasPart", part.identifier)])

    def add_epoch(self, epoch) -> None:
        ctx = epoch.context
        act = self.doc.activity(
            self.qn("context", ctx, "epoch", epoch.epoch), epoch.start, epoch.end,
            self.attrs(["provml:Epoch"], {"prov:label": f"{ctx} epoch {epoch.epoch}", "provml:epoch": epoch.epoch,
                                          "provml:context": str(ctx)}),
        )
        parent = self.context(ctx)
        self.has_part(parent, act)
        self.doc.wasStartedBy(act, starter=parent, time=epoch.start)
        if epoch.end is not None:
            self.doc.wasEndedBy(act, ender=parent, time=epoch.end)
        self.epochs.append((ctx, epoch.epoch, act, epoch.start, epoch.end))

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

    def measure(self, name: str):
        """The evaluation measure a metric name stands for, one per experiment."""
        ident = self.ns[local_name(self.snap.experiment_name, "measure", name)]
        if self.doc.get_record(ident):
            return ident
        self.doc.entity(ident, self.attrs(["mls:EvaluationMeasure", "provml:EvaluationMeasure"], {"prov:label": name}))
        return ident

    def add_series(self) -> None:
        for m in self.snap.series:
            values: Dict[str, Any] = {f"provml:{f}": getattr(m, f) for f in SERIES_FIELDS}
            values["prov:label"] = f"{m.name} ({m.context})"
            values["prov:location"] = self.location(m.location)
            values["provml:format"] = media_type(m.location)
            types = ["provml:Metric"]
            if m.source == "metric" and _is_evaluation(m.context):
                types.append("mls:ModelEvaluation")
                values["mls:specifiedBy"] = self.measure(m.name)
                values["mls:hasValue"] = m.last
            e = self.doc.entity(self.qn("metric", m.context, m.name), self.attrs(types, values))
            self.doc.wasGeneratedBy(e, self.activity_for(m.context), m.last_time)
            if "mls:ModelEvaluation" in types:
                self.run_parts["mls:hasOutput"].append(e.identifier)

    def add_final_metrics(self) -> None:
        for fm in self.snap.final_metrics:
            values = {"prov:label": f"final {fm.name}", "provml:name": fm.name, "prov:value": fm.value,
                      "provml:fold": fm.operation_name, "provml:fold_error": fm.error or None}
            e = self.doc.entity(self.qn("final", fm.name), self.attrs(["provml:FinalMetric"], values))
            self.doc.wasGeneratedBy(e, self.run, self.snap.end_time)

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
