"""``end_run(crate_ro_crate=True)``: the run directory as a Process Run Crate.

The run directory becomes an RO-Crate (https://w3id.org/ro/crate/1.3) that
conforms to the Process Run Crate profile 0.6
(https://w3id.org/ro/wfrun/process/0.6): ``ro-crate-metadata.json`` beside
``prov_rank0.json`` describes one ``CreateAction``, the run, with

- ``instrument``: the training script (its copy under ``artifacts/source/``
  when captured), else the Python interpreter that ran it;
- ``agent``: the user, the same IRI as the user agent of the PROV-JSON;
- ``object``: the logged datasets and the hyper-parameters (``PropertyValue``);
- ``result``: the metric files, models, model versions (``torch.save`` files),
  artifacts, the model card, the graphs and the PROV-JSON (``encodingFormat`` application/json and
  the PROV-JSON specification);
- ``startTime``, ``endTime``, ``actionStatus`` (Completed, or Failed with the
  run's status and error).

The root dataset ``mentions`` the action (the ``rocrate`` package does not set
it). Needs ``pip install "prov4ml[rocrate]"``.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from .._fs import atomic_write_text
from .._optional import require
from ..metrics.formats import media_type
from . import user_iri
from ..records.model import ArtifactRecord, RunSnapshot

__all__ = ["write_crate", "PROFILE", "PROV_JSON_SPEC", "METADATA"]

PROFILE = "https://w3id.org/ro/wfrun/process/0.6"
PROV_JSON_SPEC = "https://www.w3.org/Submission/prov-json/"
METADATA = "ro-crate-metadata.json"
_STATUS = {"finished": "http://schema.org/CompletedActionStatus"}
_FAILED = "http://schema.org/FailedActionStatus"
_MEDIA = {".pt": "application/octet-stream", ".pth": "application/octet-stream", ".md": "text/markdown",
          ".py": "text/x-python", ".dot": "text/vnd.graphviz", ".diff": "text/x-diff", ".txt": "text/plain"}


def write_crate(snap: RunSnapshot, run_dir: Path) -> Path:
    """Write ``<run_dir>/ro-crate-metadata.json`` for the run ``snap`` describes; returns its path."""
    require("rocrate", "rocrate", "end_run(crate_ro_crate=True)")
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    run_dir = Path(run_dir)
    crate = ROCrate()
    crate.name = f"{snap.experiment_name} run {snap.run_id}"
    crate.description = f"Provenance of run {snap.run_id} of the experiment {snap.experiment_name}, recorded by prov4ml {snap.library_version}"
    if snap.end_time is not None:
        crate.datePublished = snap.end_time.isoformat()
    profile = crate.add(ContextEntity(crate, PROFILE, properties={"@type": "CreativeWork", "name": "Process Run Crate", "version": "0.6"}))
    crate.root_dataset["conformsTo"] = profile

    def add(location: str, name: str, fmt: Optional[Any] = None, **props: Any):
        path = run_dir / location
        if path.is_dir():
            return crate.add_dataset(dest_path=location, properties={"name": name, **props})
        fmt = fmt or _MEDIA.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        size = {"contentSize": str(path.stat().st_size)} if path.is_file() else {}
        return crate.add_file(dest_path=location, properties={"name": name, "encodingFormat": fmt, **size, **props})

    instrument = _instrument(crate, snap, add, ContextEntity)
    user = crate.add(ContextEntity(crate, user_iri(snap.user_namespace, snap.user),
                                   properties={"@type": "Person", "name": snap.user}))

    def local(kind: str, name: str) -> str:
        """A fresh ``#kind-name`` identifier (a label logged twice gets ``-2``)."""
        base = f"#{kind}-{quote(name, safe='')}"
        ident, n = base, 1
        while ident in crate:
            n += 1
            ident = f"{base}-{n}"
        return ident

    objects: List[Any] = []
    for d in snap.datasets:
        described = ", ".join(f"{k}={v}" for k, v in d.stats.items())
        objects.append(crate.add(ContextEntity(crate, local("dataset", d.label), properties={
            "@type": "Dataset", "name": d.label, "description": described})))
    for p in snap.params:
        objects.append(crate.add(ContextEntity(crate, local("param", p.key), properties={
            "@type": "PropertyValue", "name": p.key, "value": _json_value(p.value)})))

    results: List[Any] = []
    for s in snap.series:
        if s.location:
            results.append(add(s.location, f"{s.name} ({s.context})", media_type(s.location),
                               description=f"metric {s.name} in context {s.context}: columns step, value, time"))
    for art in _artifacts(snap):
        if instrument.id != art.location:
            results.append(add(art.location, art.name, description=f"{art.role.replace('_', ' ')} recorded by prov4ml"))
    for graph in (f"prov_rank{snap.rank}.dot", f"prov_rank{snap.rank}.svg"):
        if (run_dir / graph).is_file():
            results.append(add(graph, f"provenance graph ({graph})"))
    spec = crate.add(ContextEntity(crate, PROV_JSON_SPEC, properties={"@type": "WebPage", "name": "PROV-JSON"}))
    prov_json = add(f"prov_rank{snap.rank}.json", "PROV-JSON document", ["application/json", spec],
                    description="the W3C PROV document of the run", conformsTo={"@id": PROV_JSON_SPEC})
    results.append(prov_json)

    props: Dict[str, Any] = {
        "@type": "CreateAction",
        "name": f"run {snap.run_id} of {snap.experiment_name} (rank {snap.rank})",
        "actionStatus": {"@id": _STATUS.get(snap.status, _FAILED)},
        "startTime": snap.start_time.isoformat(),
    }
    if snap.end_time is not None:
        props["endTime"] = snap.end_time.isoformat()
    if snap.command:
        props["description"] = snap.command
    if snap.status != "finished":
        props["error"] = ": ".join(snap.error) if snap.error else f"the run ended {snap.status}"
    action = crate.add_action(instrument, identifier=f"#run_{snap.run_id}-rank{snap.rank}", object=objects,
                              result=results, properties=props)
    action["agent"] = user
    crate.root_dataset["mentions"] = [action]
    path = run_dir / METADATA
    atomic_write_text(path, json.dumps(crate.metadata.generate(), indent=2, ensure_ascii=False))
    return path


def _instrument(crate, snap: RunSnapshot, add, ContextEntity):
    """The executed tool: the script's copy in the crate, else the script by name, else Python."""
    python = snap.environment.get("python", "")
    language = crate.add(ContextEntity(crate, "https://www.python.org/", properties={
        "@type": "ComputerLanguage", "name": "Python", "url": "https://www.python.org/", "version": python}))
    copy = next((a for a in snap.artifacts if a.role == "source"), None)
    props = {"programmingLanguage": language}
    if snap.environment.get("git_commit"):
        props["version"] = str(snap.environment["git_commit"])
    if copy is not None:
        entity = add(copy.location, Path(copy.location).name, "text/x-python", **props)
        entity.properties()["@type"] = ["File", "SoftwareSourceCode"]
        if snap.source_code:
            entity["alternateName"] = snap.source_code
        return entity
    if snap.source_code:
        return crate.add(ContextEntity(crate, "#script", properties={
            "@type": "SoftwareSourceCode", "name": Path(snap.source_code).name, "description": snap.source_code, **props}))
    return crate.add(ContextEntity(crate, "#python", properties={
        "@type": "SoftwareApplication", "name": "Python", "url": "https://www.python.org/", "softwareVersion": python}))


def _artifacts(snap: RunSnapshot) -> List[ArtifactRecord]:
    """Every file the run stored, once: artifacts, model weights and architectures, model versions."""
    seen: Dict[str, ArtifactRecord] = {}
    records = list(snap.artifacts)
    for m in snap.models:
        records += [a for a in (m.artifact, m.architecture) if a is not None]
    records += [v.artifact for v in snap.versions]
    for art in records:
        if not Path(art.location).is_absolute():  # referenced in place outside the run: not part of the crate
            seen.setdefault(art.location, art)
    return list(seen.values())


def _json_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float)) and value == value and value not in (float("inf"), float("-inf")):
        return value
    return str(value)
