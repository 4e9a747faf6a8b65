"""Attack wave 10: prov4ml's own temporaries, told by their form, against the user's files named like them.

Real runs, real SIGKILLs (tests/killing.py). `prov4ml recover` must remove prov4ml's leftovers (half-written
atomic writes, unfinished recoveries, `.<name>.partial` folder copies) and keep every file the user logged,
whatever its name; the object-storage mirror's `_files` must select every user file and skip prov4ml's own.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from killing import Child, kill_leftovers, wait_for_sinks

# Logged as files (log_artifact) ...
USER_FILES = {"x.tmp": b"user x.tmp", ".x.tmp": b"user .x.tmp", ".a.abcdefgh.tmp": b"user .a.abcdefgh.tmp",
              "w.recovering": b"user w.recovering"}
# ... and as folders: `.c.partial` itself, and `ckpt` holding files named like temporaries.
USER_FOLDERS = {".c.partial": {"f.txt": b"user f"},
                "ckpt": {".a.abcdefgh.tmp": b"ckpt a", "x.tmp": b"ckpt x", "w.recovering": b"ckpt w",
                         ".lock.tmp": b"ckpt lock", ".d.partial/g.txt": b"ckpt g"}}
# A checkpoint file given to save_model_version keeps its name under artifacts/models/<name>/.
CHECKPOINT = ".m.abcdefgh.tmp"

# What a kill leaves of prov4ml's own (planted as the code names them: atomic_write's mkstemp, recovery's
# side file, an artifact folder's copy under `.<name>.partial`).
OURS = [".prov_rank0.json.a1b2c3d4.tmp", "artifacts/.big.partial/blob.bin", "artifacts/.note.txt.k3j9x_2q.tmp",
        "metrics/loss_training_rank0.csv.recovering"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _user_files() -> dict:
    """Relative path in the run -> bytes, of everything the user logged."""
    out = {f"artifacts/{n}": b for n, b in USER_FILES.items()}
    for folder, files in USER_FOLDERS.items():
        out.update({f"artifacts/{folder}/{rel}": b for rel, b in files.items()})
    out[f"artifacts/models/m/{CHECKPOINT}"] = b"checkpoint bytes"
    return out


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A real run that logged the user's files, SIGKILLed (group) mid-run, with prov4ml leftovers planted;
    returns (run_dir, mirror selection before recover, mirror selection after, metric rows before)."""
    from prov4ml.storage.mirror import _files

    tmp_path = tmp_path_factory.mktemp("wave10")
    src = tmp_path / "src"  # not the child's working directory: log_artifact refuses a name that is a path there
    for name, data in USER_FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    for folder, files in USER_FOLDERS.items():
        for rel, data in files.items():
            (src / folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / folder / rel).write_bytes(data)
    (src / CHECKPOINT).write_bytes(b"checkpoint bytes")
    names = [*USER_FILES, *USER_FOLDERS]
    child = Child(tmp_path, f"""
S = {str(src)!r}
prov4ml.start_run("www.example.org", "crash", {{save_dir!r}}, capture=False)
for n in {names!r}:
    prov4ml.log_artifact(n, os.path.join(S, n), prov4ml.Context.TRAINING)
prov4ml.save_model_version("m", os.path.join(S, {CHECKPOINT!r}), prov4ml.Context.TRAINING, step=0)
for i in range(200):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    tell(i + 1)
flag(1)
time.sleep(600)
""", group=True)
    try:
        child.wait_flag()
        child.kill()
    finally:
        kill_leftovers()
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    for rel in OURS:
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / rel).write_bytes(b"half")
    before = sorted(rel for rel, _p, _m in _files(run_dir))
    from prov4ml.run.recovery import recover

    recover(run_dir)
    after = sorted(rel for rel, _p, _m in _files(run_dir))
    return run_dir, before, after


def _present(run_dir: Path) -> dict:
    return {rel: (run_dir / rel).read_bytes() for rel in _user_files() if (run_dir / rel).is_file()}


def test_recover_keeps_logged_files_with_ordinary_temporary_like_names(killed_run):
    run_dir, _b, _a = killed_run
    for rel in ("artifacts/x.tmp", "artifacts/.x.tmp", "artifacts/w.recovering"):
        assert (run_dir / rel).read_bytes() == _user_files()[rel], rel


def test_recover_keeps_the_files_inside_a_logged_folder(killed_run):
    run_dir, _b, _a = killed_run
    for rel, data in USER_FOLDERS["ckpt"].items():
        assert (run_dir / "artifacts/ckpt" / rel).read_bytes() == data, rel


def test_recover_keeps_a_logged_file_named_like_an_atomic_write_temporary(killed_run):
    """log_artifact('.a.abcdefgh.tmp', file): docs say recover never removes a logged file."""
    run_dir, _b, _a = killed_run
    assert (run_dir / "artifacts/.a.abcdefgh.tmp").is_file(), "recover removed the user's logged file"


def test_recover_keeps_a_model_version_checkpoint_named_like_an_atomic_write_temporary(killed_run):
    """save_model_version('m', '.m.abcdefgh.tmp'): the checkpoint keeps its name under artifacts/models/m/."""
    run_dir, _b, _a = killed_run
    assert (run_dir / "artifacts/models/m" / CHECKPOINT).is_file(), "recover removed the model version's file"


def test_recover_keeps_a_logged_folder_named_like_a_partial_copy(killed_run):
    """log_artifact('.c.partial', folder): a finished, logged folder, not a copy in progress."""
    run_dir, _b, _a = killed_run
    assert (run_dir / "artifacts/.c.partial/f.txt").is_file(), "recover removed the user's logged folder"


def test_recover_removes_prov4mls_own_leftovers_and_completes_the_run(killed_run):
    run_dir, _b, _a = killed_run
    for rel in OURS:
        assert not (run_dir / rel).exists(), rel
    assert not (run_dir / "artifacts/.big.partial").exists()
    from prov4ml import analysis

    assert analysis.load_run(run_dir).info["status"] == "killed"


def test_recover_keeps_every_metric_row_and_a_second_recover_changes_nothing(killed_run):
    from killing import read_rows
    from prov4ml.run.recovery import recover

    run_dir, _b, _a = killed_run
    rows = read_rows(run_dir / "metrics/loss_training_rank0.csv")
    assert rows == [(i, i * 0.5) for i in range(200)]
    files = {p.relative_to(run_dir).as_posix(): _digest(p) for p in run_dir.rglob("*")
             if p.is_file() and ".prov4ml" not in p.parts and not p.name.startswith("prov_rank")}
    recover(run_dir, force=True)
    again = {p.relative_to(run_dir).as_posix(): _digest(p) for p in run_dir.rglob("*")
             if p.is_file() and ".prov4ml" not in p.parts and not p.name.startswith("prov_rank")}
    assert again == files


def test_mirror_skips_prov4mls_own_leftovers(killed_run):
    _run_dir, before, _after = killed_run
    assert not set(OURS) & set(before)


def test_mirror_selects_every_user_file_named_like_an_ordinary_temporary(killed_run):
    _run_dir, before, _after = killed_run
    for rel in ("artifacts/x.tmp", "artifacts/.x.tmp", "artifacts/w.recovering", "artifacts/ckpt/x.tmp",
                "artifacts/ckpt/w.recovering", "artifacts/ckpt/.lock.tmp"):
        assert rel in before, rel


def test_parquet_run_killed_mid_loop_recovers_every_row_twice(tmp_path):
    """metrics_file_type="parquet", the process group SIGKILLed inside a tight loop, a conversion's .tmp
    planted: recover (twice) leaves every row whose call returned, in order, and no temporary."""
    pytest.importorskip("pyarrow")
    import pandas as pd

    from prov4ml.run.recovery import recover

    child = Child(tmp_path, """
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False, metrics_file_type="parquet")
flag(1)
i = 0
while True:
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    i += 1
    tell(i)
""", group=True)
    try:
        child.wait_flag()
        time.sleep(0.3)
        child.kill()
    finally:
        kill_leftovers()
    logged = child.logged
    assert logged > 0
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    (run_dir / "metrics").mkdir(exist_ok=True)
    (run_dir / "metrics/loss_training_rank0.parquet.tmp").write_bytes(b"half a conversion")
    for _ in range(2):
        recover(run_dir, force=True)
        df = pd.read_parquet(run_dir / "metrics/loss_training_rank0.parquet")
        n = len(df)
        assert n >= logged
        assert df["step"].tolist() == list(range(n)) and df["value"].tolist() == [i * 0.5 for i in range(n)]
        assert not (run_dir / "metrics/loss_training_rank0.parquet.tmp").exists()
        assert not list((run_dir / "metrics").glob("*.recovering"))


def test_a_kill_while_a_large_folder_is_copied_leaves_nothing_after_recover(tmp_path):
    """SIGKILL while log_artifact copies a folder of many files: recover removes the `.big.partial` copy,
    keeps the artifact logged before it, and the mirror never sends the half copy."""
    from prov4ml.run.recovery import recover
    from prov4ml.storage.mirror import _files

    src = tmp_path / "src"
    (src / "big").mkdir(parents=True)
    for i in range(3000):
        (src / "big" / f"f{i:05d}.bin").write_bytes(b"x" * 4096)
    (src / "keep.txt").write_text("kept")
    child = Child(tmp_path, f"""
prov4ml.start_run("www.example.org", "crash", {{save_dir!r}}, capture=False)
prov4ml.log_artifact("keep.txt", {str(src / "keep.txt")!r}, prov4ml.Context.TRAINING)
prov4ml.log_metric("loss", 0.5, prov4ml.Context.TRAINING, step=0)
flag(1)
while True:
    prov4ml.log_artifact("big", {str(src / "big")!r}, prov4ml.Context.TRAINING)
""", group=True)
    run_dir = child.run_dir()
    try:
        child.wait_flag()
        deadline = time.monotonic() + 30
        while not (run_dir / "artifacts/.big.partial").is_dir() and time.monotonic() < deadline:
            time.sleep(0.001)
        child.kill()
    finally:
        kill_leftovers()
    wait_for_sinks(run_dir)
    partials = list((run_dir / "artifacts").glob(".*.partial"))
    assert partials, "the kill did not land inside a folder copy"
    assert not [rel for rel, _p, _m in _files(run_dir) if ".partial/" in rel]
    recover(run_dir)
    assert not list((run_dir / "artifacts").glob(".*.partial"))
    assert (run_dir / "artifacts/keep.txt").read_text() == "kept"
    recover(run_dir, force=True)
    assert (run_dir / "artifacts/keep.txt").read_text() == "kept"
