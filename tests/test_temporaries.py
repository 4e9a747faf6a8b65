"""What prov4ml takes for a temporary of its own (an atomic write's, a recovery's or a conversion's in
metrics/), which recover removes and the object-storage mirror does not send, and what it leaves alone: the
user's files, whatever their names (an artifact `cache.tmp`, a checkpoint folder's `.lock.tmp`)."""

from __future__ import annotations

import os
import tempfile

import prov4ml
from killing import Child, wait_for_sinks
from prov4ml._fs import is_temporary


def test_every_atomic_write_temporary_is_one_and_no_user_name_is():
    folder = tempfile.mkdtemp()
    for _ in range(500):
        fd, path = tempfile.mkstemp(prefix=".prov_rank0.json.", suffix=".tmp", dir=folder)  # as atomic_write
        os.close(fd)
        name = os.path.basename(path)
        assert is_temporary(name) and is_temporary(f"artifacts/models/m/{name}")
    assert is_temporary("metrics/loss_training_rank0.csv.recovering")
    assert is_temporary("metrics/loss_training_rank0.parquet.tmp")
    for name in ("cache.tmp", ".cache.tmp", "artifacts/ckpt/.lock.tmp", "artifacts/w.recovering", "artifacts/x.tmp",
                 ".a.b.tmp", ".a.ABCDEFGH.tmp"):
        assert not is_temporary(name), name


def test_the_mirror_sends_the_users_files_named_like_temporaries_and_not_its_own(tmp_path):
    from prov4ml.storage.mirror import _files

    run_dir = tmp_path / "run_0"
    for rel in ("artifacts/cache.tmp", "artifacts/ckpt/.lock.tmp", "artifacts/ckpt/w.recovering",
                "metrics/loss_training_rank0.csv", "metrics/loss_training_rank0.csv.recovering",
                "prov_rank0.json", ".prov_rank0.json.a1b2c3d4.tmp"):
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / rel).write_text("x")
    sent = sorted(rel for rel, _path, _mapped in _files(run_dir))
    assert sent == ["artifacts/cache.tmp", "artifacts/ckpt/.lock.tmp", "artifacts/ckpt/w.recovering",
                    "metrics/loss_training_rank0.csv", "prov_rank0.json"]


def test_recover_keeps_a_logged_file_named_like_a_temporary(tmp_path):
    from prov4ml.run.recovery import recover

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / ".cache.tmp").write_text("the user's")
    child = Child(tmp_path, f"""
prov4ml.start_run("www.example.org", "crash", {{save_dir!r}}, capture=False)
prov4ml.log_artifact(".cache.tmp", {str(tmp_path / "src" / ".cache.tmp")!r}, prov4ml.Context.TRAINING)
prov4ml.log_metric("loss", 0.5, prov4ml.Context.TRAINING, step=0)
flag(1)
time.sleep(600)
""", group=True)
    child.wait_flag()
    child.kill()
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    (run_dir / ".prov_rank0.json.a1b2c3d4.tmp").write_text("half")  # as a kill inside an atomic write leaves
    recover(run_dir)
    assert (run_dir / "artifacts" / ".cache.tmp").read_text() == "the user's"
    assert not (run_dir / ".prov_rank0.json.a1b2c3d4.tmp").exists()
    from prov4ml import analysis

    assert analysis.load_run(run_dir).info["status"] == "killed"
