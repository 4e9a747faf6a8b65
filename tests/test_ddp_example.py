"""examples/ddp.py under torchrun: two gloo ranks on CPU, a document per rank, one collection."""

import subprocess
import sys

import pytest

from conftest import ROOT, load_doc


def test_ddp_example_with_torchrun(tmp_path):
    for module in ("lxml", "rdflib", "jsonschema"):
        pytest.importorskip(module)
    import provcheck

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
        provcheck.check_all(run_dir / f"prov_rank{rank}.json", tmp_path)

    collection = out / "ddp" / "ddp_collection.json"
    assert f"collection of 2 ranks written to {collection}" in proc.stdout
    doc = load_doc(collection)
    provcheck.check_all(collection, tmp_path)
    assert sorted(str(b.identifier) for b in doc.bundles) == [
        "ex:ddp.run_0.rank0.document", "ex:ddp.run_0.rank1.document"]

    def pairs(kind):
        return sorted((str(r.formal_attributes[0][1]), str(r.formal_attributes[1][1]))
                      for r in doc.get_records() if r.is_relation() and r.get_type().localpart == kind)

    # the ranks ran side by side: each informs the other
    assert pairs("Communication") == [("ex:ddp.run_0.rank0", "ex:ddp.run_0.rank1"), ("ex:ddp.run_0.rank1", "ex:ddp.run_0.rank0")]
    # DistributedDataParallel keeps the weights equal: each epoch's version is one file content on both ranks
    assert pairs("Alternate") == [(f"ex:ddp.run_0.rank1.model_version.regressor.{e}", f"ex:ddp.run_0.rank0.model_version.regressor.{e}")
                                  for e in range(2)]
    epochs = [r for b in doc.bundles for r in b.get_records() if r.is_element()
              and "provml:Epoch" in {str(t) for t in r.get_asserted_types()}]
    assert len(epochs) == 4  # two epochs on each rank
