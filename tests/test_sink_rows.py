"""The sink's rows: formatted in bulk (C, or Python where the extension is not built), every value exact.

The CSV text is the one docs/formats.md documents, ``"%d,%r,%.3f\\n"`` of
each point byte for byte, so every value reads back as the double logged.
"""

import math
import random
import struct
import subprocess
import sys
from fractions import Fraction

import pandas as pd
import pytest

import prov4ml
from prov4ml.metrics import _sink, journal
from prov4ml.metrics.formats import read_csv
from prov4ml.metrics.journal import RECORD, VOID

_hot = pytest.importorskip("prov4ml.metrics._hot")

rng = random.Random(26)


def _bits(x):
    return struct.pack("<d", x)


def _double(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def hard_values(n):
    """Random bit patterns (every exponent, subnormals, NaNs), the edges, and common metric values."""
    edges = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.2250738585072009e-308,
             2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 9999999999999998.0, 1e-4, 1e-5, 0.1, 1 / 3,
             123456789012345680.0, 1e22, 1e23, 2.0 ** 63, 9007199254740993.0, 0.30000000000000004, 100.0]
    return (edges + [_double(rng.getrandbits(64)) for _ in range(n)] + [rng.random() for _ in range(n)]
            + [float(rng.randint(-10 ** 6, 10 ** 6)) for _ in range(n // 10)]
            + [struct.unpack("<f", struct.pack("<f", rng.gauss(0, 1)))[0] for _ in range(n // 10)])


def hard_times(n):
    """Clock times and what no clock gives: exact ties at the third decimal, negatives, huge, subnormal, inf, NaN."""
    edges = [0.0625, 0.1875, 1.0005, 0.0015, -0.0, -1e-10, 2.5e-300, 1e17, 2.0 ** 53 - 1, 2.0 ** 53, 1e300,
             math.inf, -math.inf, math.nan, -3.9995, 1796556948.5715]
    return edges + [rng.uniform(1.7e9, 1.8e9) for _ in range(n)] + [rng.uniform(-1e6, 1e6) for _ in range(n // 10)]


def slots(points):
    return b"".join(RECORD.pack(step, value, t, sid, 0) for sid, step, value, t in points)


def random_points(n, sids=(3,)):
    values, times = hard_values(n), hard_times(n)
    steps = [0, -1, 2 ** 63 - 1, -2 ** 63] + [rng.randint(-2 ** 63, 2 ** 63 - 1) for _ in range(n)]
    m = max(len(values), len(times), len(steps))
    return [(rng.choice(sids), steps[k % len(steps)], values[k % len(values)], times[k % len(times)])
            for k in range(m)]


@pytest.mark.parametrize("separator", [",", ";", "\t", " | "])
def test_rows_are_python_formatting_byte_for_byte(separator):
    points = random_points(20_000, sids=(1, 7, 2 ** 32 - 2))
    points.insert(5, (VOID, 1, 2.0, 3.0))  # a slot given up: no row
    row = _sink.row_format(separator)
    groups = _hot.rows(slots(points), separator)
    assert [g[0] for g in groups] == list(dict.fromkeys(p[0] for p in points if p[0] != VOID))
    for g in groups:
        mine = [p for p in points if p[0] == g[0]]
        assert g[1] == "".join(row % p[1:] for p in mine).encode()
    # the fallback gives the same rows and summaries
    python = _sink._rows_py(slots(points), separator)
    assert _exact([g[:-2] for g in python]) == _exact([g[:-2] for g in groups])
    for mine, theirs in zip(groups, python):  # the sum: C's partials, or (left to _fold) the values, as Python's
        finite = [v for v in memoryview(theirs[-2]).cast("d") if not math.isinf(v)]
        assert theirs[-1] is None
        if mine[-1] is not None:
            assert mine[-2] is None and sum(map(Fraction, mine[-1])) == sum(map(Fraction, finite))
        else:
            assert mine[-2] == (theirs[-2] or None)


def test_rows_of_consecutive_steps_and_clock_times():
    """What a training loop logs: steps counting up (the C rows count their text up) and times within a second."""
    edges = [-12, -1, 0, 8, 9, 10, 98, 99, 100, 999, 1000, 2 ** 63 - 3, -2 ** 63, 10 ** 18 - 1]
    steps = [s for e in edges for s in range(e, min(e + 4, 2 ** 63))]
    steps += list(range(-3, 2000)) + [5, 5, 4, 6]
    t0 = 1796556948.9987
    times = [t0 + k * 2.5e-4 for k in range(len(steps) - 8)] + [-0.0005, -0.5, 0.5, 0.0005, -1.25, 1.25, 2.0, -2.0]
    points = [(4, step, 1.0 / (k + 1), t) for k, (step, t) in enumerate(zip(steps, times))]
    ((_, text, *_),) = _hot.rows(slots(points), ",")
    assert text == "".join("%d,%r,%.3f\n" % p[1:] for p in points).encode()


def _exact(items):
    """Floats as their bits, so NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(items, (list, tuple)):
        return [_exact(x) for x in items]
    return _bits(items) if isinstance(items, float) else items


def test_every_value_reads_back_bit_for_bit():
    points = random_points(20_000)
    ((_, text, *_),) = _hot.rows(slots(points), ",")
    for (_, step, value, t), line in zip(points, text.decode().splitlines(), strict=True):
        s, v, tt = line.split(",")
        assert int(s) == step
        assert _bits(float(v)) == _bits(value) or (math.isnan(value) and math.isnan(float(v)))
        assert tt == "%.3f" % t


def test_summaries_of_a_chunk_are_exact():
    cases = [[1e308, 1e308, -1e308], [1e308, 1e308], [-0.0, -0.0], [0.0, -0.0], [-0.0, 0.0], [math.nan, 1.0],
             [math.nan], [math.inf, 1.0], [math.inf, -math.inf], [1e100, 1.0, -1e100], [0.1] * 10, [5e-324] * 3]
    cases += [[rng.choice([1.0, -1.0, 1e16, -1e16, 0.5, 2.0 ** -52, 1e-300, 7e15, math.nan]) * rng.choice([1, 3, 0.1])
               for _ in range(rng.randint(1, 30))] for _ in range(500)]
    for values in cases:
        raw = slots([(1, k, v, 1.5 + k) for k, v in enumerate(values)])
        ((_, _, count, nan, lo, hi, last, *_, numbers, partials),) = _hot.rows(raw, ",")
        finite = [v for v in values if v == v]
        assert (count, nan) == (len(values), len(values) - len(finite))
        assert _bits(last) == _bits(values[-1])
        if partials is None and finite:  # left to _fold, which sums the values themselves
            assert list(memoryview(numbers).cast("d")) == finite
        else:
            assert numbers is None
        if finite:
            assert _bits(lo) == _bits(min(finite, key=lambda v: (v, math.copysign(1, v))))
            assert _bits(hi) == _bits(max(finite, key=lambda v: (v, math.copysign(1, v))))
            assert partials is None or sum(map(Fraction, partials)) == sum(map(Fraction, finite))  # exactly
        folded = []
        for rows in (_hot.rows, _sink._rows_py):  # C's partials, Python's values: the same fold, in C or Python
            for fold in (_hot.fold, _sink._fold):
                stats = _sink.new_stats()
                fold(stats, rows(raw, ",")[0])
                folded.append(stats)
        assert all(_exact(stats) == _exact(folded[0]) for stats in folded[1:])
        infinities = {v for v in finite if math.isinf(v)}
        if infinities:  # IEEE: an infinity's sign, NaN with both
            mean = _sink.summary(folded[0])[5]
            assert math.isnan(mean) if len(infinities) == 2 else mean == infinities.pop()
        elif finite and not all(v == 0 for v in finite):
            assert _bits(_sink.summary(folded[0])[5]) == _bits(float(sum(map(Fraction, finite)) / len(finite)))


def test_the_mean_is_exact_however_the_points_fall_into_chunks():
    """The values' exact mean, correctly rounded, whether a series came in one chunk or many (a running mean of
    chunk means is off in its last bits), and where the sum overflows a double on the way."""
    cases = [[1.7976931348623157e308] * 3 + [1e16] * 6, [rng.uniform(-100, 100) for _ in range(154)],
             [0.1] * 1000, [1e308, -1e308, 5e-324, 3.0], [0.0, -0.0, 0.0, 1.0, -0.0], [-0.0, 0.0, -2.0, 0.0, -0.0], [rng.choice([1e16, 1.0, -1e-16, 3.3]) for _ in range(300)]]
    cases += [[rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300) for _ in range(rng.randint(2, 80))] for _ in range(200)]
    for values in cases:
        want = float(sum(map(Fraction, values)) / len(values))
        folded = []
        for rows, fold in ((_hot.rows, _hot.fold), (_sink._rows_py, _sink._fold), (_sink._rows_py, _hot.fold)):
            for size in (1, 3, 7, len(values)):
                stats = _sink.new_stats()
                for at in range(0, len(values), size):
                    chunk = values[at:at + size]
                    (group,) = rows(slots([(1, at + k, v, 1.5) for k, v in enumerate(chunk)]), ",")
                    fold(stats, group)
                assert _bits(_sink.summary(stats)[5]) == _bits(want), (values[:4], size, rows, fold)
                folded.append(_exact(stats))
        assert all(stats == folded[0] for stats in folded)  # count, extremes, last, steps, times: alike too


def test_the_summaries_in_c_are_the_pythons_bit_for_bit():
    """A report's summaries (_hot.summarize_all) are _sink.summary's, the exact mean included: random values,
    NaN only, infinities of one sign and both, zeros of both signs, a series with no row, huge counts."""
    cases = [[], [math.nan] * 3, [math.inf, 1.0], [-math.inf, math.nan], [math.inf, -math.inf], [0.0, -0.0], [-0.0],
             [1.7976931348623157e308] * 4, [5e-324, -5e-324, 5e-324]]
    cases += [rng.sample(hard_values(40), rng.randint(1, 30)) for _ in range(300)]
    all_stats = {}
    for sid, values in enumerate(cases):
        stats = all_stats[sid * 7919] = _sink.new_stats()
        for at in range(0, len(values), 5):
            (group,) = _hot.rows(slots([(1, at + k, v, 1.5 + k) for k, v in enumerate(values[at:at + 5])]), ",")
            _hot.fold(stats, group)
    all_stats[1] = [2 ** 70, 2 ** 69, 1.0, 2.0, 1.5, None, 0, 9, 1.5, 2.5, 3 << 1074]  # counts past 64 bits
    for text in (True, False):
        c, py = _hot.summarize_all(all_stats, text), _sink._summarize_all(all_stats, text)
        assert list(c) == list(py) == [str(k) if text else k for k in all_stats]
        assert all(_exact(c[k]) == _exact(py[k]) for k in py)
    assert _sink.summary(all_stats[1])[5] == 3.0 / 2 ** 69


def test_a_run_reads_back_what_was_logged(tmp_path):
    """Through the real sink process: the CSV gives back each value, step and time logged, bit for bit."""
    values = [v for v in hard_values(3000) if v == v]
    steps = [rng.randint(-2 ** 62, 2 ** 62) for _ in values]
    times = [rng.uniform(1e9, 2e9) for _ in values]
    prov4ml.start_run("www.example.org", "rows", str(tmp_path), capture=False)
    for value, step, t in zip(values, steps, times):
        prov4ml.log_metric("loss", value, prov4ml.Context.TRAINING, step=step)
        prov4ml.log_metric("timed", value, prov4ml.Context.TRAINING, step=step, timestamp=t)
    prov4ml.log_metric("nan", math.nan, prov4ml.Context.TRAINING, step=0)
    path = prov4ml.end_run()
    metrics = path.parent / "metrics"
    for name in ("loss", "timed"):
        data = read_csv(metrics / f"{name}_training_rank0.csv")
        assert [_bits(v) for v in data["value"]] == [_bits(v) for v in values]
        assert list(data["step"]) == steps
        frame = pd.read_csv(metrics / f"{name}_training_rank0.csv")  # the default parser reads a shortest repr exactly
        assert [_bits(v) for v in frame["value"]] == [_bits(v) for v in values]
    timed = (metrics / "timed_training_rank0.csv").read_text().splitlines()[1:]
    assert [line.rsplit(",", 1)[1] for line in timed] == ["%.3f" % t for t in times]
    assert math.isnan(read_csv(metrics / "nan_training_rank0.csv")["value"][0])


@pytest.fixture(params=["C", "Python"])
def committed_copy(request, monkeypatch):
    """The sink's read of committed slots: ``_hot.committed``, or the two reads that agree where it is not built."""
    if request.param == "Python":
        monkeypatch.setattr(journal, "_committed", None)
    elif journal._committed is None:
        pytest.skip("the C paths are off here (PROV4ML_PURE_PYTHON)")
    return request.param


def test_read_slots_stops_at_a_slot_not_committed(tmp_path, committed_copy):
    j = journal.Journal(str(tmp_path))
    for k in range(5):
        j.append(0, k, k * 1.5, 100.0 + k)
    mm, counter = j.current
    torn = next(counter)  # claimed; its payload written, its commit word not yet
    RECORD.pack_into(mm, torn * journal.SLOT, 5, 7.5, 105.0, 0, 0)
    j.append(0, 6, 9.0, 106.0)
    reader = journal.JournalReader(str(tmp_path))
    first = reader.read_slots(now=0.0)
    assert [r[:4] for r in RECORD.iter_unpack(first)] == [(k, k * 1.5, 100.0 + k, 0) for k in range(5)]
    assert reader.read_slots(now=1.0) == b""  # the hole waits (it is not stale yet)
    RECORD.pack_into(mm, torn * journal.SLOT, 5, 7.5, 105.0, 0, torn + 1)
    rest = reader.read_slots(now=2.0)
    assert [r[:4] for r in RECORD.iter_unpack(rest)] == [(5, 7.5, 105.0, 0), (6, 9.0, 106.0, 0)]
    j.close()


WRITER = """
import sys
from prov4ml.metrics.journal import Journal
j = Journal(sys.argv[1])
for i in range(int(sys.argv[2])):
    j.append(i % 3, i, i * 0.5, i + 0.25)
j.close()
"""


def test_read_slots_while_another_process_writes(tmp_path, committed_copy):
    """Every slot read while a real writer packs records (zero-fill, fields, commit word last) is whole."""
    n = 200_000  # more than a segment: the reading crosses into the next one
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(n)])
    reader = journal.JournalReader(str(tmp_path))
    got = []
    while len(got) < n:
        done = writer.poll() is not None
        raw = reader.read_slots(final=done, now=0.0)
        got += [r[:4] for r in RECORD.iter_unpack(raw)]
        if done and not raw:
            break
    assert writer.wait() == 0
    assert got == [(i, i * 0.5, i + 0.25, i % 3) for i in range(n)]
    reader.close()
