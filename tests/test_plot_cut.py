"""The cut of a long CSV metric file for a plot: ``_hot.cut`` (C) keeps exactly the rows NumPy's
``minmax_indices`` keeps, read exactly; the UI's cache makes a cut once; the server cuts the newest run at start."""

import math
import random
import struct
import threading
import time

import pytest

import prov4ml
from prov4ml.analysis.plots import minmax_indices
from prov4ml.metrics.formats import csv_rows, kept_rows
from prov4ml.ui import decimate, serve

_hot = pytest.importorskip("prov4ml.metrics._hot")
rng = random.Random(26)


def _bits(xs):
    return [struct.pack("<d", x) for x in xs]


def _write(path, values, sep=",", first_step=0):
    """A metric file as the sink writes it: ``%d,%r,%.3f`` rows."""
    rows = "".join(f"{first_step + 3 * i}{sep}{v!r}{sep}{1.7e9 + i / 7:.3f}\n" for i, v in enumerate(values))
    path.write_text(f"step{sep}value{sep}time\n" + rows)


def _numpy(path, buckets):
    data, sep, _ = csv_rows(path)
    steps, values, times, total = kept_rows(data, sep, lambda v: minmax_indices(v, buckets))
    return steps.tolist(), values.tolist(), times.tolist(), total


def _close_values(n):
    """Values that differ in their last bits, so the approximate reading alone would pick wrong extremes."""
    base = rng.choice([1.0, 0.1, 123456.789, 1e-5, 3.3e15, 7e21])
    return [base * (1 + rng.randint(-4, 4) * 2.0 ** -52) * rng.choice([1, 1, -1]) for _ in range(n)]


CASES = [
    [math.nan, 1.0, -0.0, 0.0, math.inf, -math.inf, 5e-324, 1e-300, 1e300, 1.7976931348623157e308, -2.5],
    [math.nan] * 40,
    [0.0, -0.0] * 30,
    [math.inf, math.nan, -math.inf] * 20,
]


@pytest.mark.parametrize("buckets", [1, 3, 7, 50])
def test_the_c_cut_keeps_the_rows_numpy_keeps_bit_for_bit(tmp_path, buckets):
    cases = CASES + [_close_values(rng.randint(1, 600)) for _ in range(30)]
    cases += [[rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(rng.randint(1, 600))] for _ in range(30)]
    cases += [[rng.choice([0.1, 0.2, 0.30000000000000004, 1e-320, -1e22, 12345678901234567890.0, math.nan])
               for _ in range(rng.randint(1, 400))] for _ in range(20)]
    for k, values in enumerate(cases):
        path = tmp_path / f"m{k}.csv"
        first_step = rng.choice([0, -5, 2 ** 62 + 1, -2 ** 63])  # steps beyond 2**53 stay exact
        _write(path, values, rng.choice([",", ";", "\t"]), first_step)
        data, sep, _ = csv_rows(path)
        mine, want = _hot.cut(data, sep, buckets), _numpy(path, buckets)
        assert mine is not None
        assert mine[3] == want[3] == len(values)
        assert mine[0] == want[0] and all(type(s) is int for s in mine[0])
        assert set(mine[0]) <= {first_step + 3 * i for i in range(len(values))}
        for got, expected in zip(mine[1:3], want[1:3]):
            assert _bits(got) == _bits(expected), (values[:5], buckets)


def test_a_file_of_another_form_is_left_to_numpy(tmp_path):
    """Anything but three fields with a number as value (or a separator of several characters): None, and the
    UI's cut falls back to NumPy's reading, which says what it says (here: not a metric file it can read)."""
    for rows in ("0,abc,1.0\n", "0,1.5\n", "0,1.5,1.0,2\n", ",1.5,1.0\n", "0,,1.0\n", "0,1.5,\n", "0,1.5x,1.0\n"):
        assert _hot.cut(memoryview(rows.encode()), ",", 10) is None, rows
    assert _hot.cut(memoryview(b"0::1.5::1.0\n"), "::", 10) is None
    assert _hot.cut(memoryview(b"0,1.5,1.0"), ",", 10) is None  # not a whole line
    path = tmp_path / "odd.csv"
    path.write_text("step,value,time\n" + "0,1.5,1.0\n" * 40000 + "1,abc,2.0\n")
    assert decimate.decimated(path) is None  # as NumPy's path: a cell that is not a number


def test_a_cut_is_made_once_however_many_ask_at_once(tmp_path, monkeypatch):
    path = tmp_path / "m.csv"
    _write(path, [float(i % 1000) for i in range(60000)])
    made = []
    real = decimate._cut

    def slow(*args):
        made.append(args)
        time.sleep(0.3)
        return real(*args)

    monkeypatch.setattr(decimate, "_cut", slow)
    out = [None] * 4
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, decimate.decimated(path))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and out[0] is not None and all(o == out[0] for o in out)
    assert out[0]["total"] == 60000 and min(out[0]["value"]) == 0.0 and max(out[0]["value"]) == 999.0


def test_the_server_cuts_the_newest_runs_long_series_as_it_starts(tmp_path):
    root = tmp_path / "prov"
    prov4ml.start_run("www.example.org", "warm", str(root), capture=False)
    for i in range(50000):  # a file over DECIMATE_BYTES
        prov4ml.log_metric("loss", math.sin(i / 100), prov4ml.Context.TRAINING, step=i)
    prov4ml.log_metric("acc", 0.5, prov4ml.Context.TRAINING, step=0)  # short: sent as it is, never cut
    run_dir = prov4ml.end_run().parent
    long = run_dir / "metrics" / "loss_training_rank0.csv"
    assert long.stat().st_size > decimate.DECIMATE_BYTES
    key = (str(long), long.stat().st_size, long.stat().st_mtime_ns, decimate.BUCKETS)
    server = serve(root, port=0)
    try:
        deadline = time.monotonic() + 30
        while key not in decimate._cuts and time.monotonic() < deadline:
            time.sleep(0.05)
        assert key in decimate._cuts
        assert not any(k[0].endswith("acc_training_rank0.csv") for k in decimate._cuts)
        assert decimate._cuts[key]["total"] == 50000
    finally:
        server.shutdown()
