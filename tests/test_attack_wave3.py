"""Attacks on three promises, with real children and real SIGKILLs (tests/killing.py).

1. A run killed at any moment (inside ``start_run``, inside ``end_run``, right after either) leaves a run
   that ``prov4ml recover`` (the command) completes, readable, ``killed`` (``finished`` once ``end_run``
   returned), with every point whose call returned, and that ``prov4ml ls`` lists.
2. More series than open files (hard limit 256): every point after ``flush()``, after ``end_run``, and after
   a SIGKILL and ``recover``.
3. ``end_run`` while the live document is being written: a final, complete document, no temporary file
   left, and a second run in the same process works.
"""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

import prov4ml
from conftest import ROOT
from killing import Child, assert_exact, prov_json, read_rows, run_activity, series_count, wait_for_sinks

ENV = {"PYTHONPATH": str(ROOT)}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prov4ml", *args], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, **ENV})


def temporaries(run_dir: Path) -> list:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*.tmp"))


# --- 1. kills across start_run and end_run ------------------------------------------------------------

POINTS = 50

AROUND_START = """
flag(2)
run = prov4ml.start_run("www.example.org", EXPERIMENT, SAVE, save_after_n_logs=10, capture=False)
flag(1)
for i in range(%d):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    tell(i + 1)
time.sleep(600)  # no flag 3 here: it says end_run returned
""" % POINTS

AROUND_END = """
run = prov4ml.start_run("www.example.org", EXPERIMENT, SAVE, save_after_n_logs=10, capture=False)
flag(1)
for i in range(%d):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    tell(i + 1)
flag(2)
prov4ml.end_run()
flag(3)
time.sleep(600)
""" % POINTS

#: SIGKILL of the process itself at the moment start_run renames its first document into place: the
#: temporary file is whole, the run's folder, its owner and its claim exist, prov_rank0.json does not yet.
BEFORE_FIRST_DOCUMENT = """
import signal
_replace = os.replace
def replace(src, dst, *a, **k):
    if str(dst).endswith("prov_rank0.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _replace(src, dst, *a, **k)
os.replace = replace
""" + AROUND_START


#: SIGKILL of the process itself as end_run removes the journal, once the final document (finished) is in
#: place: right after the rmtree took state.pickle away, while owner.json is still there.
WHILE_THE_JOURNAL_GOES = """
import signal
_unlink = os.unlink
def unlink(path, *a, **k):
    _unlink(path, *a, **k)
    if str(path).endswith("state.pickle"):
        os.kill(os.getpid(), signal.SIGKILL)
os.unlink = unlink
""" + AROUND_END


def _kill_at(folder: Path, save: Path, experiment: str, body: str, delay: Optional[float], group: bool):
    body = body.replace("SAVE", repr(str(save))).replace("EXPERIMENT", repr(experiment))
    child = Child(folder, body, group=group)
    child.wait_flag(2)
    if delay is None:  # the child kills itself
        assert child.wait() == -signal.SIGKILL
    else:
        time.sleep(delay)
        child.kill(signal.SIGKILL)
    return child.logged, {k: child._read(k) for k in (1, 3)}


def _recover_all(save: Path, kills: list) -> list:
    """Recover every killed run through the command (in parallel), then check each and list them with ls;
    return what went wrong, run by run."""
    problems = []
    for experiment, _, _ in kills:
        wait_for_sinks(save / experiment / "run_0")
    procs = [(e, subprocess.Popen([sys.executable, "-m", "prov4ml", "recover", str(save / e / "run_0")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) for e, _, _ in kills]
    for experiment, proc in procs:
        out, err = proc.communicate(timeout=120)
        if proc.returncode:
            problems.append((experiment, "recover exit %d: %s" % (proc.returncode, err.strip())))
    listed = cli("ls", str(save), "--json")
    entries = {e["experiment"]: e for e in json.loads(listed.stdout or "[]")}
    if listed.returncode:
        problems.append(("ls", "exit %d: %s" % (listed.returncode, listed.stderr.strip()[-500:])))
    for experiment, logged, returned in kills:
        d = save / experiment / "run_0"
        try:
            assert prov4ml.needs_recovery(d) == []
            data = prov_json(d)
            status = run_activity(data)["provml:status"]
            assert status in ("killed", "finished") and (status == "finished" or not returned[3]), status
            csv = d / "metrics" / "loss_training_rank0.csv"
            rows = read_rows(csv) if csv.exists() else []
            assert_exact(rows, logged)
            assert series_count(data, "loss") == len(rows)
            assert entries[experiment]["status"] == status and entries[experiment]["needs_recovery"] == []
        except (AssertionError, OSError, KeyError) as exc:
            problems.append((experiment, "%s: %r" % (type(exc).__name__, exc)))
    return problems


def _sweep(tmp_path: Path, body: str, seed: int, kills: int, longest: float) -> list:
    rng = random.Random(seed)
    save = tmp_path / "prov"
    done = []
    for k in range(kills):
        folder = tmp_path / f"k{k}"
        folder.mkdir()
        logged, returned = _kill_at(folder, save, f"e{k}", body, rng.uniform(0, longest), group=k % 2 == 1)
        if not returned[1] and not (save / f"e{k}" / "run_0").exists():
            continue  # killed before start_run made anything: nothing was promised
        done.append((f"e{k}", logged, returned))
    return _recover_all(save, done)


def test_a_kill_as_start_run_renames_its_first_document_leaves_a_recoverable_listed_run(tmp_path):
    """Killed as the first document is renamed into place: the run's records were saved before it, so recover
    (given the folder) writes the document, ls then lists the run, and the temporary file goes."""
    save = tmp_path / "prov"
    logged, returned = _kill_at(tmp_path, save, "e0", BEFORE_FIRST_DOCUMENT, None, group=False)
    d = save / "e0" / "run_0"
    assert returned == {1: 0, 3: 0} and (d / ".prov4ml" / "rank0" / "owner.json").exists()
    problems = _recover_all(save, [("e0", logged, returned)])
    assert problems == [], "\n".join(map(str, problems))
    assert temporaries(d) == []


def test_a_kill_while_end_run_removes_the_journal_leaves_a_recoverable_listed_run(tmp_path):
    """The final document says finished and every row is in the file; the journal folder was renamed before its
    files went, so no half of it (an owner without records) makes the run look killed, and recover tidies it."""
    save = tmp_path / "prov"
    logged, returned = _kill_at(tmp_path, save, "e0", WHILE_THE_JOURNAL_GOES, None, group=False)
    rank = save / "e0" / "run_0" / ".prov4ml" / "rank0"
    assert returned == {1: 1, 3: 0} and logged == POINTS
    assert not rank.exists() and list(rank.parent.glob(".removing-rank0-*"))
    assert run_activity(prov_json(save / "e0" / "run_0"))["provml:status"] == "finished"
    problems = _recover_all(save, [("e0", logged, returned)])
    assert problems == [], "\n".join(map(str, problems))
    assert not rank.parent.exists()  # recover removed what the kill left


def test_sigkill_sweep_across_start_run(tmp_path):
    """Kills (of the process, of its group) across start_run's ~40 ms: each leaves a run recover completes."""
    problems = _sweep(tmp_path, AROUND_START, seed=3, kills=4, longest=0.05)
    assert problems == [], "\n".join(map(str, problems))


def test_sigkill_sweep_across_end_run(tmp_path):
    """A kill inside end_run is recovered as finished (its outcome was journaled when it began), one after it
    needs nothing, every point is there."""
    problems = _sweep(tmp_path, AROUND_END, seed=5, kills=4, longest=0.07)
    assert problems == [], "\n".join(map(str, problems))


# --- 2. more series than open files -------------------------------------------------------------------

SERIES, ROUNDS = 3000, 5

MANY = """
import pathlib, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
run = prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False, writer_process=%s)
flag(1)

def counts():
    out = {{}}
    for f in pathlib.Path(run_dir).glob("metrics/*.csv"):
        out[f.name] = len(f.read_bytes().splitlines()) - 1
    return out

run_dir = pathlib.Path({save_dir!r}) / "crash" / "run_0"
for step in range(%d):
    for k in range(%d):
        prov4ml.log_metric(f"m{{k}}", k + step / 10, prov4ml.Context.TRAINING, step=step)
        tell(step * %d + k + 1)
    if step == %d:
        prov4ml.flush()
        store(3, sum(counts().values()))
        flag(2)
        %s
prov4ml.end_run()
flag(4)
"""


def _many(tmp_path, writer_process: bool, kill: bool):
    rounds = ROUNDS if not kill else 1000  # a killed child logs until the kill
    flush_at = 1
    then = "time.sleep(0.05)" if kill else "pass"
    body = MANY % (writer_process, rounds, SERIES, SERIES, flush_at, then)
    return Child(tmp_path, body, group=False), flush_at


def _check_series(run_dir: Path, logged: int) -> None:
    for k in range(SERIES):
        path = run_dir / "metrics" / f"m{k}_training_rank0.csv"
        told = logged // SERIES + (1 if k < logged % SERIES else 0)
        rows = read_rows(path) if path.exists() else []
        assert told <= len(rows) <= told + (k == logged % SERIES), (path.name, told, len(rows))
        assert rows == [(s, k + s / 10) for s in range(len(rows))], path.name


@pytest.mark.parametrize("writer_process", [True, False], ids=["sink process", "refresher thread"])
def test_3000_series_under_a_hard_limit_of_256_flush_and_end_run(tmp_path, writer_process):
    child, flush_at = _many(tmp_path, writer_process, kill=False)
    assert child.wait(300) == 0, child.proc.stderr.read().decode()[-3000:]
    assert child._read(3) == (flush_at + 1) * SERIES  # every point logged before flush() is in the files
    d = child.run_dir()
    _check_series(d, SERIES * ROUNDS)
    assert sorted(p.name for p in (d / "metrics").iterdir()) == sorted(
        f"m{k}_training_rank0.csv" for k in range(SERIES))
    data = prov_json(d)
    assert run_activity(data)["provml:status"] == "finished"
    assert all(series_count(data, f"m{k}") == ROUNDS for k in range(SERIES))


@pytest.mark.parametrize("writer_process", [True, False], ids=["sink process", "refresher thread"])
def test_3000_series_under_a_hard_limit_of_256_sigkill_and_recover(tmp_path, writer_process):
    child, flush_at = _many(tmp_path, writer_process, kill=True)
    child.wait_flag(2, timeout=120)
    assert child._read(3) == (flush_at + 1) * SERIES
    time.sleep(0.1)
    child.kill(signal.SIGKILL)
    logged = child.logged
    d = child.run_dir()
    wait_for_sinks(d)
    out = cli("recover", str(d))
    assert out.returncode == 0, out.stderr
    _check_series(d, logged)
    data = prov_json(d)
    assert run_activity(data)["provml:status"] == "killed"
    for k in range(SERIES):
        assert series_count(data, f"m{k}") == len(read_rows(d / "metrics" / f"m{k}_training_rank0.csv"))


# --- 3. end_run while the live document is being written ----------------------------------------------

@pytest.mark.parametrize("writer_process", [True, False], ids=["sink process", "refresher thread"])
def test_end_run_during_a_live_document_is_final_and_leaves_no_temporary(tmp_path, writer_process):
    save = tmp_path / "prov"
    series, rounds = 1000, 6
    prov4ml.start_run("www.example.org", "live", str(save), capture=False, prov_flush_interval=0.2,
                      save_after_n_logs=50, writer_process=writer_process)
    d = save / "live" / "run_0"
    for step in range(rounds):
        for k in range(series):
            prov4ml.log_metric(f"m{k}", k + step, prov4ml.Context.TRAINING, step=step)
    time.sleep(0.25)  # the next refresh is due: end_run meets it
    prov4ml.end_run()
    assert temporaries(d) == []
    data = prov_json(d)
    assert run_activity(data)["provml:status"] == "finished"
    assert [series_count(data, f"m{k}") for k in range(series)] == [rounds] * series
    assert read_rows(d / "metrics" / f"m{series - 1}_training_rank0.csv") == [
        (s, float(series - 1 + s)) for s in range(rounds)]
    time.sleep(0.5)  # nothing rewrites the final document afterwards
    assert prov_json(d) == data and temporaries(d) == []

    prov4ml.start_run("www.example.org", "live", str(save), capture=False, prov_flush_interval=0.2,
                      writer_process=writer_process)
    for step in range(5):
        prov4ml.log_metric("loss", step * 0.5, prov4ml.Context.TRAINING, step=step)
    prov4ml.end_run()
    d1 = save / "live" / "run_1"
    data1 = prov_json(d1)
    assert run_activity(data1)["provml:status"] == "finished" and series_count(data1, "loss") == 5
    assert read_rows(d1 / "metrics" / "loss_training_rank0.csv") == [(s, s * 0.5) for s in range(5)]
    assert temporaries(d1) == [] and temporaries(d) == []
