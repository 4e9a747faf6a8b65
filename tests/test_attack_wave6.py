"""Attacks on the many-series sink (journal read every second, rows held up to 5 s), the end_run that renames
its journal away instead of saving its records, the UI's C cut of long series with its start-up warm-up, and
the sink's framed replies (wave 6).

Oracles are exact: every point read back from the metric files bit for bit against what was logged, the
document's figures against the file's (the helpers of wave 5), the UI's first answer against the CSV row for
row (step, value bits, time), its min and max against the whole file's.
"""

import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import ROOT
from killing import wait_for_sinks
from test_attack_wave5 import _ieee_max, _ieee_min, _same, figure_problems, file_figures, status_of

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prov4ml", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def run_script(tmp_path: Path, body: str, timeout: float = 120, ok: bool = True) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(body))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# --- 3. the UI's cut of a long series ----------------------------------------------------------------------

BASE_RUNS = """
    import prov4ml
    for sep in (",", ";", "\\t"):
        prov4ml.start_run("www.example.org", "ui", {save!r}, capture=False, csv_separator=sep)
        for name in ("a", "b", "c"):
            for i in range(3):
                prov4ml.log_metric(name, i * 0.5, prov4ml.Context.TRAINING, step=i)
        prov4ml.end_run()
"""


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory) -> Path:
    """Three finished runs of series a, b, c (separators ',', ';', tab), made by one process: the CSV files are
    then replaced by long crafted ones, as the UI reads the files, not the document's figures."""
    folder = tmp_path_factory.mktemp("uibase")
    run_script(folder, BASE_RUNS.format(save=str(folder / "prov")))
    return folder / "prov"


HARD = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 2.2250738585072014e-308, 1e308, -1e308,
        1.7976931348623157e308, 0.1, 0.1 + 2 ** -56, 0.1 - 2 ** -56, 1 / 3, 2 / 3, 1e-320]


def crafted(n: int, seed: int, hard: bool = True):
    """n (step, value, time) rows: a smooth line with, scattered, values differing in their last bit, NaN,
    infinities, -0.0, subnormals, 1e308; the lowest and highest finite values placed once each."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        v = math.sin(i / 300) * (1 + rng.randint(-3, 3) * 2 ** -52)
        if hard and rng.random() < 0.02:
            v = rng.choice(HARD)
        rows.append((i * 3 - 1000, v, 1.7e9 + i / 7))
    return rows


def write_csv(path: Path, rows, sep=",", eol="\n", tail=""):
    text = f"step{sep}value{sep}time{eol}" + "".join(f"{s}{sep}{v!r}{sep}{t:.3f}{eol}" for s, v, t in rows)
    path.write_bytes((text + tail).encode())


def file_rows(path: Path, sep=","):
    """(step, value, time) of every whole line of a metric file, read exactly (ints, floats)."""
    text = path.read_bytes().decode()
    lines = text.split("\n")
    out = []
    for line in lines[1:-1]:
        s, v, t = line.rstrip("\r").split(sep)
        out.append((int(s), float(v), float(t)))
    return out


def get(url: str):
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.status, resp.read()


def run_key(server, run_dir: Path) -> str:
    return str(run_dir.relative_to(server.store.root)).replace(os.sep, "/")


def _js(v: float):
    """A value as the JSON answer says it: NaN and infinities as null."""
    return None if not math.isfinite(v) else v


def cut_problems(answer: dict, rows) -> list:
    """What the first answer of a long series does wrong against its file's rows: more than ~4,000 points,
    a point that is not a row of the file (step, value bits, time), the rows not in order, a total that is not
    the row count, the whole series' lowest or highest value missing."""
    problems = []
    if answer.get("total") != len(rows):
        problems.append(("total", answer.get("total"), len(rows)))
    steps, values, times = answer["step"], answer["value"], answer["time"]
    if len(values) > 4 * 1000 + 8:
        problems.append(("points", len(values)))
    at = {s: k for k, (s, _, _) in enumerate(rows)}
    last = -1
    for s, v, t in zip(steps, values, times):
        k = at.get(s)
        if k is None or not isinstance(s, int):
            problems.append(("step not in the file", s))
            continue
        want = rows[k]
        if not _same(_js(want[1]), v) or want[2] != t or k <= last:
            problems.append(("row", s, v, t, want))
        last = k
    numbers = [v for _, v, _ in rows if v == v]
    for want in (_ieee_min(numbers), _ieee_max(numbers)):
        if not any(_same(_js(want), v) for v in values):
            problems.append(("extreme missing", want))
    return problems[:10]


def _series(answer: dict, name: str) -> dict:
    return next(s for s in answer["series"] if s["name"] == name)


@pytest.fixture(scope="module")
def ui_root(base_runs, tmp_path_factory) -> Path:
    """A copy of the three runs with their files made long, in every form under attack."""
    root = tmp_path_factory.mktemp("ui") / "prov"
    shutil.copytree(base_runs, root)
    runs = sorted((root / "ui").glob("run_*"), key=lambda p: int(p.name.split("_")[1]))
    comma, semi, tab = runs
    n = 40_000
    write_csv(comma / "metrics" / "a_training_rank0.csv", crafted(n, 1))
    write_csv(comma / "metrics" / "b_training_rank0.csv", crafted(n, 2), eol="\r\n")  # CRLF line ends
    write_csv(comma / "metrics" / "c_training_rank0.csv", crafted(n, 3), tail="123,0.")  # a last line cut short
    write_csv(semi / "metrics" / "a_training_rank0.csv", crafted(n, 4), sep=";")
    write_csv(tab / "metrics" / "a_training_rank0.csv", crafted(n, 5), sep="\t")
    # steps beyond 2**53 (log_metric takes any int64 step): every one odd, so a float reading loses them
    big = [(2 ** 62 + 2 * i + 1, v, t) for i, (_, v, t) in enumerate(crafted(n, 6, hard=False))]
    write_csv(semi / "metrics" / "b_training_rank0.csv", big, sep=";")
    # not a metric file: rows of four fields, and a cell that is not a number
    bad = tab / "metrics" / "b_training_rank0.csv"
    bad.write_text("step\tvalue\ttime\n" + "".join(f"{i}\t{i}.5\t1.0\t9\n" for i in range(60_000)))
    bad = tab / "metrics" / "c_training_rank0.csv"
    bad.write_text("step\tvalue\ttime\n" + "".join(f"{i}\t{i}.5\t1.0\n" for i in range(60_000)) + "7\tabc\t1.0\n")
    return root


@pytest.fixture(scope="module")
def ui_server(ui_root):
    from prov4ml.ui import serve

    server = serve(ui_root, port=0)
    yield server
    server.shutdown()


def _points(server, run_dir: Path) -> dict:
    status, body = get(f"{server.url}/api/points/{quote(run_key(server, run_dir))}")
    assert status == 200
    return json.loads(body)


def _runs(root: Path):
    return sorted((root / "ui").glob("run_*"), key=lambda p: int(p.name.split("_")[1]))


@pytest.mark.parametrize("which,name,sep", [(0, "a", ","), (0, "b", ","), (0, "c", ","), (1, "a", ";"),
                                            (2, "a", "\t")])
def test_first_answer_of_a_long_series_is_rows_of_its_file_with_its_min_and_max(ui_server, ui_root, which, name,
                                                                                 sep):
    """40,000 rows (1.3 MiB) with NaN, infinities, -0.0, subnormals, 1e308 and values a last bit apart; a file
    with ',' ';' or tab, CRLF line ends (b), a last line cut short (c): the first /api/points answer is at most
    ~4,000 rows of the file, exact, in order, with the whole series' lowest and highest value; /api/series is
    the file as it is."""
    run_dir = _runs(ui_root)[which]
    path = run_dir / "metrics" / f"{name}_training_rank0.csv"
    rows = file_rows(path, sep)
    assert path.stat().st_size > (1 << 20) and len(rows) == 40_000
    answer = _series(_points(ui_server, run_dir), name)
    assert cut_problems(answer, rows) == []
    status, body = get(ui_server.url + answer["full"])
    assert status == 200 and body == path.read_bytes()


def test_first_answer_of_a_long_series_with_steps_beyond_2_53_keeps_them_exact(ui_server, ui_root):
    """40,000 rows whose steps are 2**62 + 1, 2**62 + 3, ... (log_metric takes them, the CSV holds them
    exactly): the cut's steps must be the file's, not the floats nearest them."""
    run_dir = _runs(ui_root)[1]
    rows = file_rows(run_dir / "metrics" / "b_training_rank0.csv", ";")
    answer = _series(_points(ui_server, run_dir), "b")
    steps = answer["step"]
    at = {s for s, _, _ in rows}
    wrong = [s for s in steps if s not in at]
    assert wrong == [], (len(wrong), wrong[:3], "e.g. the file has", rows[0][0])


def test_files_that_are_not_metric_files_neither_crash_nor_hang_the_page(ui_server, ui_root):
    """Rows of four fields (b) and a cell that is not a number at the end (c), 60,000 rows each: the answer
    comes (no 500) and the series that are fine are still sent."""
    run_dir = _runs(ui_root)[2]
    answer = _points(ui_server, run_dir)
    assert {s["name"] for s in answer["series"]} >= {"a"}
    assert cut_problems(_series(answer, "a"), file_rows(run_dir / "metrics" / "a_training_rank0.csv", "\t")) == []


def test_a_live_file_appended_between_answers_is_followed_from_the_cut(ui_server, ui_root, tmp_path):
    """A long file cut, then 500 rows appended (the last one cut short): the next answer, from the cut's
    offset, holds exactly the new whole rows."""
    root = ui_server.store.root
    run_dir = _runs(root)[0]
    path = run_dir / "metrics" / "a_training_rank0.csv"
    first = _series(_points(ui_server, run_dir), "a")
    before = file_rows(path)
    more = [(10 ** 6 + i, i / 3, 1.8e9 + i) for i in range(500)]
    with open(path, "a") as fh:
        fh.write("".join(f"{s},{v!r},{t:.3f}\n" for s, v, t in more) + "77,0.2")
    offsets = json.dumps({first["key"]: [first["location"], first["offset"]]})
    status, body = get(f"{ui_server.url}/api/points/{quote(run_key(ui_server, run_dir))}?offsets={quote(offsets)}")
    nxt = _series(json.loads(body), "a")
    got = list(zip(nxt["step"], nxt["value"], nxt["time"]))
    assert got == [(s, v, float(f"{t:.3f}")) for s, v, t in more]
    assert repr(file_rows(path)[:len(before)]) == repr(before)
    # restore the file for the other tests of the module
    write_csv(path, crafted(40_000, 1))


def test_a_page_asked_during_the_warm_up_gets_the_answer_made_after_it(ui_root, tmp_path):
    """A server started over the three runs plus 300 runs whose documents are garbage, one whose folder is
    deleted as the server starts, one with an unreadable document: the page asked at once (the warm-up still
    cutting) equals the page asked of a server without warm-up, and the server answers /api/runs."""
    from prov4ml.ui import decimate, serve

    root = tmp_path / "prov"
    shutil.copytree(ui_root, root)
    exp = root / "junk"
    for k in range(300):
        d = exp / f"run_{k}"
        d.mkdir(parents=True)
        (d / "prov_rank0.json").write_text("{not json" if k % 2 else '{"activity": 5}')
    gone = root / "ui" / "run_9"
    shutil.copytree(_runs(root)[0], gone)
    (root / "ui" / "run_8").mkdir()
    (root / "ui" / "run_8" / "prov_rank0.json").write_bytes(b"\xff\xfe\x00garbage")
    run_dir = _runs(root)[0]
    decimate._cuts.clear()
    server = serve(root, port=0)
    try:
        shutil.rmtree(gone)
        during = _points(server, run_dir)
        status, _ = get(server.url + "/api/runs")
        assert status == 200
    finally:
        server.shutdown()
    decimate._cuts.clear()
    cold = serve(root, port=0, warm=False)
    try:
        after = _points(cold, run_dir)
    finally:
        cold.shutdown()
    assert during == after


# --- 1. many series: flush(), end_run, several runs in one process ----------------------------------------

#: the value of point s of series k: hard values (NaN, infinities, -0.0, subnormals, values a last bit
#: apart, 1e308) on one point of three, no sum that overflows save where an infinity decides the mean
VALUES = """
import math
HARD = [math.nan, 5e-324, -0.0, 1e308, 0.1 + 0.2, 2.2250738585072014e-308 / 3, -1 / 3, 0.1 * (1 + 2 ** -52),
        math.inf, -math.inf, 1e-320, 0.30000000000000004]
def value(k, s):
    if s % 3 == 1:
        return HARD[(k * 5 + s) % len(HARD)]
    return k / 7 + s * 0.001
"""
exec(VALUES)  # noqa: S102 (the children's value function, here for the oracle)

HEAVY = 3  # series m0..m2 get HEAVY_POINTS points each, the others LIGHT_POINTS
HEAVY_POINTS, LIGHT_POINTS, SERIES = 3000, 3, 1500

MANY_RUNS = VALUES + """
import json, pathlib, prov4ml
save = pathlib.Path({save!r})
bad = []

def logged_rows(run_dir, k):
    p = run_dir / "metrics" / ("m%d_training_rank0.csv" % k)
    if not p.exists():
        return []
    lines = p.read_text().split("\\n")
    assert lines[-1] == ""
    return [(int(l.split(",")[0]), l.split(",")[1]) for l in lines[1:-1]]

for r in range({runs}):
    prov4ml.start_run("www.example.org", "many", str(save), capture=False)
    run_dir = save / "many" / ("run_%d" % r)
    done = {{}}
    for half in (0, 1):
        for k in range({series}):
            n = {heavy_points} if k < {heavy} else {light_points}
            lo, hi = (0, n // 2) if half == 0 else (n // 2, n)
            for s in range(lo, hi):
                prov4ml.log_metric("m%d" % k, value(k + r, s), prov4ml.Context.TRAINING, step=s)
            done[k] = hi
        if half == 0:
            prov4ml.flush()  # the files complete at this moment: checked before anything else happens
            for k in range({series}):
                want = [(s, repr(value(k + r, s))) for s in range(done[k])]
                if logged_rows(run_dir, k) != want:
                    bad.append((r, k, len(logged_rows(run_dir, k)), done[k]))
    prov4ml.end_run()
print(json.dumps(bad[:20]))
"""


def series_problems(run_dir: Path, shift: int, counts) -> list:
    """Each series m<k> holds exactly its points (value(k + shift, s) at step s) bit for bit."""
    problems = []
    for k, n in enumerate(counts):
        fig = file_figures(run_dir / "metrics" / f"m{k}_training_rank0.csv")
        want = [value(k + shift, s) for s in range(n)]
        if len(fig["values"]) != n or not all(_same(a, b) for a, b in zip(fig["values"], want)):
            problems.append((k, len(fig["values"]), n))
    return problems[:10]


def test_many_series_flush_and_end_run_over_two_runs_in_one_process_are_exact(tmp_path):
    """1,500 series (3 of 3,000 points, the rest of 3) with NaN, infinities, -0.0, subnormals, 1e308, values a
    last bit apart; flush() half-way (the files checked in the child at once), then end_run; a second run in
    the same process (the sink reused): every file holds exactly its points, every figure (the mean included)
    equals the file's."""
    proc = run_script(tmp_path, MANY_RUNS.format(save=str(tmp_path / "prov"), runs=2, series=SERIES, heavy=HEAVY,
                                                 heavy_points=HEAVY_POINTS, light_points=LIGHT_POINTS), timeout=300)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    counts = [HEAVY_POINTS] * HEAVY + [LIGHT_POINTS] * (SERIES - HEAVY)
    for r in (0, 1):
        run_dir = tmp_path / "prov" / "many" / f"run_{r}"
        assert status_of(run_dir) == "finished"
        assert series_problems(run_dir, r, counts) == []
        assert figure_problems(run_dir) == []
        assert not (run_dir / ".prov4ml").exists()


# --- 1. many series: a kill during the 5 s hold, then recover ---------------------------------------------

HOLD = VALUES + """
import pathlib, prov4ml, time
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False)
flag(1)
for s in range(3):
    for k in range(1500):
        prov4ml.log_metric("m%d" % k, value(k, s), prov4ml.Context.TRAINING, step=s)
prov4ml.flush()
for k in range(1500):  # one more point each, well under 16 KiB a file: held by the sink up to 5 s
    prov4ml.log_metric("m%d" % k, value(k, 3), prov4ml.Context.TRAINING, step=3)
tell(4)
flag(2)
time.sleep(600)
"""


def test_a_kill_during_the_sinks_hold_then_recover_keeps_every_point(tmp_path, group=True):
    """1,500 series: 3 points each, flush(), a 4th point each (rows the sink holds up to 5 s), SIGKILL of its group
    0.3 s later (the sink dies too); `prov4ml recover`: every point of every series
    in its file, status killed, the figures equal the files', nothing needs recovery after."""
    from killing import Child

    child = Child(tmp_path, HOLD, group=group)
    child.wait_flag(2, timeout=120)
    time.sleep(0.3)
    child.kill()
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    out = cli("recover", run_dir)
    assert out.returncode == 0, (out.stdout + out.stderr)[-2000:]
    assert status_of(run_dir) == "killed"
    assert series_problems(run_dir, 0, [4] * 1500) == []
    assert figure_problems(run_dir) == []
    import prov4ml

    assert prov4ml.needs_recovery(run_dir) == []


# --- 2. kills inside end_run of a many-series run with records -------------------------------------------

RECORDS_END = VALUES + """
import pathlib, prov4ml, signal, time
HOOK
save = pathlib.Path({save_dir!r})
prov4ml.start_run("www.example.org", "crash", str(save), capture=False, save_after_n_logs=100000)
flag(1)
for s in range(2):
    for k in range(1200):
        prov4ml.log_metric("m%d" % k, value(k, s), prov4ml.Context.TRAINING, step=s)
# records logged last: after any save of the records mid-run
prov4ml.log_param("lr", 0.125)
art = save.parent / "notes.txt"
art.write_text("hello")
prov4ml.log_artifact("notes", str(art), prov4ml.Context.TRAINING)
import torch
prov4ml.save_model_version("net", torch.nn.Linear(2, 1), prov4ml.Context.TRAINING, step=1)
prov4ml.log_dataset("train_set", list(range(10)), prov4ml.Context.TRAINING)
flag(2)
prov4ml.end_run()
flag(3)
time.sleep(600)
"""

#: SIGKILL of the process itself once the final document is in place, just before the journal is renamed away
BEFORE_RETIRE = """
import os
_rename = os.rename
def _hook(src, dst, *a, **k):
    if ".removing-" in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)
    return _rename(src, dst, *a, **k)
os.rename = _hook
"""


def records_problems(run_dir: Path) -> list:
    data = json.loads((run_dir / "prov_rank0.json").read_text())
    text = json.dumps(data)
    problems = [what for what, ok in (("param lr", '"lr"' in text and "0.125" in text), ("artifact", "notes" in text),
                                      ("model version", "net" in text), ("dataset", "train_set" in text)) if not ok]
    return problems


def _recovered_ok(run_dir: Path, returned: bool) -> list:
    import prov4ml

    problems = []
    wait_for_sinks(run_dir)
    before = status_of(run_dir) if (run_dir / "prov_rank0.json").exists() else None
    out = cli("recover", run_dir)
    if out.returncode and "nothing to recover" not in (out.stdout + out.stderr).lower():
        problems.append(("recover", out.returncode, (out.stdout + out.stderr)[-600:]))
    status = status_of(run_dir)
    if before == "finished" and status != "finished":
        problems.append(("status went from finished to", status))
    if returned and status != "finished":
        problems.append(("end_run had returned, status", status))
    problems += records_problems(run_dir)
    problems += series_problems(run_dir, 0, [2] * 1200)
    problems += figure_problems(run_dir)
    if prov4ml.needs_recovery(run_dir):
        problems.append(("still needs recovery", prov4ml.needs_recovery(run_dir)))
    listed = cli("ls", run_dir.parent.parent, "--json")
    entries = json.loads(listed.stdout or "[]")
    if not any(e["run_dir"].rstrip("/").endswith(run_dir.name) and e["status"] == status for e in entries):
        problems.append(("ls", listed.returncode, listed.stdout[-300:], listed.stderr[-300:]))
    return problems


def test_a_kill_just_before_the_journal_is_renamed_keeps_a_finished_run_with_its_late_records(tmp_path):
    """1,200 series, then a parameter, an artifact, a model version and a dataset logged just before end_run
    (no records saved since start_run); SIGKILL once the final document is in place, before the journal is
    renamed away: recover leaves it finished with every record, every point, the figures the files'."""
    from killing import Child

    child = Child(tmp_path, RECORDS_END.replace("HOOK", BEFORE_RETIRE))
    child.wait_flag(2, timeout=120)
    assert child.wait(120) == -signal.SIGKILL
    run_dir = child.run_dir()
    assert status_of(run_dir) == "finished"
    assert _recovered_ok(run_dir, returned=False) == []


@pytest.mark.parametrize("delay,group", [(0.15, False), (0.5, True)])
def test_a_kill_inside_end_run_of_a_many_series_run_with_records(tmp_path, delay, group):
    """The same run SIGKILLed `delay` s after end_run began (of the process or of its group): recover leaves a
    readable listed run, finished where end_run had written its final document, every record and point."""
    from killing import Child

    child = Child(tmp_path, RECORDS_END.replace("HOOK", ""), group=group)
    child.wait_flag(2, timeout=120)
    time.sleep(delay)
    returned = bool(child._read(3))
    child.kill()
    assert _recovered_ok(child.run_dir(), returned) == []


#: keep_journal=True; SIGKILL of the process itself right after end_run put its final document in place (the
#: records were never saved since start_run: the snapshot end_run saves last, for keep_journal, is not yet)
AFTER_FINAL_DOCUMENT = """
import os
_replace = os.replace
ending = []
def _hook(src, dst, *a, **k):
    out = _replace(src, dst, *a, **k)
    if ending and str(dst).endswith("prov_rank0.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return out
os.replace = _hook
"""


def test_keep_journal_then_a_kill_once_the_final_document_is_in_place(tmp_path):
    """keep_journal=True, the run of the test above; SIGKILL right after end_run renamed its final document
    into place: recover (using the kept journal) leaves it finished with every record and point."""
    from killing import Child

    body = RECORDS_END.replace("HOOK", AFTER_FINAL_DOCUMENT).replace("save_after_n_logs=100000",
                                                                      "save_after_n_logs=100000, keep_journal=True")
    child = Child(tmp_path, body.replace("flag(2)\n", "flag(2)\nending.append(1)\n"))
    child.wait_flag(2, timeout=120)
    assert child.wait(120) == -signal.SIGKILL
    run_dir = child.run_dir()
    assert status_of(run_dir) == "finished"
    assert _recovered_ok(run_dir, returned=False) == []


# --- 4. the sink's framed replies: 100,000 series under 256 descriptors, the sink killed between answers --

BETWEEN = VALUES + """
import json, os, pathlib, resource, signal, prov4ml
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
save = pathlib.Path({save!r})
run = prov4ml.start_run("www.example.org", "two", str(save), capture=False)
N = {n}
for s in range(2):
    for k in range(N):
        prov4ml.log_metric("m%d" % k, value(k, s), prov4ml.Context.TRAINING, step=s)
real = run._refresher.close
def close(*a, **k):
    report = real(*a, **k)  # the sink's first answer
    if {kill}:  # its own process, at once (its sink.pid may be gone already: it unlinks it once the files are written)
        os.kill(run._refresher._out._sink.proc.pid, signal.SIGKILL)
    return report
run._refresher.close = close
prov4ml.end_run()
print("ended")
"""


@pytest.mark.parametrize("n,kill", [(30_000, False), (3000, True)])
def test_many_series_reports_and_a_sink_killed_between_its_two_answers(tmp_path, n, kill):
    """30,000 series x 2 points under ulimit -n 256 (the report framed and pickled), and 3,000 series with the
    sink SIGKILLed after its first answer at end_run (the report), before the second (the files written):
    end_run returns; every point is in its file (directly, or after `prov4ml recover` where end_run kept the
    journal for it); the figures are the files'."""
    proc = run_script(tmp_path, BETWEEN.format(save=str(tmp_path / "prov"), n=n, kill=kill), timeout=300, ok=False)
    assert proc.returncode == 0 and "ended" in proc.stdout, proc.stderr[-3000:]
    run_dir = tmp_path / "prov" / "two" / "run_0"
    if (run_dir / ".prov4ml").exists():
        wait_for_sinks(run_dir)
        out = cli("recover", run_dir)
        assert out.returncode == 0, (out.stdout + out.stderr)[-2000:]
    step = 997 if n > 10_000 else 1
    for k in range(0, n, step):
        fig = file_figures(run_dir / "metrics" / f"m{k}_training_rank0.csv")
        assert len(fig["values"]) == 2 and all(_same(fig["values"][s], value(k, s)) for s in range(2)), k
    if n <= 10_000:
        assert figure_problems(run_dir) == []


# --- 1. the mean, correctly rounded, in a many-series run --------------------------------------------------

def test_the_mean_is_the_exact_mean_correctly_rounded_in_a_many_series_run(tmp_path):
    """1,100 series; series m0 holds -0.24286686951704883, -0.0013446586418989325, 0.39166573353688694, whose
    exact mean correctly rounded is 0.04915140179264639 (statistics.mean), while fsum / 3 gives
    0.0491514017926464: the document's and the summary's provml:mean must be the former."""
    from test_attack_wave5 import document_series, summary_series

    xs = [-0.24286686951704883, -0.0013446586418989325, 0.39166573353688694]
    run_script(tmp_path, f"""
import prov4ml
prov4ml.start_run("www.example.org", "mean", {str(tmp_path / 'prov')!r}, capture=False)
for s, x in enumerate({xs!r}):
    prov4ml.log_metric("m0", x, prov4ml.Context.TRAINING, step=s)
for k in range(1, 1100):
    prov4ml.log_metric("m%d" % k, k * 0.5, prov4ml.Context.TRAINING, step=0)
prov4ml.end_run()
""")
    run_dir = tmp_path / "prov" / "mean" / "run_0"
    doc, summ = document_series(run_dir)[("m0", "training")], summary_series(run_dir)[("m0", "training")]
    assert (doc["mean"], summ["mean"]) == (0.04915140179264639, 0.04915140179264639)
    assert figure_problems(run_dir) == []


# --- 2. a full disk at end_run keeps the journal ------------------------------------------------------------

FULL_AT_END = VALUES + """
import pathlib, prov4ml, time
save = pathlib.Path({save!r})
prov4ml.start_run("www.example.org", "full", str(save), capture=False)
for s in range(2):
    for k in range(1200):
        prov4ml.log_metric("m%d" % k, value(k, s), prov4ml.Context.TRAINING, step=s)
prov4ml.flush()
for k in range(1200):  # rows the sink holds: written at end_run, onto a full disk
    prov4ml.log_metric("m%d" % k, value(k, 2), prov4ml.Context.TRAINING, step=2)
(save / "ready").write_text("1")
while not (save / "go").exists():
    time.sleep(0.005)
try:
    prov4ml.end_run()
except Exception as exc:
    print("end_run raised", type(exc).__name__, exc)
print("ended")
"""


def test_a_full_disk_at_end_run_keeps_the_journal_and_recover_then_completes_every_point(small_tmpfs):
    """1,200 series, 3 points each, the last point of each still held by the sink; the disk filled (ENOSPC)
    before end_run: the journal stays (the run could not write all its rows); room made, `prov4ml recover`
    completes every point of every series, the figures the files'."""
    save = small_tmpfs / "prov"
    save.mkdir()
    script = small_tmpfs / "train.py"
    script.write_text(FULL_AT_END.format(save=str(save)))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=small_tmpfs, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (save / "ready").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
            time.sleep(0.01)
        Path(f"{save / 'go'}.tmp").write_text("1")
        filler = small_tmpfs / "filler"
        with open(filler, "wb") as fh:
            with pytest.raises(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
        os.rename(f"{save / 'go'}.tmp", save / "go")
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait(30)
    run_dir = save / "full" / "run_0"
    assert (run_dir / ".prov4ml" / "rank0").is_dir(), (out, err[-1500:])
    filler.unlink()
    wait_for_sinks(run_dir)
    rec = cli("recover", "--force", run_dir)
    assert rec.returncode == 0, (rec.stdout + rec.stderr)[-2000:]
    assert series_problems(run_dir, 0, [3] * 1200) == []
    assert figure_problems(run_dir) == []


# --- 4. series.jsonl parsed in one go: a corrupt line skipped alone ----------------------------------------

@pytest.mark.parametrize("corrupt", [b"7"])  # a line that is not JSON at all: tests/test_journal.py
def test_a_corrupt_line_of_series_jsonl_is_skipped_alone_by_recover(tmp_path, corrupt):
    """The run of the hold test killed (its group); line 700 of series.jsonl (series m700) overwritten, same
    length, with '#' (not JSON) or with '7' and spaces (JSON, but not a series): `prov4ml recover` still ends
    well and every other series holds its 4 points exactly."""
    from killing import Child

    child = Child(tmp_path, HOLD, group=True)
    child.wait_flag(2, timeout=120)
    child.kill()
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    path = run_dir / ".prov4ml" / "rank0" / "series.jsonl"
    lines = path.read_bytes().split(b"\n")
    k = next(i for i, line in enumerate(lines) if b'"name": "m700"' in line)
    lines[k] = corrupt + b" " * (len(lines[k]) - 1)
    path.write_bytes(b"\n".join(lines))
    out = cli("recover", run_dir)
    assert out.returncode == 0 and "Traceback" not in out.stderr, (out.stdout + out.stderr)[-2000:]
    others = [(k, 4) for k in range(1500) if k != 700]
    bad = []
    for k, n in others:
        fig = file_figures(run_dir / "metrics" / f"m{k}_training_rank0.csv")
        if len(fig["values"]) != n or not all(_same(fig["values"][s], value(k, s)) for s in range(n)):
            bad.append(k)
    assert bad == []
    assert status_of(run_dir) == "killed"
