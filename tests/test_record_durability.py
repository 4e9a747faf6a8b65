"""Every record whose call returned survives a SIGKILL: the kill matrix for records.

A realistic loop (5 metrics a step, a parameter every 10 steps, a model version
every 20, an artifact every 25) tells, after each record call returns, how
many of each kind it has made. It is killed (the process, or its whole group)
at several moments, during ``end_run`` too; after ``prov4ml recover`` the
document must hold every told record, compared one by one (name, value, step,
hash), and nothing beyond the one call that may have returned just before the
kill and not been told yet.
"""

import hashlib
import signal
import time

import pytest

import prov4ml
from killing import Child, wait_for_sinks
from prov4ml import runs

LOOP = """
import torch
model = torch.nn.Linear(4, 2)
run = prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False)
params = versions = artifacts = 0
step = 0
while True:
    for k in range(5):
        prov4ml.log_metric(f"m{{k}}", step * 0.5 + k, prov4ml.Context.TRAINING, step=step)
    tell(5 * (step + 1))
    if step % 10 == 0:
        prov4ml.log_param(f"p{{params}}", params * 1.5)
        params += 1
        store(3, params)
    if step % 20 == 0:
        with torch.no_grad():
            model.weight.fill_(versions)
        prov4ml.save_model_version(model, "net", prov4ml.Context.TRAINING, step=step)
        versions += 1
        store(4, versions)
    if step % 25 == 0:
        path = f"art_{{artifacts}}.txt"
        with open(path, "w") as fh:
            fh.write(f"artifact {{artifacts}}\\n" * 100)
        prov4ml.log_artifact(path, prov4ml.Context.TRAINING, step=step)
        artifacts += 1
        store(5, artifacts)
    if step == 33:
        prov4ml.register_final_metric("best_m0", float("inf"), min)
        store(7, 1)
    step += 1
    if step == {flag_at}:
        flag(1)
    if step == {end_at}:
        prov4ml.log_param("last", "before end_run")
        store(6, 1)
        prov4ml.end_run()
        flag(2)
        time.sleep(600)
"""


def _store(child, slot):
    return child._read(slot)


def _recovered(child):
    """The killed child's run directory, once its sink is done and recover has completed it."""
    d = child.run_dir()
    wait_for_sinks(d)
    prov4ml.recover(d)
    return d


def _killed_after_a_refresh(tmp_path, body):
    """Run ``body`` (which raises flag 2 two seconds after its records), SIGKILL it, recover it."""
    child = Child(tmp_path, body)
    child.wait_flag(2, timeout=60)
    child.kill(signal.SIGKILL)
    return _recovered(child)


def _check(run_dir, params, versions, artifacts, last, final):
    record = runs.read_run(run_dir)
    if final:  # registered: the final metric is in the document (its value, when a refresh saved one)
        assert "best_m0" in record.final_metrics
    got_params = {k: v for k, v in record.params.items() if k.startswith("p") and k[1:].isdigit()}
    assert len(got_params) in (params, params + 1), (len(got_params), params)
    assert got_params == {f"p{i}": i * 1.5 for i in range(len(got_params))}
    if last:
        assert record.params.get("last") == "before end_run"
    got_versions = sorted((a for a in record.artifacts if a["kind"] == "model_version"), key=lambda a: a["step"])
    assert len(got_versions) in (versions, versions + 1), (len(got_versions), versions)
    assert [a["step"] for a in got_versions] == [20 * i for i in range(len(got_versions))]
    for a in got_versions:  # the file is there, whole, and the hash the record states is its content's
        assert hashlib.sha256((run_dir / a["location"]).read_bytes()).hexdigest() == a["sha256"]
    got_artifacts = sorted((a for a in record.artifacts if a["kind"] == "artifact" and str(a["name"]).startswith("art_")),
                           key=lambda a: a["step"])
    assert len(got_artifacts) in (artifacts, artifacts + 1), (len(got_artifacts), artifacts)
    for i, a in enumerate(got_artifacts):
        assert a["name"] == f"art_{i}.txt" and a["step"] == 25 * i
        content = (f"artifact {i}\n" * 100).encode()
        assert a["sha256"] == hashlib.sha256(content).hexdigest()
        assert (run_dir / a["location"]).read_bytes() == content


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
@pytest.mark.parametrize("delay", [0.0, 0.2, 1.0])
def test_a_kill_mid_loop_keeps_every_record_whose_call_returned(tmp_path, delay, group):
    child = Child(tmp_path, LOOP.replace("{flag_at}", "60").replace("{end_at}", "10**9"), group=group)
    child.wait_flag(1, timeout=120)
    time.sleep(delay)
    child.kill(signal.SIGKILL)
    told = [_store(child, k) for k in (3, 4, 5)]
    assert told[0] >= 6 and told[1] >= 3 and told[2] >= 3
    _check(_recovered(child), *told, last=False, final=_store(child, 7))


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.05])
def test_a_kill_during_end_run_keeps_the_last_record(tmp_path, delay):
    child = Child(tmp_path, LOOP.replace("{flag_at}", "10**9").replace("{end_at}", "40"))
    deadline = time.monotonic() + 120
    while not _store(child, 6):  # the last parameter's call returned; end_run starts
        assert time.monotonic() < deadline and child.proc.poll() is None
        time.sleep(0.0005)
    time.sleep(delay)
    child.kill(signal.SIGKILL)
    told = [_store(child, k) for k in (3, 4, 5)]
    # recover has nothing to do when end_run had finished: the final document holds everything
    _check(_recovered(child), *told, last=True, final=_store(child, 7))


def test_a_parameter_of_the_users_own_int_enum_and_every_later_record_survive(tmp_path):
    body = (
        "import enum\n"
        "class Level(enum.IntEnum):\n    LOW = 1\n"
        "prov4ml.start_run('www.example.org', 'crash', {save_dir!r}, capture=False)\n"
        "prov4ml.log_param('before', 1)\nprov4ml.log_param('level', Level.LOW)\nprov4ml.log_param('after', 2)\n"
        "flag(1)\ntime.sleep(2)\nflag(2)\ntime.sleep(600)\n"  # a refresh saves state.pickle in between
    )
    assert runs.read_run(_killed_after_a_refresh(tmp_path, body)).params == {"before": 1, "level": 1, "after": 2}


def test_records_the_journal_missed_but_a_refresh_saved_are_kept_by_recover(tmp_path):
    body = (
        "import errno\n"
        "prov4ml.start_run('www.example.org', 'crash', {save_dir!r}, capture=False)\n"
        "prov4ml.log_param('ok', 1)\n"
        "def enospc(*a, **k):\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "real_pwrite, real_fallocate = os.pwrite, os.posix_fallocate\n"
        "os.pwrite = os.posix_fallocate = enospc\n"
        "for i in range(3):\n    prov4ml.log_param(f'p{{i}}', i)\n"
        "os.pwrite, os.posix_fallocate = real_pwrite, real_fallocate\n"
        "flag(1)\ntime.sleep(2)\nflag(2)\ntime.sleep(600)\n"  # the refresh saves them in state.pickle
    )
    record = runs.read_run(_killed_after_a_refresh(tmp_path, body))
    assert record.params == {"ok": 1, "p0": 0, "p1": 1, "p2": 2}
    assert record.notes.get("records_not_journaled") == 3


def test_a_run_killed_inside_end_run_is_completed_as_finished_not_killed(tmp_path):
    body = (
        "run = prov4ml.start_run('www.example.org', 'crash', {save_dir!r}, capture=False)\n"
        "for i in range(1000):\n    prov4ml.log_metric('loss', float(i), 'training', step=i)\n"
        "prov4ml.log_param('lr', 0.1)\n"
        "def stuck():\n    flag(1)\n    time.sleep(600)\n"
        "run._finalize_files = stuck  # end_run has begun, its files are not finished yet\n"
        "prov4ml.end_run()\n"
    )
    child = Child(tmp_path, body)
    child.wait_flag(1, timeout=60)
    child.kill(signal.SIGKILL)
    record = runs.read_run(_recovered(child))
    assert record.status == "finished" and record.params == {"lr": 0.1}
    assert "ended before end_run had written every file" in record.notes["recovered"]
    assert next(s for s in record.series if s.name == "loss").count == 1000
