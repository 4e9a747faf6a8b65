"""Synthetic PROV documents shaped like a prov4ml run's, of any size (tests and benchmarks/graphs.py).

The shape follows what ``prov4ml.provenance`` writes: a run activity per rank
(mls:Run), context activities, the user / prov4ml agents, parameters, one
entity per metric series (provml:Metric), a chain of model versions
(wasDerivedFrom, prov:Revision), a dataset, the run's document entity, and the
experiment and run collections.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from prov.identifier import Namespace
from prov.model import PROV, ProvDocument

PROVML_URI = "https://prov4ml.github.io/ns/provml#"
MLS = Namespace("mls", "http://www.w3.org/ns/mls#")
PROVML = Namespace("provml", PROVML_URI)


def synthetic_run(experiment="exp", run_id=0, rank=0, n_series=3, n_versions=3, n_params=3,
                  namespace="http://www.example.org/"):
    doc = ProvDocument()
    doc.add_namespace("ex", namespace)
    doc.add_namespace(MLS)
    doc.add_namespace(PROVML)
    doc.add_namespace("dcterms", "http://purl.org/dc/terms/")
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    base = f"ex:{experiment}/run_{run_id}/rank{rank}"

    user = doc.agent("ex:user/alice", {"prov:type": PROV["Person"], "prov:label": "alice"})
    lib = doc.agent("provml:prov4ml", {"prov:type": PROV["SoftwareAgent"], "provml:version": "0.1.0"})
    doc.actedOnBehalfOf(lib, user)
    run = doc.activity(base, t0, t0 + timedelta(hours=1), {
        "prov:type": MLS["Run"], "prov:label": f"{experiment} run {run_id} rank {rank}",
        "provml:run_id": run_id, "provml:rank": rank, "provml:status": "finished",
    })
    run.add_asserted_type(PROVML["LearningStageExecution"])
    code = doc.entity(f"{base}/source", {"prov:type": PROV["Plan"], "prov:location": "train.py"})
    doc.wasAssociatedWith(run, user, code)
    doc.wasAssociatedWith(run, lib)
    contexts = {}
    for name, kind in (("training", PROVML["Training"]), ("validation", PROVML["Validation"])):
        ctx = doc.activity(f"{base}/context/{name}", t0, t0 + timedelta(minutes=50),
                           {"prov:type": PROVML["LearningStage"], "prov:label": name})
        ctx.add_asserted_type(kind)
        doc.wasInformedBy(ctx, run)
        contexts[name] = ctx
    exp = doc.entity(f"ex:{experiment}", {"prov:type": PROV["Collection"], "prov:label": experiment})
    exp.add_asserted_type(MLS["Experiment"])
    run_entity = doc.entity(f"ex:{experiment}/run_{run_id}", {"prov:type": PROV["Collection"], "provml:run_id": run_id})
    run_entity.add_asserted_type(PROVML["Run"])
    doc.hadMember(exp, run_entity)
    document = doc.entity(f"{base}/document", {"prov:type": PROVML["ProvenanceDocument"],
                                               "prov:location": f"prov_rank{rank}.json", "provml:rank": rank})
    doc.hadMember(run_entity, document)
    doc.wasGeneratedBy(document, run)
    for i in range(n_params):
        p = doc.entity(f"{base}/param/p{i}", {"prov:type": MLS["HyperParameterSetting"], "prov:label": f"p{i}",
                                              "prov:value": 0.1 * i})
        doc.used(run, p)
    data = doc.entity(f"{base}/dataset/train", {"prov:type": MLS["Dataset"], "prov:label": "train", "provml:size": 1000})
    doc.used(contexts["training"], data)
    for i in range(n_series):
        ctx = "training" if i % 2 == 0 else "validation"
        m = doc.entity(f"{base}/metric/{ctx}/m{i}", {
            "prov:type": MLS["ModelEvaluation"], "prov:label": f"m{i} ({ctx})", "provml:name": f"m{i}",
            "provml:context": ctx, "provml:count": 1000, "provml:min": 0.0, "provml:max": 1.0,
            "provml:last": 0.5, "prov:location": f"metrics/m{i}_{ctx}_rank{rank}.csv",
        })
        m.add_asserted_type(PROVML["Metric"])
        doc.wasGeneratedBy(m, contexts[ctx])
    model = doc.entity(f"{base}/model/net", {"prov:type": MLS["Model"], "prov:label": "net"})
    previous = None
    for v in range(n_versions):
        mv = doc.entity(f"{base}/model_version/{v}/net", {
            "prov:type": PROVML["Artifact"], "prov:label": f"models/net/net_step{v}.pt",
            "prov:location": f"artifacts/models/net/net_step{v}.pt", "provml:step": v, "provml:version": v,
        })
        mv.add_asserted_type(MLS["Model"])
        mv.add_asserted_type(PROVML["ModelVersion"])
        doc.wasGeneratedBy(mv, contexts["training"])
        doc.specializationOf(mv, model)
        if previous is not None:
            doc.wasDerivedFrom(mv, previous, other_attributes={"prov:type": PROV["Revision"]})
        previous = mv
    return doc


def write_experiment(root, experiment="exp", runs=1, ranks=2, **kw):
    """Write ``<root>/<experiment>/run_<id>/prov_rank<k>.json`` for every run and rank; returns the experiment dir."""
    exp_dir = Path(root) / experiment
    for run_id in range(runs):
        run_dir = exp_dir / f"run_{run_id}"
        run_dir.mkdir(parents=True, exist_ok=True)
        for rank in range(ranks):
            doc = synthetic_run(experiment, run_id, rank, **kw)
            (run_dir / f"prov_rank{rank}.json").write_text(doc.serialize(format="json"))
    return exp_dir


def make_real_experiment(save_dir, experiment="graphs"):
    """Two real prov4ml runs of ``experiment`` under ``save_dir``: run_0 with ranks 0 and 1, run_1 with rank 0.

    Returns the experiment directory.
    """
    import torch

    import prov4ml

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    for run_id, ranks in ((0, (0, 1)), (1, (0,))):
        for rank in ranks:
            prov4ml.start_run("www.example.org", experiment, str(save_dir), collect_all_processes=True,
                              rank=rank, run_id=run_id, capture=False, disable_codecarbon=True)
            prov4ml.log_params({"lr": 0.01, "epochs": 3, "optimizer": "SGD"})
            for epoch in range(3):
                for i in range(20):
                    prov4ml.log_metric("loss", 1.0 / (1 + epoch * 20 + i), prov4ml.Context.TRAINING, step=epoch)
                prov4ml.log_metric("val_loss", 0.5 / (1 + epoch), prov4ml.Context.VALIDATION, step=epoch)
                prov4ml.save_model_version(model, "net", prov4ml.Context.TRAINING, step=epoch)
            prov4ml.end_run()
    return Path(save_dir) / experiment
