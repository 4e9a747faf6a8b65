"""Attacks on the shared sink process: many short runs in one process (different folders,
experiments, formats, separators), runs in forked children, SIGKILL of the process or its
group at every phase of a run, and hard values. The child writes every call that returned
to a side file (flushed) and the files are compared with it point for point, after
`prov4ml recover`."""

import json
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import prov4ml
from prov4ml.metrics import formats

DRIVER = textwrap.dedent(
    r'''
    import json, os, signal, struct, sys, threading, time
    import prov4ml

    plan = json.loads(open(sys.argv[1]).read())
    side = open(sys.argv[2], "a", buffering=1)

    side_lock = threading.Lock()

    def note(**ev):
        ev["pid"] = os.getpid()
        with side_lock:
            side.write(json.dumps(ev) + "\n")
            side.flush()

    def kill_soon(delay, group):
        def go():
            time.sleep(delay)
            if group:
                os.killpg(0, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Thread(target=go, daemon=True).start()

    def kill_now(group):
        if group:
            os.killpg(0, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    def one_run(i, r, kill):
        kill = kill if kill and kill["run"] == i else None
        if kill and kill["phase"] == "start":
            kill_soon(kill["delay"], kill["group"])
        run = prov4ml.start_run(
            "www.example.org", r["exp"], provenance_save_dir=r["dir"], capture=False,
            metrics_file_type=r["fmt"], csv_separator=r["sep"])
        note(ev="started", i=i, run_dir=str(run.run_dir))
        if r.get("threads"):  # one thread per series, all logging at once
            keys = sorted({p[0] for p in r["points"]})
            ts_ = [threading.Thread(target=log_points, args=(i, r, kill, run, k)) for k in keys]
            [t.start() for t in ts_]
            [t.join() for t in ts_]
        else:
            log_points(i, r, kill, run, None)
        if r.get("linger"):
            linger()
        if kill and kill["phase"] == "end":
            kill_soon(kill["delay"], kill["group"])
        prov4ml.end_run()
        note(ev="ended", i=i)
        if kill and kill["phase"] == "after_end":
            kill_now(kill["group"])

    def log_points(i, r, kill, run, only):
        for n, (key, bits, step, ts) in enumerate(r["points"]):
            if only is not None and key != only:
                continue
            if kill and kill["phase"] == "mid" and n == kill["at"]:
                kill_now(kill["group"])
            value = struct.unpack("<d", bytes.fromhex(bits))[0]
            prov4ml.log_metric(key, value, prov4ml.Context.TRAINING, step=step, timestamp=ts)
            note(ev="pt", i=i, key=key, bits=bits, step=step, ts=ts)
            if r.get("fork_at") == n:
                fork_child(i)
            if r.get("intrude_at") == n:
                intrude(key)
            if r.get("kill_sink_at") == n:
                os.kill(sink_pid(), signal.SIGKILL)
                time.sleep(0.2)

    def sink_pid():
        """The sink: this process's child running _sink.py."""
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = open(f"/proc/{d}/stat").read()
                    cmd = open(f"/proc/{d}/cmdline", "rb").read()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"sink" in cmd:
                    return int(d)
        raise AssertionError("no sink process")

    def intrude(key):
        """A forked child logs into the parent's run (a DataLoader worker): it must not land."""
        pid = os.fork()
        if pid == 0:
            import warnings
            warnings.simplefilter("ignore")
            for k in range(50):
                prov4ml.log_metric(key, 999.0 + k, prov4ml.Context.TRAINING)
                prov4ml.log_metric("intruder", 1.0, prov4ml.Context.TRAINING, step=k)
            os._exit(0)
        os.waitpid(pid, 0)

    def linger():
        """A forked helper that outlives its parent (a DataLoader worker, a pool process)."""
        if os.fork() == 0:
            time.sleep(8)
            os._exit(0)

    def mp_child(i):
        import multiprocessing as mp
        p = mp.get_context("fork").Process(target=one_run, args=(1000 + i, plan["forked"][str(i)], None))
        p.start(); p.join()
        assert p.exitcode == 0, p.exitcode

    def fork_child(i):
        if plan.get("mp"):
            return mp_child(i)
        pid = os.fork()
        if pid == 0:
            try:
                one_run(1000 + i, plan["forked"][str(i)], plan.get("forked_kill"))
            finally:
                side.flush()
                os._exit(0)
        os.waitpid(pid, 0)

    for i, r in enumerate(plan["runs"]):
        if r.get("thread"):
            t = threading.Thread(target=one_run, args=(i, r, plan.get("kill")))
            t.start(); t.join()
        else:
            one_run(i, r, plan.get("kill"))
        if plan.get("fork_between") == i:
            fork_child(i)
    note(ev="done")
    '''
)

SPECIALS = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.2250738585072009e-308,
            1.7976931348623157e308, 0.1, 1 / 3, 1e22, 1e-7, 123456789.125, 2.0 ** -1074 * 12345]


def _bits(v):
    return struct.pack("<d", v).hex()


def _points(rng, n, keys, ts0):
    """n points over keys: specials, random bit patterns, steps 2**62 / negative, ms timestamps."""
    out, steps = [], {k: 0 for k in keys}
    for j in range(n):
        key = keys[j % len(keys)]
        if j < len(SPECIALS):
            v = SPECIALS[j]
        else:
            v = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        step = [2 ** 62 - j, -j - 1, j, steps[key], None][j % 5]
        steps[key] += 1
        ts = None if j % 3 == 2 else ts0 + 137 * j + (j % 1000)
        out.append([key, _bits(v), step, ts])
    return out


def _run_driver(tmp_path, plan, expect_kill):
    pf = tmp_path / "plan.json"
    pf.write_text(json.dumps(plan))
    side = tmp_path / "side.jsonl"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    # files, not pipes: a forked helper that outlives the driver must not hold the test up
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.run([sys.executable, str(script), str(pf), str(side)], cwd=tmp_path,
                              start_new_session=True, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    proc.stderr = (tmp_path / "out.txt").read_text()
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
    events = []
    for line in side.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # the last line may be torn by the kill: its call had returned, though
            pass
    return events


def _read_series(run_dir, sep):
    """{key: [(step, bits, ms)]} from the run's metric files, read by prov4ml's reader and pandas."""
    got = {}
    mdir = Path(run_dir) / "metrics"
    for f in sorted(mdir.iterdir()) if mdir.exists() else []:
        if f.name.endswith((".tmp",)):
            continue
        key = f.name.split("_training")[0]
        cols = formats.read(f)
        rows = [(int(s), _bits(float(v)), round(float(t) * 1000)) for s, v, t in
                zip(cols["step"], cols["value"], cols["time"])]
        if f.suffix == ".parquet":
            df = pd.read_parquet(f)
        else:
            df = pd.read_csv(f, sep=sep)
        prows = [(int(s), _bits(float(v)), round(float(t) * 1000)) for s, v, t in
                 zip(df["step"], df["value"], df["time"])]
        assert [_norm(r) for r in prows] == [_norm(r) for r in rows], f"pandas and prov4ml differ on {f}"
        assert key not in got, f"two files for {key} in {run_dir}: {sorted(mdir.iterdir())}"
        got[key] = rows
    return got


def _norm(row):
    s, bits, ms = row
    v = struct.unpack("<d", bytes.fromhex(bits))[0]
    return (s, "nan" if math.isnan(v) else bits, ms)


def _check(events, plan):
    """Every run dir: recover when needed, then its files hold exactly its returned points."""
    runs, ended = {}, set()
    for e in events:
        if e["ev"] == "ended":
            ended.add(e["i"])
        if e["ev"] == "started":
            runs[e["i"]] = {"dir": e["run_dir"], "pts": []}
        elif e["ev"] == "pt":
            runs[e["i"]]["pts"].append(e)
    # a run killed inside start_run: its folder may exist without a "started" event
    all_dirs = {r["dir"] for r in plan["runs"]} | {r["dir"] for r in plan.get("forked", {}).values()}
    known = {os.path.realpath(v["dir"]) for v in runs.values()}
    for d in all_dirs:
        for run_dir in Path(d).glob("*/run_*"):
            if os.path.realpath(run_dir) not in known and prov4ml.needs_recovery(run_dir):
                r = subprocess.run([sys.executable, "-m", "prov4ml", "recover", str(run_dir)],
                                   capture_output=True, text=True, timeout=60)
                assert r.returncode == 0, r.stderr
    for i, v in sorted(runs.items()):
        if prov4ml.needs_recovery(v["dir"]):
            r = subprocess.run([sys.executable, "-m", "prov4ml", "recover", v["dir"]],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        doc = json.loads((Path(v["dir"]) / "prov_rank0.json").read_text())
        assert doc  # readable
        want = {}
        for p in v["pts"]:
            rows = want.setdefault(p["key"], [])
            rows.append((len(rows) if p["step"] is None else p["step"], p["bits"], p["ts"]))
        got = _read_series(v["dir"], plan_run(plan, i)["sep"])
        for key, rows in want.items():  # the time of a point logged without a timestamp is the clock's
            got[key] = [(s, b, ms if w[2] is not None else None) for (s, b, ms), w in zip(got.get(key, []), rows)] \
                + got.get(key, [])[len(rows):]
        for ent in doc.get("entity", {}).values():
            if ent.get("provml:name") in got:
                assert int(ent["provml:count"]["$"]) == len(got[ent["provml:name"]]), (i, ent)
        for key, rows in want.items():
            norm_got = [_norm(r) for r in got.get(key, [])]
            norm_want = [_norm(r) for r in rows]
            # points past the last returned call may be there (the call was under way), none lost
            assert norm_got[: len(norm_want)] == norm_want, (i, key, v["dir"])
            assert len(norm_got) <= len(norm_want) + (i not in ended), (i, key, v["dir"], "foreign points")
        assert set(got) <= set(want) | {k for k, _, _, _ in plan_run(plan, i)["points"]}, (i, set(got))
    return runs


def plan_run(plan, i):
    return plan["runs"][i] if i < 1000 else plan["forked"][str(i - 1000)]


def _plan(tmp_path, n_runs=4, n_points=60, seed=0):
    import random

    rng = random.Random(seed)
    fmts = ["csv", "parquet", "csv", "txt"]
    seps = [",", ";", "\t", "|"]
    runs = []
    for i in range(n_runs):
        runs.append({"dir": str(tmp_path / f"prov{i % 3}"), "exp": f"exp{i}", "fmt": fmts[i % 4],
                     "sep": seps[i % 4], "points": _points(rng, n_points, [f"m{i}a", f"m{i}b"],
                                                           1_700_000_000_000 + i)})
    return {"runs": runs}


def test_many_short_runs_formats_separators_hard_values(tmp_path):
    plan = _plan(tmp_path, n_runs=6)
    events = _run_driver(tmp_path, plan, expect_kill=False)
    runs = _check(events, plan)
    assert sorted(runs) == list(range(6))
    for i, v in runs.items():
        assert len(v["pts"]) == 60


def test_runs_in_threads_one_after_another(tmp_path):
    plan = _plan(tmp_path, n_runs=3, seed=1)
    for r in plan["runs"]:
        r["thread"] = True
    runs = _check(_run_driver(tmp_path, plan, expect_kill=False), plan)
    assert sorted(runs) == [0, 1, 2]


@pytest.mark.parametrize("where", ["during", "between"])
def test_run_in_forked_child(tmp_path, where):
    plan = _plan(tmp_path, n_runs=2, seed=2)
    plan["forked"] = {"0": {"dir": str(tmp_path / "forked"), "exp": "child", "fmt": "csv", "sep": ";",
                            "points": _points(__import__("random").Random(9), 30, ["kid"], 1_600_000_000_000)}}
    if where == "during":
        plan["runs"][0]["fork_at"] = 20
    else:
        plan["fork_between"] = 0
    runs = _check(_run_driver(tmp_path, plan, expect_kill=False), plan)
    assert sorted(runs) == [0, 1, 1000]
    assert len(runs[1000]["pts"]) == 30


KILLS = [("start", 0.0), ("start", 0.01), ("mid", 25), ("end", 0.0), ("end", 0.005), ("after_end", 0)]


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
@pytest.mark.parametrize("phase,arg", KILLS, ids=[f"{p}-{a}" for p, a in KILLS])
def test_sigkill_in_the_nth_run(tmp_path, phase, arg, group):
    plan = _plan(tmp_path, n_runs=4, seed=3)
    kill = {"run": 2, "phase": phase, "group": group}
    if phase == "mid":
        kill["at"] = arg
    else:
        kill["delay"] = arg
    plan["kill"] = kill
    events = _run_driver(tmp_path, plan, expect_kill=True)
    runs = _check(events, plan)
    assert {0, 1} <= set(runs)
    assert 3 not in runs
    for i in (0, 1):
        assert len(runs[i]["pts"]) == 60


def test_consecutive_runs_of_one_experiment_keep_their_own_points(tmp_path):
    plan = _plan(tmp_path, n_runs=5, seed=4)
    for r in plan["runs"]:
        r["dir"], r["exp"] = str(tmp_path / "same"), "same"
    runs = _check(_run_driver(tmp_path, plan, expect_kill=False), plan)
    assert [Path(runs[i]["dir"]).name for i in range(5)] == [f"run_{i}" for i in range(5)]


def test_run_in_multiprocessing_fork_child_while_parent_runs(tmp_path):
    plan = _plan(tmp_path, n_runs=2, seed=5)
    plan["mp"] = True
    plan["forked"] = {"0": {"dir": str(tmp_path / "forked"), "exp": "child", "fmt": "parquet", "sep": ",",
                            "points": _points(__import__("random").Random(8), 30, ["kid"], 1_600_000_000_000)}}
    plan["runs"][0]["fork_at"] = 10
    runs = _check(_run_driver(tmp_path, plan, expect_kill=False), plan)
    assert sorted(runs) == [0, 1, 1000]


def test_process_kill_with_a_forked_helper_alive_files_complete_before_recover(tmp_path):
    """formats.md: on a SIGKILL of the process the sink outlives it and finishes the files
    (complete before recover); a forked worker of the process that is still alive must not
    keep the sink waiting, nor keep recover from completing the run."""
    import time

    plan = _plan(tmp_path, n_runs=2, seed=6)
    plan["runs"][1]["linger"] = True
    plan["kill"] = {"run": 1, "phase": "end", "delay": 0.0, "group": False}
    # linger() runs just before end_run: kill at once after it
    events = _run_driver(tmp_path, plan, expect_kill=True)
    run1 = next(e["run_dir"] for e in events if e["ev"] == "started" and e["i"] == 1)
    pts = [e for e in events if e["ev"] == "pt" and e["i"] == 1]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        got = _read_series(run1, plan["runs"][1]["sep"]) if Path(run1, "metrics").exists() else {}
        if sum(len(v) for v in got.values()) >= len(pts):
            break
        time.sleep(0.1)
    assert sum(len(v) for v in got.values()) >= len(pts), "the sink did not finish the files"
    r = subprocess.run([sys.executable, "-m", "prov4ml", "recover", run1], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    _check(events, plan)


@pytest.mark.parametrize("phase", ["start", "end"])
def test_sigkill_sweep_of_delays(tmp_path, phase):
    """The kill lands anywhere inside start_run / end_run of the second run."""
    for k, delay in enumerate([0.001, 0.003, 0.006, 0.01, 0.015, 0.02]):
        d = tmp_path / f"k{k}"
        d.mkdir()
        plan = _plan(d, n_runs=3, n_points=20, seed=10 + k)
        plan["kill"] = {"run": 1, "phase": phase, "delay": delay, "group": k % 2 == 1}
        runs = _check(_run_driver(d, plan, expect_kill=True), plan)
        assert 0 in runs and 2 not in runs


def test_recovered_run_ends_after_it_started(tmp_path):
    """A recovered run's end time is its last point's time: with timestamps given explicitly
    (from another clock or replayed) it can fall before the run's start."""
    plan = _plan(tmp_path, n_runs=1, seed=7)
    for j, p in enumerate(plan["runs"][0]["points"]):
        p[3] = 1_700_000_000_000 + j  # every point timed by the caller, before the run started
    plan["kill"] = {"run": 0, "phase": "mid", "at": 30, "group": False}
    runs = _check(_run_driver(tmp_path, plan, expect_kill=True), plan)
    doc = json.loads((Path(runs[0]["dir"]) / "prov_rank0.json").read_text())
    act = next(iter(doc["activity"].values()))
    assert act["provml:status"] == "killed"
    assert act["prov:endTime"] >= act["prov:startTime"], act


@pytest.mark.parametrize("then", ["clean", "process-killed"])
def test_sink_killed_mid_run_then_later_runs(tmp_path, then):
    """metrics-pipeline.md: if the helper dies, the run's thread continues the files; the later
    runs of the process must still get every point (a new helper or the thread)."""
    plan = _plan(tmp_path, n_runs=4, seed=12)
    plan["runs"][1]["kill_sink_at"] = 20
    if then == "process-killed":
        plan["kill"] = {"run": 3, "phase": "mid", "at": 40, "group": False}
    runs = _check(_run_driver(tmp_path, plan, expect_kill=then != "clean"), plan)
    assert sorted(runs) == [0, 1, 2, 3]
    for i in (0, 1, 2):
        assert len(runs[i]["pts"]) == 60


def test_forked_child_logging_into_the_parents_run_adds_nothing(tmp_path):
    plan = _plan(tmp_path, n_runs=2, seed=13)
    plan["runs"][0]["intrude_at"] = 10
    runs = _check(_run_driver(tmp_path, plan, expect_kill=False), plan)
    assert sorted(runs) == [0, 1]


@pytest.mark.parametrize("group", [False, True], ids=["child", "group"])
def test_sigkill_inside_a_forked_childs_run_while_the_parent_runs(tmp_path, group):
    """The child's run is killed mid-way (alone, or with the whole group: parent and both sinks).
    With the group, the forked child is orphaned when the parent dies; where nothing reaps it
    (a container's PID 1 that does not reap, as here) it stays a zombie and recover, via
    needs_recovery, takes its run for a live one (see the unreaped-process test below)."""
    plan = _plan(tmp_path, n_runs=2, seed=14)
    plan["forked"] = {"0": {"dir": str(tmp_path / "forked"), "exp": "child", "fmt": "parquet", "sep": ",",
                            "points": _points(__import__("random").Random(7), 40, ["kid"], 1_600_000_000_000)}}
    plan["runs"][0]["fork_at"] = 30
    plan["forked_kill"] = {"run": 1000, "phase": "mid", "at": 25, "group": group}
    runs = _check(_run_driver(tmp_path, plan, expect_kill=group), plan)
    assert len(runs[1000]["pts"]) == 25
    assert sorted(runs) == ([0, 1000] if group else [0, 1, 1000])


def test_killed_but_not_yet_reaped_process_is_recoverable(tmp_path):
    """A SIGKILLed recording process that its parent has not reaped yet (a zombie: a supervisor
    that has not called wait, or a container whose PID 1 never reaps orphans) records nothing
    more; formats.md: `prov4ml recover` completes the run. Here needs_recovery says [] and recover
    refuses ("still being recorded by pid ..."), while `prov4ml ls` says it needs recover."""
    plan = _plan(tmp_path, n_runs=1, seed=15)
    plan["kill"] = {"run": 0, "phase": "mid", "at": 30, "group": False}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "driver.py").write_text(DRIVER)
    side = tmp_path / "side.jsonl"
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "plan.json"),
                                 str(side)], cwd=tmp_path, start_new_session=True, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped
        assert info.si_status == signal.SIGKILL
        events = [json.loads(line) for line in side.read_text().splitlines()]
        run_dir = next(e["run_dir"] for e in events if e["ev"] == "started")
        assert prov4ml.needs_recovery(run_dir) == [0]
        r = subprocess.run([sys.executable, "-m", "prov4ml", "recover", run_dir], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        proc.wait()
    _check(events, plan)


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_sigkill_after_a_journal_segment_boundary_in_a_later_run(tmp_path, group):
    """The third run crosses a 4 MiB journal segment (131,072 points) before the kill."""
    import random

    plan = _plan(tmp_path, n_runs=3, n_points=20, seed=16)
    plan["runs"][2]["points"] = _points(random.Random(17), 140_000, ["big", "big2"], 1_650_000_000_000)
    plan["kill"] = {"run": 2, "phase": "mid", "at": 139_000, "group": group}
    runs = _check(_run_driver(tmp_path, plan, expect_kill=True), plan)
    assert len(runs[2]["pts"]) == 139_000


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_sigkill_while_threads_log_into_the_second_run(tmp_path, group):
    """metrics-pipeline.md: both paths claim slots from one counter, from any thread."""
    import random

    plan = _plan(tmp_path, n_runs=3, n_points=20, seed=18)
    plan["runs"][1]["points"] = _points(random.Random(19), 20_000, [f"t{k}" for k in range(4)],
                                        1_650_000_000_000)
    plan["runs"][1]["threads"] = True
    plan["kill"] = {"run": 1, "phase": "mid", "at": 15_000, "group": group}
    runs = _check(_run_driver(tmp_path, plan, expect_kill=True), plan)
    assert len(runs[1]["pts"]) >= 3_750
