"""dot2svg: Graphviz renders the DOT graph; no Graphviz, bad DOT or a failure leave nothing half written."""

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT
from conftest_graphs import make_real_experiment, synthetic_run
from prov4ml import dot2svg, prov2dot
from prov4ml.exceptions import MissingDependencyError, ProvFileError

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return [t.text for t in root.iter(f"{SVG}text") if t.text]


@pytest.fixture
def dot_file(tmp_path):
    path = tmp_path / "prov_rank0.dot"
    path.write_text(prov2dot.prov_to_dot(synthetic_run(), fold=False).to_string())  # every relation drawn
    return path


def test_convert_renders_svg(dot_file, tmp_path):
    out = dot2svg.convert(dot_file, tmp_path / "out" / "prov_rank0.svg")
    texts = svg_texts(out)
    assert "exp run 0 rank 0" in texts and "alice" in texts and "wasDerivedFrom" in texts
    assert sorted(p.name for p in out.parent.iterdir()) == ["prov_rank0.svg"]
    assert out.stat().st_mode & 0o777 == 0o644


def test_missing_graphviz_names_the_install_commands(dot_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dot2svg.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="apt-get install graphviz / brew install graphviz / conda"):
        dot2svg.convert(dot_file, tmp_path / "g.svg")
    assert dot2svg.main(["--dot", str(dot_file), "--output", str(tmp_path / "g.svg")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install Graphviz" in err
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("content", [None, "", "digraph { a -> }", "this is not dot"])
def test_bad_dot_is_one_line_and_keeps_the_old_output(content, tmp_path, capsys):
    src = tmp_path / "in.dot"
    if content is not None:
        src.write_text(content)
    out = tmp_path / "out.svg"
    out.write_text("previous")
    assert dot2svg.main(["--dot", str(src), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("prov4ml.dot2svg: error: ") and str(src) in err
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.svg"] + (["in.dot"] if content is not None else []))
    with pytest.raises(ProvFileError):
        dot2svg.convert(src, out)


def test_cli_on_a_real_run(tmp_path):
    exp = make_real_experiment(tmp_path / "prov")
    src = exp / "run_0" / "prov_rank0.json"
    dot, svg = tmp_path / "g.dot", tmp_path / "g.svg"
    env_cmds = [
        [sys.executable, "-m", "prov4ml.prov2dot", "--prov_json", str(src), "--output", str(dot)],
        [sys.executable, "-m", "prov4ml.dot2svg", "--dot", str(dot), "--output", str(svg)],
    ]
    for cmd in env_cmds:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
    texts = svg_texts(svg)
    assert "graphs run 0 rank 0" in texts and "loss (training)" in texts
