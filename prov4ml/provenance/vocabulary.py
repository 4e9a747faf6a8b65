"""The ``provml:`` vocabulary: every class, property and role prov4ml writes.

``TERMS`` is the one source of truth: the builder names only what is listed
here (a record's free-form keys it does not know become ``provml:note``
values), ``provml.ttl`` (shipped beside this module) is written from it
(``python -m prov4ml.provenance.vocabulary`` rewrites it), and
docs/vocabulary.md describes it. A test checks all three agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, NamedTuple, Optional

from ..records.model import STATUSES

__all__ = ["PROVML", "TERMS", "Term", "CLASSES", "PROPERTIES", "ROLES", "RANGES", "ttl_path", "turtle", "known_property"]

PROVML = "https://prov4ml.github.io/ns/provml#"


class Term(NamedTuple):
    kind: str  # Class | ObjectProperty | DatatypeProperty | Role
    comment: str
    parent: Optional[str] = None  # rdfs:subClassOf / rdfs:subPropertyOf, as a prefixed name
    range: Optional[str] = None


def _c(comment: str, parent: Optional[str] = None) -> Term:
    return Term("Class", comment, parent)


def _d(comment: str, range: str = "xsd:string", parent: Optional[str] = None) -> Term:
    return Term("DatatypeProperty", comment, parent, range)


TERMS: Dict[str, Term] = {
    # -- classes: activities
    "LearningStageExecution": _c("The execution of one rank of a training run (PROV-ML's LearningStageExecution).", "prov:Activity"),
    "LearningStage": _c("A stage of a run (a context): training, validation, evaluation or one of the user's.", "prov:Activity"),
    "Training": _c("A training stage.", "provml:LearningStage"),
    "Validation": _c("A validation stage.", "provml:LearningStage"),
    "Evaluation": _c("A testing or evaluation stage.", "provml:LearningStage"),
    "Epoch": _c("One epoch of a stage, marked by the user or the Lightning callback.", "prov:Activity"),
    "Experiment": _c("A named series of runs (also typed mls:Experiment).", "prov:Activity"),
    # -- classes: entities
    "Run": _c("The record of a run across all its ranks: a collection of the ranks' documents.", "prov:Collection"),
    "ProvenanceDocument": _c("A PROV document written by prov4ml (one per rank).", "prov:Entity"),
    "Metric": _c("A metric series (name + context): one entity whose points live in its data file.", "prov:Entity"),
    "Snapshot": _c("A metric series or a fold's value as a document written while the run recorded saw it; the "
                   "complete one, once the run ends, is a revision of it (prov:wasRevisionOf).", "prov:Entity"),
    "FinalMetric": _c("The value of a fold registered with register_final_metric, at the end of the run.", "prov:Entity"),
    "EvaluationMeasure": _c("What a metric measures, by name (also typed mls:EvaluationMeasure).", "prov:Entity"),
    "Artifact": _c("A file or folder recorded by the run (usually a copy under artifacts/).", "prov:Entity"),
    "ModelWeights": _c("A saved state dict of a model.", "provml:Artifact"),
    "ModelVersion": _c("One saved version of a model (save_model_version).", "provml:ModelWeights"),
    "ModelArchitecture": _c("The printed architecture of a model.", "provml:Artifact"),
    "SourceDiff": _c("The git diff of the working tree at the start of the run.", "provml:Artifact"),
    "SourceCode": _c("A copy of the source code the run executed.", "provml:Artifact"),
    "SourceFile": _c("A file outside the run directory that an artifact was copied from.", "prov:Entity"),
    "Content": _c("The bytes of a file, identified by their SHA-256 (content:sha256-<hex>): every entity of a file "
                  "with those bytes, in any run, is a specialization of it; no run generates it.", "prov:Entity"),
    "ModelCard": _c("The model card of a run (Markdown, Hugging Face sections).", "provml:Artifact"),
    "ModelLayers": _c("The layer table of a model (log_model_layers=True).", "provml:Artifact"),
    "LayerData": _c("The inputs and outputs of one layer of a wrapped model (ProvenanceTrackedModel).", "provml:Artifact"),
    "LayerWeights": _c("The weights of one layer at one epoch (WeightDistributionTrackedModel).", "provml:ModelWeights"),
    "Environment": _c("The software and host the run executed on (Python, packages, OS, git).", "prov:Entity"),
    # -- classes: agents
    "Host": _c("The machine a rank ran on.", "prov:Agent"),
    # -- roles (individuals of prov:Role)
    "researcher": Term("Role", "The person who ran the run (association role)."),
    "recorder": Term("Role", "prov4ml, recording the run (association role)."),
    "host": Term("Role", "The machine the rank ran on (association role)."),
    # -- run
    "experiment": _d("The experiment name."),
    "run_id": _d("The run's number within its experiment.", "xsd:int"),
    "rank": _d("The process rank (0 for a single process).", "xsd:int"),
    "status": _d("The run's status: " + ", ".join(STATUSES) + "."),
    "outcome": _d("On the stage (context) and epoch a run stopped in: its status (failed, interrupted, terminated, "
                  "killed)."),
    "error_type": _d("The exception class that failed the run."),
    "error_message": _d("The exception message that failed the run."),
    "command": _d("The command line, secrets redacted."),
    "retryOf": Term("ObjectProperty", "The run (its rank-0 activity) that failed and that this run retries, "
                    "as sweep(retries=...) does; stated also as prov:wasInfluencedBy.", "prov:wasInfluencedBy",
                    "prov:Activity"),
    "note": _d("A free-form fact about a record, 'key: value'."),
    "execution_start_time": _d("Set by log_execution_start_time().", "xsd:dateTime"),
    "execution_end_time": _d("Set by log_execution_end_time().", "xsd:dateTime"),
    "execution_command": _d("Set by log_execution_command()."),
    "gpu": _d("What the system collector found about GPUs."),
    "carbon": _d("How carbon metrics were measured (or why not)."),
    "carbon_error": _d("Why the carbon meter failed."),
    "capture_error": _d("Why the reproducibility capture failed."),
    "capture_process": _d("Where the capture ran when not in its child process."),
    "writer_errors": _d("What could not be written."),
    "dropped": _d("Metric points logged while no journal segment had room: not kept, counted.", "xsd:long"),
    "records_not_journaled": _d("Records that could not be journaled (the disk stayed full).", "xsd:long"),
    "records_unreadable": _d("Whole record-journal frames recover could not read (a class it lacks).", "xsd:long"),
    "signal": _d("The signal that ended the run."),
    "recovered": _d("Set by prov4ml recover on a killed run."),
    "importedFrom": _d("The run of another tool this run was imported from (prov4ml import): '<tool>:<that tool's id "
                       "of the run>', e.g. 'mlflow:<run id>'; one import per value."),
    "importedLocation": _d("Where prov4ml import read the run: a folder, a file or a tracking URI."),
    "tag": _d("A tag of a run imported from another tool, 'key: value' (MLflow's tags)."),
    # -- contexts and epochs
    "context": _d("The context (stage) name a record belongs to."),
    "parent_context": _d("The parent of a sub-context."),
    "source_of_data": _d("Where a context's data came from (log_context(..., source_of_data=...))."),
    "epoch": _d("The epoch number.", "xsd:long"),
    # -- metric series
    "name": _d("The metric name."),
    "source": _d("What produced a record: a series' kind (metric, system_metric, ...) or the caller's source ('argparse', 'hydra', ...)."),
    "format": _d("The media type of a metric series' data file (text/csv, application/x-netcdf, ...)."),
    "unit": _d("The unit of a series' values."),
    "sampler": _d("The sampler that chose which points were kept."),
    "count": _d("The number of points.", "xsd:long"),
    "nan_count": _d("The number of NaN points.", "xsd:long"),
    "min": _d("The least value.", "xsd:double"),
    "max": _d("The greatest value.", "xsd:double"),
    "last": _d("The last value.", "xsd:double"),
    "mean": _d("The mean value.", "xsd:double"),
    "first_step": _d("The first step.", "xsd:long"),
    "last_step": _d("The last step.", "xsd:long"),
    "first_time": _d("The time of the first point.", "xsd:dateTime"),
    "last_time": _d("The time of the last point.", "xsd:dateTime"),
    "fold": _d("The fold operation of a final metric (MAX, MIN, ADD, ...)."),
    "fold_error": _d("Why a fold stopped."),
    # -- files
    "sha256": _d("The SHA-256 of the file (of a folder: of its files' names and contents)."),
    "size_bytes": _d("The size in bytes.", "xsd:long"),
    "digest": _d("A dataset's digest made when it was logged, in bounded time (provml:digestMethod says how); "
                 "provml:sha256 holds the digest of all its bytes once computed."),
    "digestMethod": _d("How provml:digest was made: which bytes of which files went into the SHA-256."),
    "is_directory": _d("Whether the artifact is a folder.", "xsd:boolean"),
    "step": _d("The step at which a file or version was recorded.", "xsd:long"),
    "created": _d("When the file was recorded.", "xsd:dateTime", "prov:generatedAtTime"),
    "model_name": _d("The model a version belongs to."),
    "version": _d("The number of a model version (0, 1, ... per model).", "xsd:int"),
    "software_version": _d("The version of a software agent (prov4ml's own, e.g. 0.1.0)."),
    "is_none": _d("A parameter whose value was None (it has no prov:value).", "xsd:boolean"),
    "runs": _d("The number of runs in a collection.", "xsd:int"),
    "documents": _d("The number of documents in a collection.", "xsd:int"),
    # -- model info (log_model)
    "class": _d("The Python class of a model or dataset."),
    "parameters": _d("The number of parameters of a model.", "xsd:long"),
    "trainable_parameters": _d("The number of trainable parameters.", "xsd:long"),
    "parameter_bytes": _d("The bytes held by parameters.", "xsd:long"),
    "buffer_bytes": _d("The bytes held by buffers.", "xsd:long"),
    "memory_footprint_bytes": _d("Parameter and buffer bytes.", "xsd:long"),
    "modules": _d("The number of modules of a model.", "xsd:long"),
    "device": _d("The devices of a model's parameters."),
    "dtype": _d("The dtypes of a model's parameters."),
    # -- dataset stats (log_dataset)
    "size": _d("The number of samples of a dataset.", "xsd:long"),
    "batch_size": _d("The batch size of a DataLoader.", "xsd:long"),
    "num_batches": _d("The number of batches of a DataLoader.", "xsd:long"),
    "shuffle": _d("Whether a DataLoader shuffles.", "xsd:boolean"),
    "num_workers": _d("The worker processes of a DataLoader.", "xsd:long"),
    "drop_last": _d("Whether a DataLoader drops the last incomplete batch.", "xsd:boolean"),
    "sample_shape": _d("The shape of one sample."),
    "pin_memory": _d("Whether a DataLoader pins memory.", "xsd:boolean"),
    "dataset_class": _d("The class of a DataLoader's dataset."),
    "parent_class": _d("The class of the dataset a Subset draws from."),
    "parent_size": _d("The size of the dataset a Subset draws from.", "xsd:long"),
    # -- environment capture
    "python": _d("The Python version."),
    "executable": _d("The Python executable."),
    "packages": _d("The number of installed packages (the list is an artifact).", "xsd:long"),
    "host_platform": _d("The OS platform string."),
    "host_system": _d("The OS name."),
    "host_release": _d("The OS release."),
    "host_machine": _d("The CPU architecture."),
    "host_cpu_count": _d("The number of CPUs.", "xsd:long"),
    "host_python_implementation": _d("CPython, PyPy, ..."),
    "git_commit": _d("The commit of the script's repository."),
    "git_branch": _d("The branch of the script's repository."),
    "git_remote": _d("The origin remote (credentials redacted)."),
    "git_dirty": _d("Whether the working tree had changes.", "xsd:boolean"),
    "git_root": _d("The root folder of the script's repository."),
    "git_available": _d("False when git facts could not be read.", "xsd:boolean"),
    "git_reason": _d("Why git facts could not be read."),
    "source_copy_error": _d("Why the source code could not be copied."),
}

CLASSES = frozenset(k for k, t in TERMS.items() if t.kind == "Class")
ROLES = frozenset(k for k, t in TERMS.items() if t.kind == "Role")
PROPERTIES = frozenset(k for k, t in TERMS.items() if t.kind.endswith("Property"))
#: ``provml:<property>`` -> its range (``xsd:long``...): the builder writes each value as this type
RANGES = {f"provml:{k}": t.range for k, t in TERMS.items() if t.range}

_PREFIXES = {
    "prov": "http://www.w3.org/ns/prov#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "provml": PROVML,
}


def known_property(key: str) -> bool:
    """Whether ``provml:<key>`` is a property of the vocabulary."""
    return key in PROPERTIES


def ttl_path() -> Path:
    """The shipped ``provml.ttl``."""
    return Path(__file__).with_name("provml.ttl")


def turtle() -> str:
    """The vocabulary as Turtle (what ``provml.ttl`` holds)."""
    lines = [f"@prefix {p}: <{iri}> ." for p, iri in _PREFIXES.items()]
    lines += [
        "",
        f"<{PROVML.rstrip('#')}> a owl:Ontology ;",
        '    rdfs:label "prov4ml vocabulary" ;',
        '    rdfs:comment "Classes, properties and roles of the PROV documents written by prov4ml." .',
        "",
    ]
    kinds = {"Class": "owl:Class", "ObjectProperty": "owl:ObjectProperty", "DatatypeProperty": "owl:DatatypeProperty",
             "Role": "prov:Role, owl:NamedIndividual"}
    for name, term in TERMS.items():
        parts = [f"a {kinds[term.kind]}", f"rdfs:comment {_literal(term.comment)}"]
        if term.parent:
            parts.append(f"{'rdfs:subClassOf' if term.kind == 'Class' else 'rdfs:subPropertyOf'} {term.parent}")
        if term.range:
            parts.append(f"rdfs:range {term.range}")
        lines.append(f"provml:{name} " + " ;\n    ".join(parts) + " .")
    return "\n".join(lines) + "\n"


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    ttl_path().write_text(turtle(), encoding="utf-8")
