"""end_run's optional outputs: DOT, SVG (real Graphviz), the experiment's collection."""

import shutil
import xml.etree.ElementTree as ET

import pydot
import pytest

import prov4ml
from conftest import load_doc


def test_end_run_writes_dot_and_svg(start):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed (apt-get install graphviz)")
    start()
    for epoch in range(3):
        prov4ml.log_metric("loss", 1.0 / (epoch + 1), prov4ml.Context.TRAINING, step=epoch)
    path = prov4ml.end_run(create_graph=True, create_svg=True)
    dot, svg = path.with_suffix(".dot"), path.with_suffix(".svg")
    assert dot.name == "prov_rank0.dot" and svg.name == "prov_rank0.svg"
    graph = pydot.graph_from_dot_file(str(dot))[0]
    labels = " ".join(str(n.get("label")) for n in graph.get_nodes())
    assert "loss (training)" in labels
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")


def test_end_run_graph_only(start):
    start()
    path = prov4ml.end_run(create_graph=True)
    assert path.with_suffix(".dot").exists() and not path.with_suffix(".svg").exists()


def test_end_run_collection_links_every_run(start, save_dir):
    start()
    prov4ml.log_metric("loss", 1.0)
    prov4ml.end_run()
    run = start()
    prov4ml.log_metric("loss", 2.0)
    prov4ml.end_run(create_provenance_collection=True)
    collections = list(run.experiment_dir.glob("*collection*.json"))
    assert len(collections) == 1
    doc = load_doc(collections[0])
    assert sorted(str(b.identifier) for b in doc.bundles) == [
        "ex:exp.run_0.rank0.document", "ex:exp.run_1.rank0.document"]
