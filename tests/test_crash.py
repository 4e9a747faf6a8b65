"""Real processes killed or failing: the PROV-JSON stays readable, flushed points stay on disk."""

import signal
import subprocess
import time

import pandas as pd
import pytest

from conftest import load_doc, load_json, run_python, series_entity

LOGGER = """
import sys, time, prov4ml
run = prov4ml.start_run("www.example.org", "crash", {save_dir!r}, save_after_n_logs=100, capture=False)
for i in range(1050):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
prov4ml.log_param("lr", 0.1)
{after}
"""


def wait_for(proc, text, timeout=60):
    deadline = time.time() + timeout
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if proc.poll() is not None:
            break
    raise AssertionError(f"child never printed {text!r}: {line!r} {proc.stderr.read() if proc.stderr else ''}")


def run_dir(tmp_path):
    return tmp_path / "prov" / "crash" / "run_0"


def child(tmp_path, after):
    code = LOGGER.format(save_dir=str(tmp_path / "prov"), after=after)
    return run_python(code, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def signal_when_ready(proc, sig, delay=0.0):
    """Wait for READY, optionally a moment more, send ``sig``; returns the exit status."""
    try:
        wait_for(proc, "READY")
        time.sleep(delay)
        proc.send_signal(sig)
        return proc.wait(30)
    finally:
        proc.kill()


def test_sigkill_keeps_every_flushed_point_and_a_readable_document(tmp_path):
    proc = child(tmp_path, "time.sleep(1.0)\nprint('READY', flush=True)\ntime.sleep(600)")
    signal_when_ready(proc, signal.SIGKILL)
    d = run_dir(tmp_path)
    load_doc(d / "prov_rank0.json")
    df = pd.read_csv(d / "metrics" / "loss_training_rank0.csv")
    # 1051 log calls with save_after_n_logs=100: the first 1000 points were handed over before the kill
    assert len(df) >= 1000
    assert df["step"].tolist() == list(range(len(df)))
    s = series_entity(load_json(d / "prov_rank0.json"), "loss")
    assert s["provml:count"] >= 1000


def test_sigkill_at_a_random_moment_during_logging(tmp_path):
    proc = child(tmp_path, "print('READY', flush=True)\nwhile True:\n    prov4ml.log_metric('loss', 1.0, prov4ml.Context.TRAINING)")
    signal_when_ready(proc, signal.SIGKILL, delay=0.7)
    d = run_dir(tmp_path)
    load_doc(d / "prov_rank0.json")
    df = pd.read_csv(d / "metrics" / "loss_training_rank0.csv")
    assert len(df) >= 1000 and df["value"].notna().all()
    count = series_entity(load_json(d / "prov_rank0.json"), "loss")["provml:count"]
    assert 0 < count <= len(df)  # the document never claims points that are not on disk


def test_sigterm_drains_everything_and_marks_the_run(tmp_path):
    proc = child(tmp_path, "print('READY', flush=True)\ntime.sleep(600)")
    assert signal_when_ready(proc, signal.SIGTERM) == -signal.SIGTERM
    d = run_dir(tmp_path)
    df = pd.read_csv(d / "metrics" / "loss_training_rank0.csv")
    assert len(df) == 1050
    data = load_json(d / "prov_rank0.json")
    assert data["activity"]["ex:crash/run_0/rank0"]["provml:status"] == "terminated"
    assert series_entity(data, "loss")["provml:count"] == 1050


@pytest.mark.parametrize("after, status", [
    ("raise RuntimeError('diverged at epoch 3')", "failed"),
    ("pass  # the script forgets end_run", "finished"),
])
def test_uncaught_exception_and_forgotten_end_run(tmp_path, after, status):
    proc = child(tmp_path, after)
    _, err = proc.communicate(timeout=60)
    d = run_dir(tmp_path)
    data = load_json(d / "prov_rank0.json")
    activity = data["activity"]["ex:crash/run_0/rank0"]
    assert activity["provml:status"] == status
    assert len(pd.read_csv(d / "metrics" / "loss_training_rank0.csv")) == 1050
    if status == "failed":
        assert proc.returncode == 1 and "diverged at epoch 3" in err  # the traceback still shows
        assert activity["provml:error_type"] == "RuntimeError"
        assert activity["provml:error_message"] == "diverged at epoch 3"
