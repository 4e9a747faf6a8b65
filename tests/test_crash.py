"""Real processes killed at any moment: exactly the points whose log_metric returned survive.

Oracle: the child counts, in shared memory, the points whose call returned;
after the kill (and after ``recover``) the metric file holds exactly those
points, in order, with their values (at most the one call in flight more),
and the PROV-JSON is readable and claims no point the file lacks.
"""

import signal
import time

import psutil
import pytest

import prov4ml
from killing import Child, assert_exact, prov_json, read_rows, run_activity, series_count, wait_for_sinks
from conftest import location

START = 'run = prov4ml.start_run("www.example.org", "crash", {save_dir!r}, save_after_n_logs=100, capture=False)\nflag(1)\n'

TIGHT = START + """
i = 0
while True:
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    i += 1
    tell(i)
"""

REALISTIC = """
import torch
torch.set_num_threads(1)
a = torch.randn(384, 384)
""" + START + """
i = 0
while True:
    for _ in range(4):
        a = torch.tanh(a @ a * 0.01)
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    prov4ml.log_metric("acc", float(i), prov4ml.Context.TRAINING, step=i)
    prov4ml.log_metric("lr", torch.tensor(0.25), prov4ml.Context.TRAINING, step=i)
    i += 1
    tell(i)
"""


def kill_and_check(tmp_path, body, delay, group, extra_series=(), env=None):
    child = Child(tmp_path, body, group=group, env=env)
    child.wait_flag(1)
    d = child.run_dir()
    prov_json(d)  # a readable document exists once start_run has returned
    time.sleep(delay)
    child.kill(signal.SIGKILL)
    logged = child.logged
    wait_for_sinks(d)
    data = prov_json(d)
    assert run_activity(data)["provml:status"] == "running"
    csv = d / "metrics" / "loss_training_rank0.csv"
    if not group:  # the sink outlived its parent and finished the file
        assert_exact(read_rows(csv), logged)
        assert series_count(data, "loss") <= logged + 1  # never claims a point the file lacks
    assert prov4ml.recover(d) == [d / "prov_rank0.json"]
    rows = read_rows(csv) if logged or csv.exists() else []  # killed before its first point: no file
    assert_exact(rows, logged)
    data = prov_json(d)
    run = run_activity(data)
    assert run["provml:status"] == "killed" and "recover" in run["provml:recovered"]
    assert series_count(data, "loss") == len(rows)
    for name, value in extra_series:
        extra = d / "metrics" / f"{name}_training_rank0.csv"
        assert_exact(read_rows(extra) if logged or extra.exists() else [], logged, value)  # killed before its first point
    return logged


@pytest.mark.parametrize("delay", [0.05, 0.3, 1.0])
@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_sigkill_of_a_tight_loop(tmp_path, delay, group):
    kill_and_check(tmp_path, TIGHT, delay, group)


@pytest.mark.parametrize("delay", [0.05, 1.0])
def test_sigkill_of_the_group_in_a_realistic_loop(tmp_path, delay):
    kill_and_check(tmp_path, REALISTIC, delay, True,
                   extra_series=[("acc", float), ("lr", lambda i: 0.25)])


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_sigkill_on_the_python_path(tmp_path, group):
    """Where the C hot path is not built, the Python one keeps every point through a kill too."""
    kill_and_check(tmp_path, REALISTIC, 0.3, group, extra_series=[("acc", float), ("lr", lambda i: 0.25)],
                   env={"PROV4ML_PURE_PYTHON": "1"})


def test_recover_is_idempotent_and_refuses_a_live_run(tmp_path):
    child = Child(tmp_path, START + "prov4ml.log_metric('loss', 0.0, 'training')\ntell(1)\nflag(2)\ntime.sleep(600)\n")
    child.wait_flag(2)
    d = child.run_dir()
    with pytest.raises(prov4ml.RecoveryError, match="still being recorded by pid"):
        prov4ml.recover(d)
    child.kill(signal.SIGKILL)
    wait_for_sinks(d)
    assert prov4ml.recover(d) == [d / "prov_rank0.json"]
    first = (d / "prov_rank0.json").read_bytes()
    assert prov4ml.recover(d) == []  # a second recover changes nothing
    assert (d / "prov_rank0.json").read_bytes() == first


SLOW_END = START + """
for k in range(40):
    for i in range(500):
        prov4ml.log_metric(f"m{{k}}", i * 0.5, prov4ml.Context.TRAINING, step=i)
for i in range(5000):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    tell(i + 1)
original = run._finalize_files
def slow_finalize():
    flag(2)
    time.sleep(1.5)  # a slow file system at the end of the run: the signal lands in end_run
    original()
run._finalize_files = slow_finalize
try:
    prov4ml.end_run()
except KeyboardInterrupt:
    flag(3)
    raise
"""


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_sigkill_during_end_run(tmp_path, group):
    child = Child(tmp_path, SLOW_END, group=group)
    child.wait_flag(2)
    child.kill(signal.SIGKILL)
    d = child.run_dir()
    wait_for_sinks(d)
    prov_json(d)
    prov4ml.recover(d)
    assert_exact(read_rows(d / "metrics" / "loss_training_rank0.csv"), 5000)
    for k in range(40):
        assert_exact(read_rows(d / "metrics" / f"m{k}_training_rank0.csv"), 500)
    assert run_activity(prov_json(d))["provml:status"] in ("killed", "finished")


@pytest.mark.parametrize("sig, status, code", [
    (signal.SIGTERM, "terminated", -signal.SIGTERM),
    (signal.SIGINT, "interrupted", -signal.SIGINT),
])
def test_signal_during_end_run_finishes_the_run_first(tmp_path, sig, status, code):
    child = Child(tmp_path, SLOW_END)
    child.wait_flag(2)
    child.proc.send_signal(sig)
    assert child.wait() == code
    d = child.run_dir()
    data = prov_json(d)
    run = run_activity(data)
    assert run["provml:status"] == status and run["provml:signal"] == signal.Signals(sig).name
    assert_exact(read_rows(d / "metrics" / "loss_training_rank0.csv"), 5000)
    assert series_count(data, "loss") == 5000
    assert not (d / ".prov4ml").exists()  # a complete run keeps no journal
    if sig == signal.SIGINT:
        assert child._read(3) == 1  # the user's code still saw KeyboardInterrupt


@pytest.mark.parametrize("sig, status, code", [
    (signal.SIGTERM, "terminated", -signal.SIGTERM),
    (signal.SIGINT, "interrupted", -signal.SIGINT),
])
def test_signal_during_logging_writes_every_point(tmp_path, sig, status, code):
    child = Child(tmp_path, TIGHT)
    child.wait_flag(1)
    time.sleep(0.3)
    child.proc.send_signal(sig)
    assert child.wait() == code
    logged = child.logged
    d = child.run_dir()
    data = prov_json(d)
    run = run_activity(data)
    assert run["provml:status"] == status and run["provml:signal"] == signal.Signals(sig).name
    rows = read_rows(d / "metrics" / "loss_training_rank0.csv")
    assert_exact(rows, logged)
    assert series_count(data, "loss") == len(rows)


def test_ctrl_c_reaches_the_users_code(tmp_path):
    body = START + """
try:
    i = 0
    while True:
        prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
        i += 1
        tell(i)
except KeyboardInterrupt:
    flag(2)
prov4ml.log_metric("after", 1.0, prov4ml.Context.TRAINING)
prov4ml.end_run()
"""
    child = Child(tmp_path, body)
    child.wait_flag(1)
    time.sleep(0.2)
    child.proc.send_signal(signal.SIGINT)
    assert child.wait() == 0
    assert child._read(2) == 1
    d = child.run_dir()
    assert run_activity(prov_json(d))["provml:status"] == "finished"
    assert_exact(read_rows(d / "metrics" / "loss_training_rank0.csv"), child.logged)


ARTIFACT_LOOP = START + """
import torch
big = os.path.join({save_dir!r}, "..", "big.bin")
with open(big, "wb") as fh:
    fh.write(os.urandom(8 << 20))
model = torch.nn.Linear(1024, 1024)
flag(2)
for i in range(1000):
    prov4ml.log_artifact(big, prov4ml.Context.TRAINING)
    prov4ml.save_model_version(model, "net", prov4ml.Context.TRAINING, step=i)
    tell(i + 1)
"""


def test_sigkill_during_artifact_copies_and_model_saves_leaves_no_half_file(tmp_path):
    import torch

    child = Child(tmp_path, ARTIFACT_LOOP)
    child.wait_flag(2)
    time.sleep(0.6)
    done_before = child.logged  # these returned 0.4 s before the kill: long enough to be in the document
    time.sleep(0.4)
    child.kill(signal.SIGKILL)
    done = child.logged
    d = child.run_dir()
    wait_for_sinks(d)
    copies = sorted((d / "artifacts").glob("big*.bin"))
    versions = sorted((d / "artifacts" / "models" / "net").glob("*.pt"))
    assert len(copies) >= done and len(versions) >= done
    for path in copies:
        assert path.stat().st_size == 8 << 20
    for path in versions:
        assert torch.load(path, weights_only=True)["weight"].shape == (1024, 1024)
    prov4ml.recover(d)
    assert not list(d.rglob("*.tmp")) and not list(d.rglob("*.partial"))
    data = prov_json(d)
    locations = {location(a["prov:location"]) for a in data["entity"].values() if "prov:location" in a}
    in_document = sum(1 for p in copies if any(str(loc).endswith("/" + p.name) for loc in locations if loc))
    assert in_document >= done_before > 0


def test_a_slow_loop_is_visible_within_the_interval(tmp_path):
    body = START.replace("save_after_n_logs=100", "save_after_n_logs=100, prov_flush_interval=0.5, flush_interval=1.0") + """
for i in range(3):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    tell(i + 1)
    time.sleep(2.5)
"""
    child = Child(tmp_path, body)
    child.wait_flag(1)
    d = child.run_dir()
    csv = d / "metrics" / "loss_training_rank0.csv"
    for k in range(1, 4):
        while child.logged < k:
            time.sleep(0.01)
        deadline = time.monotonic() + 2.0  # flush_interval plus a second of slack on a loaded machine
        while time.monotonic() < deadline:
            if csv.exists() and len(read_rows(csv)) == k and series_count(prov_json(d), "loss") == k:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"point {k} not visible in the CSV and the document within the interval")
    child.kill(signal.SIGKILL)


def test_rss_stays_flat_with_a_huge_save_after_n_logs(tmp_path):
    body = START.replace("save_after_n_logs=100", "save_after_n_logs=100000") + """
import psutil
me = psutil.Process()
for i in range(3_000_000):
    prov4ml.log_metric("loss", 0.5, prov4ml.Context.TRAINING, step=i)
    if i == 1_000_000:
        struct.pack_into("<q", _mm, 16, me.memory_info().rss)
struct.pack_into("<q", _mm, 24, me.memory_info().rss)
prov4ml.end_run()
"""
    child = Child(tmp_path, body)
    assert child.wait(120) == 0
    at_1m, at_3m = child._read(2), child._read(3)
    assert at_3m - at_1m < 16 << 20, (at_1m, at_3m)
    assert len(read_rows(child.run_dir() / "metrics" / "loss_training_rank0.csv")) == 3_000_000


@pytest.mark.parametrize("after, status", [
    ("raise RuntimeError('diverged at epoch 3')", "failed"),
    ("pass  # the script forgets end_run", "finished"),
])
def test_uncaught_exception_and_forgotten_end_run(tmp_path, after, status):
    body = START + "for i in range(1050):\n    prov4ml.log_metric('loss', i * 0.5, prov4ml.Context.TRAINING, step=i)\n" + after + "\n"
    child = Child(tmp_path, body)
    child.wait()
    d = child.run_dir()
    run = run_activity(prov_json(d))
    assert run["provml:status"] == status
    assert_exact(read_rows(d / "metrics" / "loss_training_rank0.csv"), 1050)
    if status == "failed":
        assert child.proc.returncode == 1 and "diverged at epoch 3" in child.proc.stderr.read().decode()
        assert run["provml:error_type"] == "RuntimeError"
        assert run["provml:error_message"] == "diverged at epoch 3"


def test_no_sink_process_is_left_behind(tmp_path):
    child = Child(tmp_path, START + "prov4ml.log_metric('loss', 0.0, 'training')\nprov4ml.end_run()\n")
    assert child.wait() == 0
    time.sleep(0.2)
    d = str(child.run_dir())
    assert not [p for p in psutil.process_iter(["cmdline"]) if any(d in c for c in (p.info["cmdline"] or []))]


def test_load_run_and_the_cli_say_a_killed_run_needs_recovering(tmp_path):
    import subprocess
    import sys

    from prov4ml import analysis

    child = Child(tmp_path, START + "prov4ml.log_metric('loss', 0.0, 'training')\ntell(1)\nflag(2)\ntime.sleep(600)\n")
    child.wait_flag(2)
    child.kill()
    d = child.run_dir()
    wait_for_sinks(d)
    assert analysis.load_run(d).info["needs_recovery"] == [0]
    assert "prov4ml recover" in analysis.html_report(d).read_text()
    out = subprocess.run([sys.executable, "-m", "prov4ml", "recover", str(d)], capture_output=True, text=True)
    assert out.returncode == 0 and "recovered" in out.stdout
    assert analysis.load_run(d).info["needs_recovery"] == []
    again = subprocess.run([sys.executable, "-m", "prov4ml", "recover", str(d)], capture_output=True, text=True)
    assert again.returncode == 0 and "nothing to recover" in again.stdout
    bad = subprocess.run([sys.executable, "-m", "prov4ml", "recover", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "not a directory" in bad.stderr


def test_a_kill_before_the_journals_exist_leaves_a_document_and_a_recoverable_run(tmp_path):
    """start_run writes its first document before it makes the journals: a kill between the two (here, the
    journals taken away after a kill) leaves a run that recover marks killed, with nothing to replay."""
    child = Child(tmp_path, START + "flag(2)\ntime.sleep(600)\n")
    child.wait_flag(2)
    child.kill()
    d = child.run_dir()
    wait_for_sinks(d)
    rank = d / ".prov4ml" / "rank0"
    for path in rank.iterdir():
        if path.name not in ("owner.json", "state.pickle"):
            path.unlink()
    assert run_activity(prov_json(d))["provml:status"] == "running"
    assert prov4ml.needs_recovery(d) == [0]
    assert prov4ml.recover(d) == [d / "prov_rank0.json"]
    assert run_activity(prov_json(d))["provml:status"] == "killed"
    assert prov4ml.needs_recovery(d) == []


def test_recover_right_after_a_kill_waits_for_the_sink(tmp_path):
    body = START + """
i = 0
while True:
    for k in range(30):
        prov4ml.log_metric(f"s{{k}}", i * 0.5, prov4ml.Context.TRAINING, step=i)
    i += 1
    tell(i)
"""
    child = Child(tmp_path, body)
    child.wait_flag(1)
    time.sleep(0.5)
    child.kill(signal.SIGKILL)
    logged = child.logged
    d = child.run_dir()
    prov4ml.recover(d)  # at once: the sink may still be finishing the files
    wait_for_sinks(d)
    for k in range(30):
        assert_exact(read_rows(d / "metrics" / f"s{k}_training_rank0.csv"), logged)


def test_summaries_survive_overflowing_sums(start):
    run = start()
    for i, v in enumerate([1e308, 1e308, float("nan"), 1e308]):
        prov4ml.log_metric("x", v, prov4ml.Context.TRAINING, step=i)
    prov4ml.end_run()
    data = prov_json(run.run_dir)
    assert series_count(data, "x") == 4 == len(read_rows(run.run_dir / "metrics" / "x_training_rank0.csv"))
    assert "writer_errors" not in str(data)


@pytest.mark.parametrize("batch", [False, True], ids=["Run.log_metric", "log_metrics"])
def test_a_thread_logging_while_end_run_runs_loses_nothing_it_was_told(start, batch):
    import threading

    run = start()
    returned = [0]
    keys = [f"k{j}" for j in range(50)]

    def work():
        n = 0
        while True:
            try:
                if batch:
                    prov4ml.log_metrics({k: float(n) for k in keys}, prov4ml.Context.TRAINING, step=n)
                else:
                    run.log_metric("x", float(n), prov4ml.Context.TRAINING, step=n)
            except prov4ml.RunStateError:
                return
            n += 1
            returned[0] = n

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.3)
    prov4ml.end_run()
    t.join(10)
    names = keys if batch else ["x"]
    for name in names:
        rows = read_rows(run.run_dir / "metrics" / f"{name}_training_rank0.csv")
        assert rows == [(i, float(i)) for i in range(returned[0])] or (
            batch and rows == [(i, float(i)) for i in range(returned[0] + 1)]  # the call that raised midway
        )


def test_a_double_ctrl_c_still_ends_the_run_interrupted(tmp_path):
    for _ in range(3):
        child = Child(tmp_path, TIGHT)
        child.wait_flag(1)
        time.sleep(0.2)
        os_kill = __import__("os").kill
        os_kill(child.proc.pid, signal.SIGINT)
        time.sleep(0.0001)
        os_kill(child.proc.pid, signal.SIGINT)
        child.wait()
        d = child.run_dir()
        wait_for_sinks(d)
        data = prov_json(d)
        assert run_activity(data)["provml:status"] == "interrupted"
        assert_exact(read_rows(d / "metrics" / "loss_training_rank0.csv"), child.logged)
        import shutil

        shutil.rmtree(child.save_dir)


SAMPLED_AND_NESTED = """
run = prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False,
                        metric_samplers={{"sub": prov4ml.Subsample(3)}})
inner = prov4ml.create_context("inner", is_subcontext_of=prov4ml.Context.VALIDATION)
for i in range(30):
    prov4ml.log_metric("sub", i / 4, prov4ml.Context.TRAINING, step=i)
    prov4ml.log_metric("deep", i / 8, inner, step=i)
    for k in range(40):
        prov4ml.log_metric(f"plain{{k}}", k + i, prov4ml.Context.TRAINING, step=i)
prov4ml.flush()
time.sleep(2.5)  # a refresh saves the records
flag(2)
time.sleep(600)
"""


def test_recover_keeps_samplers_and_sub_contexts_from_the_records_saved_without_plain_series(tmp_path):
    """The records saved beside the journal hold only the series series.jsonl cannot describe (a sampler, a
    sub-context): after a kill, recover's document still says each series' sampler and the sub-context's
    parent, and has every plain series, with the counts of its file."""
    child = Child(tmp_path, SAMPLED_AND_NESTED)
    child.wait_flag(2)
    d = child.run_dir()
    child.kill(signal.SIGKILL)
    wait_for_sinks(d)
    assert prov4ml.recover(d) == [d / "prov_rank0.json"]
    data = prov_json(d)
    series = {(a["provml:name"], a["provml:context"]): a for a in data["entity"].values() if "provml:count" in a}
    assert set(series) == {("sub", "training"), ("deep", "inner")} | {(f"plain{k}", "training") for k in range(40)}
    assert series[("sub", "training")]["provml:sampler"] == "Subsample(3)"
    assert all("provml:sampler" not in a for key, a in series.items() if key[0] != "sub")
    inner = [a for a in data["activity"].values() if a.get("provml:context") == "inner"]
    assert len(inner) == 1 and inner[0]["provml:parent_context"] == "validation"
    for (name, context), attrs in series.items():
        rows = read_rows(d / "metrics" / f"{name}_{context}_rank0.csv")
        assert int(attrs["provml:count"]["$"]) == len(rows) == (10 if name == "sub" else 30), name
