"""Every example runs end to end (a smoke test) and says where its provenance went."""

import subprocess
import sys

import pytest

from conftest import ROOT, load_doc


@pytest.mark.parametrize("script", ["quickstart.py", "mnist_style.py", "lightning_example.py"])
def test_example_runs(script, tmp_path):
    out = tmp_path / "prov"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    documents = sorted(out.rglob("prov_rank0.json"))
    assert documents, proc.stdout
    assert str(out) in proc.stdout
    for doc in documents:
        load_doc(doc)
    # per-batch points go at a global step: no series holds two points at one step
    for series in out.rglob("metrics/*.csv"):
        steps = [line.split(",")[0] for line in series.read_text().splitlines()[1:]]
        assert len(steps) == len(set(steps)), f"{series.name} repeats steps"
