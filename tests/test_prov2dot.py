"""prov2dot: PROV styles, short labels, trimmed attributes, collapsed long runs, a CLI that fails cleanly."""

import os
import re
import subprocess
import sys

import pydot
import pytest
from prov.model import ProvDocument

from conftest import ROOT
from conftest_graphs import make_real_experiment, synthetic_run, write_experiment
from prov4ml import prov2dot
from prov4ml.exceptions import InvalidValueError, ProvFileError

# pydot's DOT parser uses pyparsing names that pyparsing 3.3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot")


def parse(dot):
    """The pydot graph of DOT text (or of a pydot.Dot), read back from its text."""
    text = dot if isinstance(dot, str) else dot.to_string()
    (graph,) = pydot.graph_from_dot_data(text)
    return graph


def all_nodes(graph):
    nodes = [n for n in graph.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    for sub in graph.get_subgraphs():
        nodes += all_nodes(sub)
    return nodes


def label(node):
    return html_text(node.get_label() or "")


def html_text(text):
    """The visible text of a node label (HTML tags dropped)."""
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return re.sub(r"<[^>]+>", " ", text).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def titles(graph):
    """Node title (the bold first line) -> node."""
    out = {}
    for n in all_nodes(graph):
        raw = n.get_label() or ""
        m = re.search(r"<B>(.*?)</B>", raw)
        out[html_text(m.group(1) if m else raw).strip()] = n
    return out


def edge_labels(graph):
    return [e.get_label().strip('"') for e in graph.get_edges()]


@pytest.fixture(scope="module")
def real_experiment(tmp_path_factory):
    return make_real_experiment(tmp_path_factory.mktemp("real") / "prov")


def test_prov_shapes_and_colours():
    graph = parse(prov2dot.prov_to_dot(synthetic_run()))
    nodes = titles(graph)
    entity, activity, agent = nodes["p0"], nodes["exp run 0 rank 0"], nodes["alice"]
    assert (entity.get_shape(), entity.get_fillcolor().strip('"')) == ("ellipse", "#FFFC87")
    assert (activity.get_shape(), activity.get_fillcolor().strip('"')) == ("box", "#9FB1FC")
    assert (agent.get_shape(), agent.get_fillcolor().strip('"')) == ("house", "#FED37F")
    assert graph.get_rankdir() == "RL"  # causes on the left, effects on the right: a wide rank becomes a column


def test_one_node_per_metric_series_and_edges_named_by_relation():
    graph = parse(prov2dot.prov_to_dot(synthetic_run(n_series=4), fold=False))  # every relation drawn
    nodes = titles(graph)
    assert [t for t in nodes if t.startswith("m") and "(" in t] == [
        "m0 (training)", "m1 (validation)", "m2 (training)", "m3 (validation)"]
    labels = set(edge_labels(graph))
    for relation in ("wasGeneratedBy", "used", "wasDerivedFrom", "wasAssociatedWith", "actedOnBehalfOf",
                     "wasInformedBy", "hadMember", "specializationOf", "hadPlan"):
        assert relation in labels, relation


def test_attributes_are_trimmed_and_the_type_comes_first():
    nodes = titles(parse(prov2dot.prov_to_dot(synthetic_run(n_series=1), max_attributes=3)))
    metric = label(nodes["m0 (training)"])
    assert "mls:ModelEvaluation, provml:Metric" in metric
    assert re.search(r"count\s+1000", metric) and re.search(r"min\s+0", metric)  # FIRST_ATTRIBUTES first
    assert "max" not in metric
    assert re.search(r"… \d+ more", metric)


def test_no_attributes_gives_titles_only():
    graph = parse(prov2dot.prov_to_dot(synthetic_run(), show_attributes=False))
    assert all("TABLE" not in (n.get_label() or "") for n in all_nodes(graph))


def test_labels_are_shortened_keeping_the_tail():
    doc = ProvDocument()
    doc.add_namespace("ex", "http://www.example.org/")
    doc.entity("ex:a/very/long/path/to/some/deeply/nested/thing/model_step_12.pt")
    doc.entity("ex:x", {"prov:label": "y" * 100})
    nodes = titles(parse(prov2dot.prov_to_dot(doc, max_label=30)))
    assert "…/thing/model_step_12.pt" in nodes
    long = [t for t in nodes if t.startswith("yyy")]
    assert len(long) == 1 and len(long[0]) == 30 and "…" in long[0]


def test_a_thousand_model_versions_fold_into_one_node():
    doc = synthetic_run(n_series=60, n_versions=1000, n_params=5)
    graph = parse(prov2dot.prov_to_dot(doc))
    nodes = titles(graph)
    assert "model versions ×1000" in nodes and not any(t.startswith("models/net/net_step") for t in nodes)
    folded = nodes["model versions ×1000"]
    assert "net_step0.pt" in folded.get_label() and "net_step999.pt" in folded.get_label()  # from ... to
    assert "wasGeneratedBy ×1000" in edge_labels(graph)
    assert not any(e.get_source() == e.get_destination() for e in graph.get_edges())


def test_a_thousand_model_versions_collapse_into_a_summary_node(tmp_path):
    doc = synthetic_run(n_series=60, n_versions=1000, n_params=5)
    graph = parse(prov2dot.prov_to_dot(doc, fold=False))
    nodes = titles(graph)
    assert "… 980 more model versions" in nodes
    assert "… 40 more metric series" in nodes
    assert "models/net/net_step0.pt" in nodes and "models/net/net_step999.pt" in nodes
    assert "models/net/net_step500.pt" not in nodes
    assert len(all_nodes(graph)) < 80
    summary = nodes["… 980 more model versions"].get_name()
    derived = [e for e in graph.get_edges() if e.get_label().strip('"').startswith("wasDerivedFrom")]
    assert any(e.get_source() == summary for e in derived) and any(e.get_destination() == summary for e in derived)
    assert not any(e.get_source() == e.get_destination() for e in graph.get_edges())
    assert "wasGeneratedBy ×980" in edge_labels(graph)
    # and Graphviz opens it quickly
    path = tmp_path / "big.dot"
    path.write_text(graph.to_string())
    subprocess.run(["dot", "-Tsvg", "-o", str(tmp_path / "big.svg"), str(path)], check=True, timeout=60)


def test_attributes_are_dropped_above_the_node_limit():
    doc = synthetic_run(n_series=5)
    graph = parse(prov2dot.prov_to_dot(doc, attribute_node_limit=10))
    assert all("TABLE" not in (n.get_label() or "") for n in all_nodes(graph))
    graph = parse(prov2dot.prov_to_dot(doc, attribute_node_limit=1000))
    assert any("TABLE" in (n.get_label() or "") for n in all_nodes(graph))


def test_undeclared_elements_are_drawn_dashed_and_odd_text_is_escaped(tmp_path):
    doc = ProvDocument()
    doc.add_namespace("ex", "http://www.example.org/")
    a = doc.activity("ex:train", other_attributes={"ex:note": 'a <b> & "c" \\ d'})
    doc.used(a, "ex:undeclared_data")
    graph = parse(prov2dot.prov_to_dot(doc))
    ghost = titles(graph)["undeclared_data"]
    assert "dashed" in ghost.get_style()
    path = tmp_path / "odd.dot"
    path.write_text(graph.to_string())
    subprocess.run(["dot", "-Tsvg", "-o", os.devnull, str(path)], check=True, timeout=60)


def test_bundles_are_clusters_and_shared_elements_stay_outside(tmp_path):
    from prov4ml.prov_collection import create_collection

    exp = write_experiment(tmp_path, "exp", runs=1, ranks=2)
    doc = ProvDocument.deserialize(str(create_collection(exp, tmp_path)))
    graph = parse(prov2dot.prov_to_dot(doc))
    clusters = graph.get_subgraphs()
    assert len(clusters) == 2
    top = {html_text(n.get_label() or "") for n in graph.get_nodes()}
    assert any("alice" in t for t in top)  # the user is in both documents
    inside = " ".join(html_text(n.get_label() or "") for c in clusters for n in c.get_nodes())
    assert "m0 (training)" in inside and "alice" not in inside
    # the collection declares each rank's run activity at its top level too (it links them there)
    assert any("exp run 0 rank 0" in t for t in top) and any("exp run 0 rank 1" in t for t in top)


@pytest.mark.parametrize("kw", [{"max_attributes": -1}, {"max_per_kind": 1}, {"max_label": "x"}])
def test_bad_options_are_errors(kw):
    with pytest.raises(InvalidValueError):
        prov2dot.prov_to_dot(synthetic_run(), **kw)


def test_convert_writes_the_dot_file(tmp_path):
    src = tmp_path / "prov_rank0.json"
    src.write_text(synthetic_run().serialize(format="json"))
    out = prov2dot.convert(src, tmp_path / "sub" / "prov_rank0.dot", show_attributes=False)
    assert out == tmp_path / "sub" / "prov_rank0.dot"
    assert "exp run 0 rank 0" in label(titles(parse(out.read_text()))["exp run 0 rank 0"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["prov_rank0.dot"]  # no temporary file left


BAD_INPUTS = {
    "missing": None,
    "empty": "",
    "truncated": '{"entity": {"ex:a": {"prov:label": "a"',
    "not_json": "hello",
    "a_list": "[1, 2]",
    "not_prov": '{"model": {"layers": 3}}',
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    src = tmp_path / "in.json"
    if BAD_INPUTS[case] is not None:
        src.write_text(BAD_INPUTS[case])
    out = tmp_path / "out.dot"
    out.write_text("previous")
    assert prov2dot.main(["--prov_json", str(src), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("prov4ml.prov2dot: error: ") and str(src) in err
    assert out.read_text() == "previous"
    with pytest.raises(ProvFileError):
        prov2dot.convert(src, out)


def test_cli_on_a_real_run(real_experiment, tmp_path):
    src = real_experiment / "run_0" / "prov_rank1.json"
    out = tmp_path / "graph.dot"
    proc = subprocess.run([sys.executable, "-m", "prov4ml.prov2dot", "--prov_json", str(src), "--output", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    nodes = titles(parse(out.read_text()))
    assert "graphs run 0 rank 1" in nodes and "loss (training)" in nodes and "val_loss (validation)" in nodes
    assert "lr" in nodes


def test_cli_error_has_no_traceback(tmp_path):
    bad = tmp_path / "prov_rank0.json"
    bad.write_text('{"entity": {')
    proc = subprocess.run([sys.executable, "-m", "prov4ml.prov2dot", "--prov_json", str(bad), "--output",
                           str(tmp_path / "g.dot")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1 and "cut short" in proc.stderr
    assert not (tmp_path / "g.dot").exists()
