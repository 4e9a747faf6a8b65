"""The PROV mapping: a run's records become a ``prov.model.ProvDocument``.

This is the only module that knows PROV. The mapping (SPEC.md §5):

=================  ==========  =============================================  ==========================================
record             PROV        prov:type                                      relations
=================  ==========  =============================================  ==========================================
experiment         entity      prov:Collection, mls:Experiment                hadMember(experiment, run)
run (all ranks)    entity      prov:Collection, provml:Run                    hadMember(run, this rank's document)
rank process       activity    mls:Run, provml:LearningStageExecution         wasAssociatedWith(user, plan=source code)
context            activity    provml:LearningStage + Training/Validation/...  wasInformedBy(context, run), started/ended by run
hyper-parameter    entity      mls:HyperParameterSetting                      used(run, param)
metric series      entity      mls:ModelEvaluation, provml:Metric             wasGeneratedBy(series, context); prov:location, dcterms:format
model              entity      mls:Model                                      wasGeneratedBy(model, run)
model version      entity      mls:Model, provml:ModelVersion                 wasGeneratedBy(v, context), wasDerivedFrom(v, v-1, prov:Revision), specializationOf(v, model)
dataset            entity      mls:Dataset                                    used(run, dataset)
source code        entity      prov:Plan, mls:Implementation                  plan of the user's association
environment        entity      provml:Environment                             used(run, environment)
artifact           entity      provml:Artifact                                wasGeneratedBy(copy, context), wasDerivedFrom(copy, original)
user               agent       prov:Person
prov4ml            agent       prov:SoftwareAgent                             actedOnBehalfOf(prov4ml, user)
host               agent       provml:Host                                    wasAssociatedWith(run, host)
=================  ==========  =============================================  ==========================================
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .context import Context
from .metrics.formats import media_type
from .records import ArtifactRecord, RunSnapshot

__all__ = ["NAMESPACES", "PROVML", "build_document", "to_json", "user_namespace_iri", "user_iri"]

PROVML = "https://prov4ml.github.io/ns/provml#"
NAMESPACES = {
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "mls": "http://www.w3.org/ns/mls#",
    "dcterms": "http://purl.org/dc/terms/",
    "provml": PROVML,
}

CONTEXT_TYPES = {
    "training": "provml:Training",
    "validation": "provml:Validation",
    "testing": "provml:Evaluation",
    "evaluation": "provml:Evaluation",
}
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

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]+")


def user_namespace_iri(namespace: str) -> str:
    """An absolute IRI ending in '/' or '#' for the user's namespace."""
    iri = namespace.strip()
    if "://" not in iri and not iri.startswith("urn:"):
        iri = "http://" + iri
    if not iri.endswith(("/", "#")):
        iri += "/"
    return iri


def user_iri(namespace: str, user: str) -> str:
    """The IRI of the user agent of a run (also the crate's agent)."""
    return user_namespace_iri(namespace) + _local("user", user)


def _local(*parts: Any) -> str:
    return "/".join(_part(str(p)) for p in parts)


def _part(text: str) -> str:
    """One part of a local name; a part that had to change gets a hash of the original,
    so that "val loss" and "val_loss" stay two records (as their files do)."""
    safe = _ID_UNSAFE.sub("_", text).strip("/") or "_"
    if safe != text:
        import hashlib

        safe = f"{safe}-{hashlib.sha1(text.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"
    return safe


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


def _attr_key(name: str) -> str:
    """``other_attrs`` names: ``"author"`` becomes ``provml:author``; ``"dcterms:creator"`` stays."""
    prefix, sep, local = name.partition(":")
    if sep and (prefix in NAMESPACES or prefix == "prov") and local:
        return name
    return f"provml:{_local(name)}"


class _Builder:
    def __init__(self, snap: RunSnapshot) -> None:
        from prov.model import ProvDocument

        self.snap = snap
        self.doc = ProvDocument()
        for prefix, iri in NAMESPACES.items():
            self.doc.add_namespace(prefix, iri)
        self.ns = self.doc.add_namespace("ex", user_namespace_iri(snap.user_namespace))
        self.base = _local(snap.experiment_name, f"run_{snap.run_id}", f"rank{snap.rank}")
        self.run = None
        self.contexts: Dict[Context, Any] = {}
        self.originals: Dict[Any, Any] = {}
        self.used_ids: Dict[str, int] = {}

    def qn(self, *parts: Any):
        return self.ns[_local(self.base, *parts)]

    def fresh(self, *parts: Any):
        """Like ``qn``, with a ``-2``, ``-3``... suffix when a name was recorded twice (a dataset label, say)."""
        local = _local(self.base, *parts)
        n = self.used_ids.get(local, 0) + 1
        self.used_ids[local] = n
        return self.ns[local if n == 1 else f"{local}-{n}"]

    def q(self, name: str):
        """A prefixed name as a QualifiedName, so it serialises as one."""
        return self.doc.valid_qualified_name(name)

    def attrs(self, types: Iterable[str], values: Dict[str, Any], extra: Iterable[Tuple[str, Any]] = ()) -> List[Tuple[str, Any]]:
        """``extra``: the caller's ``other_attrs``; a name without a known prefix goes under ``provml:``."""
        out: List[Tuple[str, Any]] = [("prov:type", self.q(t)) for t in types]
        values = {**values, **{_attr_key(k): v for k, v in extra}}
        out.extend((k, _value(v)) for k, v in values.items() if v is not None)
        return out

    def link(self, entity, activity, is_input: bool, time=None) -> None:
        """An input is used by the activity; anything else is generated by it."""
        if is_input:
            self.doc.used(activity, entity, time)
        else:
            self.doc.wasGeneratedBy(entity, activity, time)

    # -- the parts of a document -------------------------------------------------
    def build(self):
        s = self.snap
        user = self.doc.agent(
            self.ns[_local("user", s.user)],
            self.attrs(["prov:Person"], {"prov:label": s.user}),
        )
        lib = self.doc.agent(
            "provml:prov4ml",
            self.attrs(["prov:SoftwareAgent"], {"prov:label": "prov4ml", "provml:version": s.library_version}),
        )
        self.doc.actedOnBehalfOf(lib, user)
        host_name = str(s.environment.get("host", "")) or "localhost"
        host = self.doc.agent(self.ns[_local("host", host_name)], self.attrs(["provml:Host"], {"prov:label": host_name}))

        run_values = {
            "prov:label": f"{s.experiment_name} run {s.run_id} rank {s.rank}",
            "provml:experiment": s.experiment_name,
            "provml:run_id": s.run_id,
            "provml:rank": s.rank,
            "provml:status": s.status,
            "prov:location": s.run_dir,
            "provml:command": s.command,
        }
        if s.error:
            run_values["provml:error_type"], run_values["provml:error_message"] = s.error
        for fm in s.final_metrics:
            run_values[f"provml:final_{_local(fm.name)}"] = fm.value
            run_values[f"provml:final_{_local(fm.name)}_fold"] = fm.operation_name
            if fm.error:
                run_values[f"provml:final_{_local(fm.name)}_error"] = fm.error
        for key, note in s.notes.items():
            run_values[f"provml:{_local(key)}"] = note
        self.run = self.doc.activity(
            self.qn(), s.start_time, s.end_time,
            self.attrs(["mls:Run", "provml:LearningStageExecution"], run_values),
        )
        self.doc.wasStartedBy(self.run, time=s.start_time)
        if s.end_time is not None:
            self.doc.wasEndedBy(self.run, time=s.end_time)

        plan = self.source_code()
        self.doc.wasAssociatedWith(self.run, user, plan)
        self.doc.wasAssociatedWith(self.run, lib)
        self.doc.wasAssociatedWith(self.run, host)
        self.experiment()
        self.environment()
        for ctx, (start, end) in s.contexts.items():
            self.context(ctx, start, end)
        self.params()
        self.series()
        for art in s.artifacts:
            self.artifact(art)
        self.models()
        self.datasets()
        return self.doc

    def experiment(self) -> None:
        s = self.snap
        exp = self.doc.entity(
            self.ns[_local(s.experiment_name)],
            self.attrs(["prov:Collection", "mls:Experiment"], {"prov:label": s.experiment_name}),
        )
        run = self.doc.entity(
            self.ns[_local(s.experiment_name, f"run_{s.run_id}")],
            self.attrs(["prov:Collection", "provml:Run"], {"prov:label": f"run {s.run_id}", "provml:run_id": s.run_id}),
        )
        record = self.doc.entity(
            self.qn("document"),
            self.attrs(["provml:ProvenanceDocument"], {"prov:location": f"prov_rank{s.rank}.json", "provml:rank": s.rank}),
        )
        self.doc.hadMember(exp, run)
        self.doc.hadMember(run, record)
        self.doc.wasGeneratedBy(record, self.run)

    def source_code(self):
        s = self.snap
        if not s.source_code:
            return None
        git = {k: v for k, v in s.environment.items() if k.startswith("git_")}
        values = {"prov:label": s.source_code.rsplit("/", 1)[-1], "prov:location": s.source_code}
        values.update({f"provml:{k}": v for k, v in git.items()})
        return self.doc.entity(self.qn("source"), self.attrs(["prov:Plan", "mls:Implementation"], values))

    def environment(self) -> None:
        env = self.snap.environment
        if self.snap.source_code:  # git facts go on the source-code entity then
            env = {k: v for k, v in env.items() if not k.startswith("git_")}
        if env:
            e = self.doc.entity(
                self.qn("environment"),
                self.attrs(["provml:Environment"], {f"provml:{_local(k)}": v for k, v in env.items()}),
            )
            self.doc.used(self.run, e)

    def context(self, ctx: Context, start: Optional[datetime], end: Optional[datetime]):
        act = self.contexts.get(ctx)
        if act is not None:
            return act
        types = ["provml:LearningStage", CONTEXT_TYPES.get(str(ctx), "provml:LearningStage")]
        values: Dict[str, Any] = {"prov:label": str(ctx), "provml:context": str(ctx)}
        if ctx.parent is not None:
            values["provml:parent_context"] = str(ctx.parent)
        values["provml:source_of_data"] = getattr(ctx, "source_of_data", None)
        act = self.contexts[ctx] = self.doc.activity(self.qn("context", ctx), start, end, self.attrs(dict.fromkeys(types), values))
        parent = self.context(ctx.parent, start, end) if ctx.parent is not None else self.run
        self.doc.wasInformedBy(act, parent)
        self.doc.wasStartedBy(act, starter=parent, time=start)
        if end is not None:
            self.doc.wasEndedBy(act, ender=parent, time=end)
        return act

    def activity_for(self, ctx: Optional[Context]):
        return self.run if ctx is None else self.context(ctx, None, None)

    def params(self) -> None:
        for p in self.snap.params:
            values = {"prov:label": p.key, "prov:value": p.value, "provml:context": p.context, "provml:source": p.source}
            e = self.doc.entity(self.qn("param", p.key), self.attrs(["mls:HyperParameterSetting"], values))
            self.link(e, self.run if p.is_input else self.activity_for(p.context), p.is_input)

    def series(self) -> None:
        for m in self.snap.series:
            values = {f"provml:{f}": getattr(m, f) for f in SERIES_FIELDS}
            values["prov:label"] = f"{m.name} ({m.context})"
            values["prov:location"] = m.location
            values["dcterms:format"] = media_type(m.location)
            e = self.doc.entity(
                self.qn("metric", m.context, m.name),
                self.attrs(["mls:ModelEvaluation", "provml:Metric"], values),
            )
            self.doc.wasGeneratedBy(e, self.activity_for(m.context), m.last_time)

    def artifact(self, art: ArtifactRecord, types: Tuple[str, ...] = (), extra: Optional[Dict[str, Any]] = None, ident=None):
        values = {
            "prov:label": art.name,
            "prov:location": art.location,
            "provml:sha256": art.sha256,
            "provml:size_bytes": art.size,
            "provml:is_directory": art.is_dir,
            "provml:step": art.step,
            "provml:context": art.context,
            "dcterms:created": art.time,
            "provml:source": art.source,
        }
        values.update(extra or {})
        e = self.doc.entity(
            ident or self.qn("artifact", art.location), self.attrs(ARTIFACT_TYPES[art.role] + types, values, art.attributes)
        )
        self.link(e, self.activity_for(art.context), art.is_input, art.time)
        if art.original is not None and art.original != art.location:  # a copy; a referenced file is its own original
            ident = self.qn("original", art.original)
            orig = self.originals.get(ident)
            if orig is None:  # one entity per source path, however often it is copied
                orig = self.originals[ident] = self.doc.entity(
                    ident,
                    self.attrs(["provml:SourceFile"], {"prov:label": art.original.rsplit("/", 1)[-1], "prov:location": art.original}),
                )
            self.doc.wasDerivedFrom(e, orig)
        return e

    def models(self) -> None:
        models = {}
        for m in self.snap.models:
            values = {f"provml:{_local(k)}": v for k, v in m.info.items()}
            values.update({"prov:label": m.name, "provml:context": m.context, "provml:source": m.source})
            e = models[m.name] = self.doc.entity(self.fresh("model", m.name), self.attrs(["mls:Model"], values, m.attributes))
            self.link(e, self.activity_for(m.context), m.is_input)
            for part in (m.artifact, m.architecture, m.layers):
                if part is not None:
                    self.doc.hadMember(e, self.artifact(part))
        versions = []
        for v in self.snap.versions:
            e = self.artifact(
                v.artifact, ("mls:Model", "provml:ModelVersion"),
                {"provml:model_name": v.model_name, "provml:version": v.version,
                 "prov:label": f"{v.model_name} v{v.version}" + ("" if v.artifact.step is None else f" (step {v.artifact.step})")},
                ident=self.qn("model_version", v.version, v.model_name),
            )
            versions.append(e)
            if v.previous is not None:
                self.doc.wasDerivedFrom(e, versions[v.previous], other_attributes={"prov:type": self.q("prov:Revision")})
            if v.model_name in models:
                self.doc.specializationOf(e, models[v.model_name])

    def datasets(self) -> None:
        for d in self.snap.datasets:
            values = {f"provml:{_local(k)}": v for k, v in d.stats.items()}
            values.update({"prov:label": d.label, "provml:context": d.context, "provml:source": d.source})
            e = self.doc.entity(self.fresh("dataset", d.label), self.attrs(["mls:Dataset"], values, d.attributes))
            self.doc.used(self.activity_for(d.context), e)


def build_document(snapshot: RunSnapshot):
    """The ``ProvDocument`` of one rank of one run."""
    return _Builder(snapshot).build()


def to_json(document, indent: Optional[int] = 1) -> str:
    """PROV-JSON text. The JSON serializer is used directly: ``ProvDocument.serialize``
    imports every serializer (XML, RDF), which costs ~0.2 s. ``indent=None`` is
    several times faster (json's C encoder): the refreshes during a run use it."""
    import io

    from prov.serializers.provjson import ProvJSONSerializer

    stream = io.StringIO()
    ProvJSONSerializer(document).serialize(stream, indent=indent)
    return stream.getvalue()
