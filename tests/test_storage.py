"""A full disk, a read-only or missing directory: training goes on, nothing is torn or over-claimed.

The full disk is a real small tmpfs when the tests run as root (they can
mount one), else those tests are skipped: RLIMIT_FSIZE would also limit the
test process itself. The kill-while-full test always runs: its child's disk
fills at the system call (every fallocate fails with ENOSPC after start_run).
"""

import errno
import logging
import os
import subprocess
import warnings

import pytest

import prov4ml
from killing import prov_json, read_rows, series_count
from prov4ml.metrics.journal import FIRST_SLOT, SEGMENT_SLOTS


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    run = prov4ml.active_run()
    if run is not None:
        run.end()
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt):
    """Take every free byte of the file system; returns the filler's path."""
    path = mnt / "filler"
    with open(path, "wb", buffering=0) as fh:
        block = b"\0" * (1 << 16)
        while True:
            try:
                fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        for size in (4096, 512, 1):
            while True:
                try:
                    fh.write(b"\0" * size)
                except OSError:
                    break
    return path


def start(mnt, **kw):
    return prov4ml.start_run("www.example.org", "full", str(mnt / "prov"), capture=False,
                             prov_flush_interval=0.05, flush_interval=0.2, **kw)


def test_a_full_disk_stops_nothing_tears_nothing_and_writing_resumes(small_fs):
    run = start(small_fs)
    for i in range(1000):
        prov4ml.log_metric("loss", i * 0.5, "training", step=i)
    prov4ml.flush()
    csv = run.run_dir / "metrics" / "loss_training_rank0.csv"
    assert len(read_rows(csv)) == 1000
    filler = fill(small_fs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(1000, 60_000):
            prov4ml.log_metric("loss", i * 0.5, "training", step=i)  # never raises
        prov4ml.log_param("lr", 0.1)
        prov4ml.flush()
    rows = read_rows(csv)  # whole rows only
    assert rows == [(i, i * 0.5) for i in range(len(rows))]
    assert series_count(prov_json(run.run_dir), "loss") <= len(rows)  # never claims what is not on disk
    os.unlink(filler)  # space comes back
    prov4ml.flush()
    prov4ml.flush()
    assert read_rows(csv) == [(i, i * 0.5) for i in range(60_000)]
    data = prov_json(run.run_dir)
    assert series_count(data, "loss") == 60_000
    assert "could not write metric file" in data["activity"]["ex:full.run_0.rank0"]["provml:writer_errors"]
    prov4ml.end_run()
    assert series_count(prov_json(run.run_dir), "loss") == 60_000


def test_a_full_disk_keeps_the_spare_segment_then_counts_what_it_drops(small_fs, caplog):
    caplog.set_level(logging.WARNING, logger="prov4ml")
    run = start(small_fs)
    filler = fill(small_fs)
    n = 2 * (SEGMENT_SLOTS - FIRST_SLOT) + 5000  # the first segment, then the spare made ahead; then no room
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            prov4ml.log_metric("loss", float(i), "training", step=i)  # never raises, never waits in memory
    journal = run.metrics.journal
    dropped = journal.dropped
    assert 5000 <= dropped < 5100 and "could not grow" in journal.error  # a few slots go to refresh marks
    os.unlink(filler)
    prov4ml.end_run()
    kept = n - dropped
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(i, float(i)) for i in range(kept)]
    assert series_count(prov_json(run.run_dir), "loss") == kept
    assert prov_json(run.run_dir)["activity"]["ex:full.run_0.rank0"]["provml:dropped"] == {"$": str(dropped), "type": "xsd:long"}
    assert sum("provml:dropped" in r.getMessage() for r in caplog.records) == 1  # said once


def test_a_full_disk_at_end_run_warns_and_strict_raises(small_fs):
    run = start(small_fs, strict=True)
    for i in range(100):
        prov4ml.log_metric("loss", float(i), "training", step=i)
    prov4ml.flush()
    filler = fill(small_fs)
    for i in range(100, 5000):
        prov4ml.log_metric("loss", float(i), "training", step=i)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(prov4ml.StorageError, match="not everything could be written"):
            prov4ml.end_run()
    prov_json(run.run_dir)  # still readable
    os.unlink(filler)
    prov4ml.recover(run.run_dir, force=True)  # the journal was kept: the run is completed from it
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(i, float(i)) for i in range(5000)]
    activity = prov_json(run.run_dir)["activity"]["ex:full.run_0.rank0"]
    # the record journal said how the run ended, though the disk took no final document: never "killed"
    assert activity["provml:status"] == "finished" and "before end_run had written" in activity["provml:recovered"]


def test_a_full_disk_at_start_run_is_a_clear_error(small_fs):
    filler = fill(small_fs)
    with pytest.raises(prov4ml.StorageError, match="provenance_save_dir"):
        start(small_fs)
    assert prov4ml.active_run() is None
    os.unlink(filler)


def test_a_read_only_save_directory_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/prov4ml-cannot-write-here"  # read-only even for root
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "prov")
    with pytest.raises(prov4ml.StorageError, match="provenance_save_dir"):
        prov4ml.start_run("www.example.org", "x", target, capture=False)
    assert prov4ml.active_run() is None


def test_a_kill_while_the_disk_is_full_loses_no_accepted_point_and_counts_the_rest(tmp_path):
    from killing import Child, wait_for_sinks

    n = 2 * (SEGMENT_SLOTS - FIRST_SLOT) + 5000
    body = (
        "import errno, struct\n"
        "run = prov4ml.start_run('www.example.org', 'full', {save_dir!r}, capture=False)\n"
        "def no_room(*a):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "os.posix_fallocate = no_room  # the disk is full from here on: the spare segment is all the room left\n"
        f"for i in range({n}):\n"
        "    prov4ml.log_metric('loss', float(i), 'training', step=i)\n"
        "    tell(i + 1)\n"
        "struct.pack_into('<q', _mm, 16, run.metrics.journal.dropped)\n"
        "flag(1)\ntime.sleep(600)\n"
    )
    child = Child(tmp_path, body)
    child.wait_flag(1, timeout=120)
    dropped = child._read(2)
    assert child.logged == n and 5000 <= dropped < 5100
    child.kill()
    d = child.run_dir("full")
    wait_for_sinks(d)
    prov4ml.recover(d)
    kept = n - dropped
    assert read_rows(d / "metrics" / "loss_training_rank0.csv") == [(i, float(i)) for i in range(kept)]
    assert series_count(prov_json(d), "loss") == kept
