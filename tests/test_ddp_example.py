"""examples/ddp.py under torchrun: two gloo ranks on CPU, a document per rank, one collection."""

import subprocess
import sys

from conftest import ROOT, load_doc


def test_ddp_example_with_torchrun(tmp_path):
    out = tmp_path / "prov"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "examples" / "ddp.py"), "--out", str(out), "--epochs", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = out / "ddp" / "run_0"
    ranks = sorted(p.name for p in run_dir.glob("prov_rank*.json"))
    assert ranks == ["prov_rank0.json", "prov_rank1.json"]
    for rank in (0, 1):
        assert f"rank {rank}: provenance written to {run_dir / f'prov_rank{rank}.json'}" in proc.stdout
        load_doc(run_dir / f"prov_rank{rank}.json")

    collection = out / "ddp" / "ddp_collection.json"
    assert f"collection of 2 ranks written to {collection}" in proc.stdout
    doc = load_doc(collection)
    assert sorted(str(b.identifier) for b in doc.bundles) == [
        "ex:ddp/run_0/rank0/document", "ex:ddp/run_0/rank1/document"]
    informed = [r for r in doc.get_records() if r.is_relation() and r.get_type().localpart == "Communication"]
    assert [(str(r.formal_attributes[0][1]), str(r.formal_attributes[1][1])) for r in informed] == [
        ("ex:ddp/run_0/rank1", "ex:ddp/run_0/rank0")]
