"""Attacks on the latest fixes (wave 9): a file of its own for each series whose name and context make the same
file name, empty files removed (by the sink, end_run and recover), a final report that is not as planned, live
documents that wait for many series' files, and ``series.jsonl`` read in parts.

Oracles are exact: every series' points read back (values by their bits, steps as integers) from the file its
entity names, against what the child or the test logged; the set of files in ``metrics/`` against the set of
locations the document names; every reader (``prov4ml.runs``, ``prov4ml.analysis``, ``recover``) against the same.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import time
from pathlib import Path

import pytest

import prov4ml
from killing import Child, wait_for, wait_for_sinks
from prov4ml.metrics import _sink

SERIES = _sink.FEW_SERIES + 76  # 1,100: the many-series path


def bits(v: float) -> int:
    return struct.unpack("<q", struct.pack("<d", v))[0]


def expect(points):
    return [(int(s), bits(float(v))) for s, v in points]


def entities(run_dir: Path, rank: int = 0, prov_reads: bool = True) -> dict:
    """(name, context) -> (count, location relative to the run directory or None), from the document prov reads."""
    from prov.model import ProvDocument

    from prov4ml.provenance import json_location

    path = run_dir / f"prov_rank{rank}.json"
    data = json.loads(path.read_text())
    if prov_reads:
        ProvDocument.deserialize(str(path))
    out = {}
    for attrs in data.get("entity", {}).values():
        if "provml:count" in attrs and "provml:name" in attrs:
            v = attrs["provml:count"]
            n = int(v["$"]) if isinstance(v, dict) else int(v)
            loc = attrs.get("prov:location")
            if loc is not None:
                loc = Path(json_location(loc))
                loc = (loc.relative_to(run_dir) if loc.is_absolute() else loc).as_posix()
            key = (attrs["provml:name"], attrs["provml:context"])
            assert key not in out, f"two entities for {key}"
            out[key] = (n, loc)
    return out, data


def disk_problems(run_dir: Path, logged: dict, rank: int = 0, exact_files: bool = True, prov_reads: bool = True) -> list:
    """Every series logged against the document and the disk, point for point: its count, a location exactly when
    it has points, that file's rows; no file in metrics/ that no entity names, no two entities naming one file."""
    from prov4ml.metrics import formats

    got, _ = entities(run_dir, rank, prov_reads)
    problems = []
    named = {}
    for key, pts in logged.items():
        if key not in got:
            problems.append(("no entity", key))
            continue
        n, loc = got[key]
        if n != len(pts):
            problems.append(("count", key, n, len(pts)))
        if bool(pts) != (loc is not None):
            problems.append(("location", key, loc))
        if loc is None:
            continue
        if loc in named:
            problems.append(("one file for two series", loc, named[loc], key))
        named[loc] = key
        try:
            rows = _csv_rows(run_dir / loc) if loc.endswith(".csv") else None
            if rows is None:
                cols = formats.read(run_dir / loc)
                rows = list(zip(cols["step"].tolist(), cols["value"].tolist()))
        except Exception as exc:  # noqa: BLE001 - what a reader meets
            problems.append(("unreadable", key, loc, type(exc).__name__, str(exc)[:100]))
            continue
        if expect(rows) != expect(pts):
            problems.append(("rows", key, loc, rows[:4], pts[:4]))
    if exact_files:
        have = {f"metrics/{p.name}" for p in (run_dir / "metrics").iterdir()
                if p.name.endswith(f"_rank{rank}" + Path(p.name).suffix) or f"_rank{rank}." in p.name}
        extra = sorted(have - set(named))
        if extra:
            problems.append(("files no entity names", extra[:6], len(extra)))
    return problems


def _csv_rows(path: Path):
    """(step, value) of every row of a CSV metric file, its header first (any separator) and its last row whole."""
    text = path.read_text()
    lines = text.split("\n")
    sep = lines[0][4:5]
    assert lines[0] == sep.join(("step", "value", "time")), (path.name, lines[0])
    assert lines[-1] == "", (path.name, "a torn last row", lines[-1])
    out = []
    for line in lines[1:-1]:
        step, value, t = line.split(sep)
        float(t)
        out.append((int(step), float(value)))
    return out


def reader_problems(run_dir: Path, logged: dict) -> list:
    """prov4ml.runs and prov4ml.analysis read every series' points as logged."""
    from prov4ml.analysis import load_run
    from prov4ml.runs import read_run

    problems = []
    by_key = {}
    for p in read_run(run_dir).points():
        by_key[(p.series.name, p.series.context)] = list(zip(p.step.tolist(), p.value.tolist()))
    for key, pts in logged.items():
        if expect(by_key.get(key, [])) != expect(pts):
            problems.append(("runs", key, by_key.get(key, [])[:3], pts[:3]))
    # the web UI's series, as its page asks for them (from nothing), and each series' CSV download
    from prov4ml.ui.server import points as ui_points, series_csv
    from prov4ml.ui.store import Store

    store = Store(run_dir.parent.parent)
    key = f"{run_dir.parent.name}/{run_dir.name}"
    shown = {}
    for s in ui_points(store, key, {})["series"]:
        shown[(s["name"], s["context"])] = list(zip(s["step"], s["value"]))
        if not s["location"].endswith(".csv"):
            continue
        text = series_csv(store, key, s["key"]).decode().split("\n")
        sep = text[0][4:5]
        csv_pts = [(int(line.split(sep)[0]), float(line.split(sep)[1])) for line in text[1:] if line]
        if expect(csv_pts) != expect(logged.get((s["name"], s["context"]), [])):
            problems.append(("ui csv", s["key"], csv_pts[:3]))
    for key_, pts in logged.items():
        if expect(shown.get(key_, [])) != expect(pts):
            problems.append(("ui", key_, shown.get(key_, [])[:3], pts[:3]))
    frame = load_run(run_dir).metrics
    for key, pts in logged.items():
        sub = frame[(frame["name"] == key[0]) & (frame["context"] == key[1])]
        if expect(zip(sub["step"].tolist(), sub["value"].tolist())) != expect(pts):
            problems.append(("analysis", key, len(sub), len(pts)))
    return problems


# The pairs whose name and context make one file name, names ending like the suffix, names slug hashes
COLLIDING = [("a_b", "c"), ("a", "b_c"), ("a_b", "c-2"), ("a_b_c", "-2"), ("a_b", "c-3"), ("a", "b_c-2"),
             ("x/y", "z"), ("x_y", "z"), ("x", "y_z"), ("x", "y z"), ("w_x", "y"), ("w", "x_y")]


def _log_colliding(log, seed: float, steps=range(3)):
    """Log every COLLIDING series (three points each, values from ``seed``) through ``log(name, value, ctx, step)``."""
    for i, (name, ctx) in enumerate(COLLIDING):
        for s in steps:
            log(name, seed + i * 16 + s + 0.125, ctx, s)


# --- 1. colliding names in one process: two runs, custom separator, samplers, log_metrics, sub-contexts -------

def _colliding_run(tmp_path: Path, tag: str, sep: str, fmt: str, many: bool):
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "coll", str(tmp_path / "prov"), capture=False, csv_separator=sep,
                            metrics_file_type=fmt,
                            metric_samplers={"w_x": prov4ml.Window(2), "x_y": prov4ml.Subsample(2), "ign": "ignore"})
    run_dir = run.run_dir
    logged = {}

    def log(name, value, ctx, step, kept=True):
        prov4ml.log_metric(name, value, ctx, step=step)
        pts = logged.setdefault((name, str(ctx)), [])
        if kept:
            pts.append((step, value))

    if many:
        for k in range(SERIES):
            log(f"m{k}", k + 0.5, C.TRAINING, 0)
    sub = prov4ml.create_context("b_c", is_subcontext_of=C.TRAINING)  # a sub-context named as a colliding one
    for i, (name, ctx) in enumerate(COLLIDING):
        for s in range(3):
            if name == "w_x":  # Window(2): the mean of each pair, a last partial block at end_run
                prov4ml.log_metric(name, float(s), ctx, step=s)
                continue
            if name == "x_y":  # Subsample(2): the 1st and 3rd
                log(name, i * 16 + s + 0.125, ctx, s, kept=s % 2 == 0)
                continue
            log(name, i * 16 + s + 0.125, ctx, s)
    logged[("w_x", "y")] = [(1, 0.5), (2, 2.0)]
    # a series whose only value is refused, whose file name is a colliding one's
    with pytest.raises((TypeError, ValueError)):
        prov4ml.log_metric("a_b_c", "not a number", "-3")
    logged[("a_b_c", "-3")] = []
    prov4ml.log_metric("ign", 1.0, "c", step=0)  # ignored: no row
    logged[("ign", "c")] = []
    prov4ml.log_metrics({"a_b": 99.5, "a": 98.5}, "c", step=7)
    logged[("a_b", "c")].append((7, 99.5))
    logged.setdefault(("a", "c"), []).append((7, 98.5))
    prov4ml.log_metric("a", 5.25, sub, step=4)
    logged.setdefault(("a", "b_c"), []).append((4, 5.25))  # the sub-context's name is its context
    prov4ml.flush()
    live = disk_problems(run_dir, {k: v for k, v in logged.items() if k != ("w_x", "y")}, exact_files=False)
    assert live == [], f"{tag}: the live document after a flush"
    prov4ml.end_run()
    return run_dir, logged


@pytest.mark.parametrize("fmt,sep", [("csv", ";"), ("parquet", ",")])
def test_colliding_names_each_series_its_own_file_every_reader_follows_the_document(tmp_path, fmt, sep):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    # two runs in one process: the second starts afresh (Parquet: few series; 1,100 conversions cost seconds, and
    # its many-series path is attacked below with a blocked side file)
    for tag, many in (("few", False), ("many", fmt == "csv")):
        run_dir, logged = _colliding_run(tmp_path, tag, sep, fmt, many)
        assert disk_problems(run_dir, logged) == [], tag
        assert reader_problems(run_dir, logged) == [], tag
        assert not [p.name for p in (run_dir / "metrics").iterdir() if p.stat().st_size == 0], tag
        # the run's summary (what ls, the index and the UI read) names the same file and count as the document
        got, _ = entities(run_dir)
        summary = json.loads((run_dir / "summary_rank0.json").read_text())
        by_key = {(e["name"], e["context"]): (e["count"], e["location"]) for e in summary["series"]}
        assert len(by_key) == len(summary["series"]) == len(got), tag
        assert {k: v for k, v in by_key.items() if got.get(k) != v} == {}, tag


# --- 2. real processes killed with colliding names: the sink finishes, recover completes -------------------------

CHILD = """
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False, save_after_n_logs=100000,
                  csv_separator=SEP_, metrics_file_type=FMT_, rank=RANK_,
                  collect_all_processes=True, metric_samplers={{"win": prov4ml.Window(5)}})
C = prov4ml.Context
prov4ml.log_metric("win", 1.5, "c", step=0)  # held by its sampler: no row before end_run
prov4ml.log_metric("win", 2.5, "c", step=1)
for k in range(N_):
    prov4ml.log_metric("m%d" % k, k * 0.5, C.TRAINING, step=0)
pairs = PAIRS_
for s in range(3):
    for i, (name, ctx) in enumerate(pairs):
        prov4ml.log_metric(name, i * 16 + s + 0.125, ctx, step=s)
try:
    prov4ml.log_metric("a_b_c", "x", "-3")
except (TypeError, ValueError):
    pass
prov4ml.log_param("lr", 0.125)
tell(1)
flag(1)
n = 0
while True:  # a new colliding pair every call: their lines keep coming while the sink reads
    prov4ml.log_metric("n_%d" % n, n + 0.5, "q", step=n)
    prov4ml.log_metric("n", n + 0.75, "%d_q" % n, step=n)
    n += 1
    tell(n + 1)
    if n == 200:
        flag(2)
    if n % 10 == 0:
        time.sleep(0.002)
    if n == 2000:
        time.sleep(600)
"""


def _child_logged(n: int, told: int) -> dict:
    logged = {("m%d" % k, "training"): [(0, k * 0.5)] for k in range(n)}
    for i, (name, ctx) in enumerate(COLLIDING):
        logged[(name, ctx)] = [(s, i * 16 + s + 0.125) for s in range(3)]
    logged[("a_b_c", "-3")] = []
    logged[("win", "c")] = []
    for j in range(told - 1):
        logged[("n_%d" % j, "q")] = [(j, j + 0.5)]
        logged[("n", "%d_q" % j)] = [(j, j + 0.75)]
    return logged


@pytest.mark.parametrize("group,fmt", [(False, "csv"), (True, "csv"), (True, "parquet")])
def test_a_child_killed_with_colliding_names_then_recover(tmp_path, group, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    from prov4ml.run.recovery import recover

    n = SERIES if fmt == "csv" else 0  # Parquet: the collisions alone (1,100 conversions cost seconds)
    body = (CHILD.replace("N_", str(n)).replace("PAIRS_", repr(COLLIDING)).replace("SEP_", repr("\t"))
            .replace("FMT_", repr(fmt)).replace("RANK_", "1"))
    child = Child(tmp_path, body, group=group)
    child.wait_flag(2, timeout=120)
    time.sleep(0.05)
    child.kill()
    told = child.logged
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    if not group:  # the sink outlived the process and finished the files: none empty, none of a series without rows
        left = sorted(p.name for p in (run_dir / "metrics").iterdir() if p.is_file() and p.stat().st_size == 0)
        assert left == [], left[:5]
        assert not (run_dir / "metrics" / "win_c_rank1.csv").exists()
        # its last document (the sink's, once the files were finished) claims no row that is not on disk
        got, _ = entities(run_dir, 1)
        over = []
        for key, (count, loc) in got.items():
            rows = len(_csv_rows(run_dir / loc)) if loc and loc.endswith(".csv") else None
            if (loc is None and count) or (rows is not None and count > rows):
                over.append((key, count, rows, loc))
        assert over == []
    recover(run_dir)
    logged = _child_logged(n, told)
    problems = _rank_problems(run_dir, logged, told, rank=1)
    assert problems == []
    assert not [p.name for p in (run_dir / "metrics").iterdir() if p.is_file() and p.stat().st_size == 0]


def _rank_problems(run_dir: Path, logged: dict, told: int, rank: int) -> list:
    got, _ = entities(run_dir, rank)
    j = told - 1
    for key, value in ((("n_%d" % j, "q"), j + 0.5), (("n", "%d_q" % j), j + 0.75)):
        if key in got:
            logged[key] = [(j, value)] if got[key][0] else []
    return disk_problems(run_dir, logged, rank=rank)


# --- 3. many series described while the sink reads series.jsonl in parts, a group kill, then recover -------------

MANY_CHILD = """
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False, save_after_n_logs=100000)
C = prov4ml.Context
tell(0)
flag(1)
for k in range(N_):
    prov4ml.log_metric("s%d_%s" % (k, "y" * (k % PAD_)), k + 0.5, C.TRAINING, step=k)
    tell(k + 1)
    if k % 16 == 0:
        time.sleep(0.001)  # ~2 s in all: the sink reads series.jsonl (every second past 1,024 series) meanwhile
    if k == KILL_AT_:
        flag(2)
flag(3)
time.sleep(600)
"""


@pytest.mark.parametrize("group,n,pad", [(True, 6000, 97), (False, 4000, 499)])
def test_thousands_of_series_described_while_the_sink_reads_then_a_kill_and_recover(tmp_path, group, n, pad):
    """Lines of every length cross the 256 KiB parts of series.jsonl (6,000 lines of 60-160 bytes: ~0.6 MiB); the
    group is killed while the lines keep coming; recover must give every series whose call returned its file."""
    from prov4ml.run.recovery import recover

    # killed alone: 4,000 series of long names (~2 MiB of lines too, ~8 parts), the sink reads the rest by itself
    child = Child(tmp_path, MANY_CHILD.replace("N_", str(n)).replace("KILL_AT_", str(n * 3 // 4))
                  .replace("PAD_", str(pad)), group=group)
    child.wait_flag(2, timeout=120)
    child.kill()
    told = child.logged
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    recover(run_dir)
    logged = {("s%d_%s" % (k, "y" * (k % pad)), "training"): [(k, k + 0.5)] for k in range(told)}
    got, _ = entities(run_dir, prov_reads=False)  # json reads it (prov takes 4 s over 15,000 entities)
    extra = set(got) - set(logged)
    assert len(extra) <= 1, sorted(extra)[:5]  # the call in flight at the kill, at most
    for key in extra:
        k = int(key[0][1:].split("_")[0])
        assert k == told
        logged[key] = [(k, k + 0.5)] if got[key][0] else []
    assert told > n // 2
    assert disk_problems(run_dir, logged, prov_reads=False) == []


# --- 4. series.jsonl read in parts: lines across part borders, a line half written at the read --------------------

def test_series_lines_across_part_borders_and_a_half_written_line(tmp_path):
    from prov4ml.metrics import journal

    part = journal._LINES_READ
    path = tmp_path / "series.jsonl"
    lines = []
    size = 0
    sid = 0
    while size < 3 * part + 1000:  # lines whose ends fall on, just before and just after each border
        pad = "z" * ((sid * 7919) % 300)
        line = (json.dumps({"sid": sid, "name": f"n{sid}{pad}", "file": f"metrics/n{sid}_rank0.csv"}) + "\n").encode()
        lines.append(line)
        size += len(line)
        sid += 1
    blob = b"".join(lines)
    # make one line end exactly at the first border and another start exactly at the second
    reader = journal.SeriesLines(str(tmp_path))
    with open(path, "wb") as fh:
        fh.write(b"\0" * (len(blob) + 3 * part))  # the reserved tail
    got = {}
    cut = 0
    # written piece by piece: a part border, a line cut in the middle, the tail of zeros after it
    for end in (part - 1, part, part + 1, 2 * part + 17, len(blob) - 5, len(blob)):
        with open(path, "r+b") as fh:
            fh.seek(cut)
            fh.write(blob[cut:end])
        cut = end
        got.update(reader.read_new())
        whole = blob[:end].rfind(b"\n") + 1
        want = blob[:whole].count(b"\n")
        assert len(got) == want, (end, len(got), want)
    assert sorted(got) == list(range(sid))
    assert all(got[i]["file"] == f"metrics/n{i}_rank0.csv" for i in range(sid))
    # a read with no zero at all (the file exactly full, its size a multiple of the part size)
    path2 = tmp_path / "b"
    path2.mkdir()
    exact = b""
    i = 0
    while len(exact) < 2 * part:
        exact += (json.dumps({"sid": i, "name": "k"}) + "\n").encode()
        i += 1
    exact = exact[: exact.rfind(b"\n", 0, 2 * part) + 1]
    exact += b" " * (2 * part - len(exact) - 1) + b"\n"  # a blank line (not JSON) closes the second part
    (path2 / "series.jsonl").write_bytes(exact)
    assert len(journal.SeriesLines(str(path2)).read_new()) == exact.count(b"{")


# --- 5. empty files: what is removed, what is kept -----------------------------------------------------------------

@pytest.mark.parametrize("content,kept", [
    (b"", False),
    (b"step,value,time\n", False),
    (b"step;value;time\n", False),
    (b"step\tvalue\ttime\n", False),
    (b"step,value,time\n0,1.5,1764001234.512", True),  # a row without its newline is a row
    (b"step,value,time\n0,1.5,1764001234.512\n", True),
])
def test_remove_if_empty_keeps_every_file_with_a_row(tmp_path, content, kept):
    from prov4ml._fs import remove_if_empty

    path = tmp_path / "f.csv"
    path.write_bytes(content)
    remove_if_empty(path)
    assert path.exists() == kept


def test_end_run_after_the_sink_died_keeps_other_files_and_removes_only_empty_series_files(tmp_path):
    """The sink dies with files made ahead; end_run removes the empty file of every series without a row, and
    nothing else in metrics/: a user's file there, a colliding series' file, a series file with rows."""
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "drop", str(tmp_path / "prov"), capture=False)
    run_dir = run.run_dir
    logged = {}
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", k + 0.0, C.TRAINING, step=0)
        logged[(f"m{k}", "training")] = [(0, k + 0.0)]
    for name, ctx in (("a_b", "c"), ("a", "b_c"), ("e_f", "g")):
        with pytest.raises((TypeError, ValueError)):
            prov4ml.log_metric(name, "x", ctx)
        logged[(name, ctx)] = []
    wait_for(lambda: (run_dir / "metrics" / "a_b_c-2_rank0.csv").exists(), pause=0.02)
    (run_dir / "metrics" / "notes_rank0.csv").write_bytes(b"")  # a user's own empty file: not a series'
    (run_dir / "metrics" / "README").write_text("mine\n")
    pid = int(next(run_dir.glob(".prov4ml/rank*/sink.pid")).read_text())
    os.kill(pid, signal.SIGKILL)
    prov4ml.log_metric("a", 1.5, "b_c", step=2)  # now the second colliding series has a row
    logged[("a", "b_c")] = [(2, 1.5)]
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", k + 0.5, C.TRAINING, step=1)
        logged[(f"m{k}", "training")].append((1, k + 0.5))
    prov4ml.end_run()
    assert (run_dir / "metrics" / "notes_rank0.csv").exists(), "end_run removed a file of no series"
    assert (run_dir / "metrics" / "README").read_text() == "mine\n"
    (run_dir / "metrics" / "notes_rank0.csv").unlink()
    (run_dir / "metrics" / "README").unlink()
    assert disk_problems(run_dir, logged) == []


# --- 6. a final report that is not as planned: a write that fails for one colliding series only -----------------

@pytest.mark.parametrize("many,fmt", [(False, "csv"), (True, "csv"), (False, "parquet")])
def test_one_colliding_series_that_cannot_be_written_takes_no_other_series_claims(tmp_path, many, fmt):
    """The file of ("a", "b_c") (a_b_c-2) is a directory: its writes fail; the final report is not as planned
    and says every series with rows on disk. The document must claim exactly what is on disk: ("a_b", "c") and
    the others with their rows, ("a", "b_c") with none, and the status must not be finished."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    run_dir, blocked, logged = _blocked_run(tmp_path, many, fmt)
    prov4ml.end_run()
    _claims_only_what_is_on_disk(run_dir, blocked, logged, steps=3)


def _blocked_run(tmp_path: Path, many: bool, fmt: str = "csv"):
    """A run whose file of ("a", "b_c") (a_b_c-2) is a directory, so its writes fail; ("a_b", "c") and ("a", "b_c")
    logged at steps 0-2, a windowed series held by its sampler until end_run, and 3 or SERIES others."""
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "blocked", str(tmp_path / "prov"), capture=False,
                            metric_samplers={"w_x": prov4ml.Window(4)}, metrics_file_type=fmt)
    run_dir = run.run_dir
    (run_dir / "metrics").mkdir(exist_ok=True)
    blocked = run_dir / "metrics" / ("a_b_c-2_rank0.csv" if fmt == "csv" else "a_b_c-2_rank0.parquet.csv")
    blocked.mkdir()
    logged = {}
    for k in range(SERIES if many else 3):
        prov4ml.log_metric(f"m{k}", k + 0.0, C.TRAINING, step=0)
        logged[(f"m{k}", "training")] = [(0, k + 0.0)]
    for s in range(3):
        prov4ml.log_metric("a_b", s + 0.5, "c", step=s)
        prov4ml.log_metric("a", s + 0.25, "b_c", step=s)
        prov4ml.log_metric("w_x", s + 1.0, "y", step=s)  # held by its sampler until end_run
    return run_dir, blocked, logged


def _claims_only_what_is_on_disk(run_dir: Path, blocked: Path, logged: dict, steps: int) -> None:
    """After end_run: not finished, and the document claims exactly the files: ("a", "b_c") with no row."""
    logged = {**logged, ("a_b", "c"): [(s, s + 0.5) for s in range(steps)], ("a", "b_c"): [], ("w_x", "y"): [(2, 2.0)]}
    got, data = entities(run_dir)
    status = next(a for k, a in data["activity"].items() if k.endswith(".rank0")).get("provml:status")
    assert status != "finished", "finished over missing rows"
    blocked.rmdir()
    assert disk_problems(run_dir, logged) == []


# --- 7. live documents with many series and new ones coming: a parameter and an artifact within flush_interval --

@pytest.mark.parametrize("flush,prov_flush", [(1.0, 0.2)])
def test_a_new_parameter_and_artifact_reach_the_live_document_while_new_series_keep_coming(tmp_path, flush, prov_flush):
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "fresh", str(tmp_path / "prov"), capture=False,
                            flush_interval=flush, prov_flush_interval=prov_flush)
    doc = run.run_dir / "prov_rank0.json"
    art = tmp_path / "notes.txt"
    art.write_text("hello")
    for k in range(SERIES + 200):
        prov4ml.log_metric(f"m{k}", 1.0, C.TRAINING, step=0)
    n, t0, logged_at, seen = SERIES + 200, time.monotonic(), {}, {}
    while time.monotonic() - t0 < 5.0 and len(seen) < 2:
        for _ in range(20):
            prov4ml.log_metric(f"m{n}", 1.0, C.TRAINING, step=0)
            n += 1
        now = time.monotonic()
        if "lr" not in logged_at and now - t0 > 0.3:
            prov4ml.log_param("lr", 0.125)
            logged_at["lr"] = time.monotonic()
        if "art" not in logged_at and now - t0 > 0.6:
            prov4ml.log_artifact(str(art), C.TRAINING)
            logged_at["art"] = time.monotonic()
        data = json.loads(doc.read_text())
        labels = [str(v.get("prov:label", "")) for v in data["entity"].values()]
        if "lr" in logged_at and "lr" not in seen and "lr" in labels:
            seen["lr"] = time.monotonic() - logged_at["lr"]
        if "art" in logged_at and "art" not in seen and any("notes" in lab for lab in labels):
            seen["art"] = time.monotonic() - logged_at["art"]
        time.sleep(0.05)
    prov4ml.end_run()
    bound = 3 * max(flush, 1.0)  # a promise of freshness, checked with a deadline three times the interval
    assert set(seen) == {"lr", "art"} and max(seen.values()) <= bound, (seen, n)


# --- 6b. the sink dies right after its planned answer at end_run: its last word never comes --------------------

@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_sink_killed_after_its_planned_answer_the_document_claims_what_is_on_disk(tmp_path, monkeypatch, fmt):
    """end_run has the sink's planned report; the sink is killed before it confirms (rows of 1,100 series x 30
    points still to write). The run's thread finishes the files from the journal and its report is applied
    whole: every series must be claimed with exactly its rows, colliding names and a windowed sampler included."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    from prov4ml.metrics import outputs

    pids = []
    close = outputs.ProcessOutput.close

    def close_then_kill(self, timeout=60.0):
        report = close(self, timeout)
        os.kill(pids[0], signal.SIGKILL)
        return report

    monkeypatch.setattr(outputs.ProcessOutput, "close", close_then_kill)
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "planned", str(tmp_path / "prov"), capture=False, metrics_file_type=fmt,
                            metric_samplers={"w_x": prov4ml.Window(2)})
    run_dir = run.run_dir
    wait_for(lambda: any(run_dir.glob(".prov4ml/rank*/sink.pid")), pause=0.02)
    pids.append(int(next(run_dir.glob(".prov4ml/rank*/sink.pid")).read_text()))
    logged = {}
    many = SERIES if fmt == "csv" else 100  # Parquet: 1,100 conversions cost seconds
    for s in range(30):
        for k in range(many):
            prov4ml.log_metric(f"m{k}", k + s / 8, C.TRAINING, step=s)
    for k in range(many):
        logged[(f"m{k}", "training")] = [(s, k + s / 8) for s in range(30)]
    for i, (name, ctx) in enumerate(COLLIDING):
        for s in range(3):
            prov4ml.log_metric(name, i * 16 + s + 0.125, ctx, step=s)
        logged[(name, ctx)] = [(s, i * 16 + s + 0.125) for s in range(3)]
    logged[("w_x", "y")] = [(1, (10 * 16 + 0.125 + 10 * 16 + 1.125) / 2), (2, 10 * 16 + 2.125)]
    prov4ml.end_run()
    assert disk_problems(run_dir, logged) == []


# --- 2b. recover's tidying up never touches the run's copies of the user's files ----------------------------------

ART_CHILD = """
import pathlib
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False)
src = pathlib.Path({save_dir!r}).parent / "ckpt"
(src / ".cache.partial").mkdir(parents=True)
(src / ".lock.tmp").write_text("lock")
(src / "weights.recovering").write_text("w")
(src / ".cache.partial" / "f").write_text("f")
(src / "model.bin").write_text("m")
prov4ml.log_artifact(str(src), prov4ml.Context.TRAINING)
for k in range(3):
    prov4ml.log_metric("a_b", k + 0.5, "c", step=k)
    prov4ml.log_metric("a", k + 0.25, "b_c", step=k)
tell(1)
flag(1)
time.sleep(600)
"""


@pytest.mark.parametrize("group", [False, True])
def test_recover_keeps_every_file_of_a_logged_artifact_directory(tmp_path, group):
    """A logged directory holds a '.lock.tmp', a 'weights.recovering' and a '.cache.partial/' of the user's (a
    checkpoint folder, say): its copy is recorded whole, with its hash; recover must not delete any of them."""
    from prov4ml.run.recovery import recover

    child = Child(tmp_path, ART_CHILD, group=group)
    child.wait_flag(timeout=120)
    child.kill()
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    copied = sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / "artifacts").rglob("*") if p.is_file())
    assert any(p.endswith("ckpt/.lock.tmp") for p in copied), copied
    recover(run_dir)
    after = sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / "artifacts").rglob("*") if p.is_file())
    assert after == copied, "recover deleted files of a logged artifact"
    logged = {("a_b", "c"): [(k, k + 0.5) for k in range(3)], ("a", "b_c"): [(k, k + 0.25) for k in range(3)]}
    assert disk_problems(run_dir, logged) == []


# --- 1b. the yProv4ML-compatible readers and writers with colliding names -----------------------------------------

def test_compat_get_metric_and_save_to_file_keep_colliding_series_apart(tmp_path):
    """get_metric follows the document's location; MetricInfo.save_to_file builds its file name from the name and
    context (``<name>_<context>_GR<rank>.csv``), so ("a_b", "c") and ("a", "b_c") saved into one folder must
    not end in one file holding the second's points only (the first's export silently overwritten)."""
    from prov4ml.compat.getters import get_metric

    run = prov4ml.start_run("www.example.org", "compat", str(tmp_path / "prov"), capture=False)
    logged = {("a_b", "c"): [(s, s + 0.5) for s in range(3)], ("a", "b_c"): [(s, s + 0.25) for s in range(3)]}
    for (name, ctx), pts in logged.items():
        for step, value in pts:
            prov4ml.log_metric(name, value, ctx, step=step)
    infos = {(k[0], str(k[1])): v for k, v in prov4ml.PROV4ML_DATA.metrics.items()}
    saved = {key: infos[key].save_to_file(str(tmp_path / "out")) for key in logged}
    prov4ml.end_run()
    doc = str(run.run_dir / "prov_rank0.json")
    for (name, ctx), pts in logged.items():
        frame = get_metric(doc, name, ctx)
        assert expect(zip(frame["step"].tolist(), frame["value"].tolist())) == expect(pts), (name, ctx)
    exported = {}
    for key, path in saved.items():
        import csv

        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        exported[key] = expect((int(s), float(v)) for s, v, _t in rows)
    assert len(set(saved.values())) == 2, f"two series exported into one file: {saved}"
    assert exported == {key: expect(pts) for key, pts in logged.items()}


# --- 6c. the sink dead and one series' file unwritable: the run's thread takes over at end_run -------------------

@pytest.mark.parametrize("many", [False, True])
def test_the_sink_dead_and_one_series_file_blocked_end_run_still_writes_what_is_on_disk(tmp_path, many):
    """The file of ("a", "b_c") is a directory (its writes fail: EISDIR); the sink is killed mid-run, so at end_run
    the run's own thread finishes the files from the journal. end_run must not raise: the final document claims
    exactly what is on disk (("a", "b_c") with no row), the status is not finished, every other series exact."""
    run_dir, blocked, logged = _blocked_run(tmp_path, many)
    prov4ml.flush()
    pid = int(next(run_dir.glob(".prov4ml/rank*/sink.pid")).read_text())
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    for s in range(3, 5):
        prov4ml.log_metric("a_b", s + 0.5, "c", step=s)
        prov4ml.log_metric("a", s + 0.25, "b_c", step=s)
    try:
        prov4ml.end_run()
    except Exception as exc:  # noqa: BLE001 - what the user meets (the document is left 'running', journal kept)
        pytest.fail(f"end_run raised {type(exc).__name__}: {exc}")
    _claims_only_what_is_on_disk(run_dir, blocked, logged, steps=5)
