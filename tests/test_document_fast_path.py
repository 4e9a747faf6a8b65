"""The document written at refreshes and at end_run (series emitted straight as PROV-JSON) is the same PROV
document the prov-model builder made before the fast path: compared with fixtures written by that builder.

Regenerate the fixtures only from a checkout whose builder is trusted:
``python tests/test_document_fast_path.py`` writes tests/data/document_fast_path/*.json.
"""

from __future__ import annotations

import io
import json
import math
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from prov4ml.context import Context
from prov4ml.records.model import EpochRecord, FinalValue, ParamRecord, RunSnapshot, SeriesSummary

FIXTURES = Path(__file__).resolve().parent / "data" / "document_fast_path"
T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
CASES = ("ended", "running", "failed")


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _series(name, context, source="metric", count=10, values=(0.5, 2.5, 1.5, 1.25), nan_count=0, unit=None,
            sampler=None, steps=(0, 9), times=(1, 2), location="auto"):
    low, high, last, mean = values
    if location == "auto":
        location = f"metrics/{name}_{context}_rank0.csv"
    empty = count == 0
    return SeriesSummary(name, context, source, unit, sampler, None if empty else location, count, nan_count,
                         None if empty else low, None if empty else high, None if empty else last,
                         None if empty else mean, None if empty else steps[0], None if empty else steps[1],
                         None if empty else _t(times[0]), None if empty else _t(times[1]))


def snapshot(case: str) -> RunSnapshot:
    """A run with series of every kind: contexts and sub-contexts, NaN and infinities, odd names, no points."""
    train, val, test = Context.TRAINING, Context.VALIDATION, Context.TESTING
    sub = Context("finetune_probe", Context.VALIDATION)
    series = [
        _series("loss", train),
        _series("loss", val, values=(0.1, 0.9, 0.2, 0.4)),
        _series("acc", test, values=(0.7, 0.9, 0.9, 0.8), unit="ratio"),
        _series("probe_acc", sub, sampler="every 10"),
        _series("nan_and_inf", train, values=(-math.inf, math.inf, math.nan, math.nan), nan_count=3),
        _series("neg_zero", train, values=(-0.0, 5e-324, 1.7976931348623157e308, -0.0)),
        _series("big_steps", train, steps=(2**40, 2**62), count=2**33),
        _series('odd "quoted" naïve/λ name', train, values=(1.0, 1.0, 1.0, 1.0)),
        _series("cpu_usage", train, source="system", unit="%"),
        _series("empty", val, count=0),
        _series("nowhere", train, location=None),
        _series("rank_1_loss", train, location="/elsewhere/metrics/loss rank 1.csv"),
        _series("doubled_slash", train, location="metrics//doubled.csv"),
        _series("dot_folder", train, location="./metrics/./dot.parquet"),
        _series("unicode_file", train, location='metrics/ünï cödé "q" λ.csv'),
        _series("root_file", train, location="//top.csv"),
        _series("no_suffix", train, location="metrics/no_suffix"),
        _series("two_suffixes", train, location="metrics/two.tar.gz"),
    ]
    for fold in range(3):
        series.append(_series(f"fold{fold}_loss", val, values=(fold, fold + 1, fold + 0.5, fold + 0.25)))
    for epoch in range(3):
        series.append(_series(f"epoch_{epoch}_loss", train, steps=(epoch * 10, epoch * 10 + 9), times=(epoch, epoch + 1)))
    ended = case != "running"
    return RunSnapshot(
        user_namespace="www.example.org", user="ada", experiment_name="fast path", run_id=7, rank=1,
        run_dir="/runs/fast path/run_7", start_time=T0, end_time=_t(60) if ended else None,
        status={"ended": "finished", "running": "running", "failed": "failed"}[case],
        error=("ValueError", "boom") if case == "failed" else None, library_version="0.1.0",
        params=[ParamRecord("lr", 0.01), ParamRecord("folds", 3)],
        series=series,
        final_metrics=[FinalValue("loss", 0.5, "min"), FinalValue("acc", math.nan, "max", "no points")],
        contexts={train: (_t(0), _t(50)), val: (_t(10), _t(55)), test: (_t(56), _t(59)), sub: (_t(11), _t(12))},
        environment={"host": "node-1", "python": "3.11"},
        epochs=[EpochRecord(train, e, _t(e), _t(e + 1)) for e in range(3)],
    )


def _document(text: str):
    """The document ``text`` holds; NaN != NaN, so a NaN is read as a text that equals itself."""
    from prov.model import ProvDocument

    return ProvDocument.deserialize(io.StringIO(text.replace('"NaN"', '"not a number"')), format="json")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("indent", [1, None], ids=["final", "refresh"])
def test_fast_document_is_the_builders_document(case, indent):
    from prov4ml.provenance import document_json

    text = document_json(snapshot(case), indent=indent)
    expected = (FIXTURES / f"{case}.json").read_text(encoding="utf-8")
    assert _document(text) == _document(expected)
    # the same records under the same names, value for value (types and lexical forms included)
    new, old = json.loads(text), json.loads(expected)
    for kind in old.keys() | new.keys():
        if kind == "prefix":
            assert new[kind] == old[kind]
            continue
        assert {k: v for k, v in new[kind].items() if not k.startswith("_:")} == \
            {k: v for k, v in old[kind].items() if not k.startswith("_:")}, kind
        assert sorted(map(json.dumps, (v for k, v in new[kind].items() if k.startswith("_:")))) == \
            sorted(map(json.dumps, (v for k, v in old[kind].items() if k.startswith("_:")))), kind


@pytest.mark.parametrize("case", CASES)
def test_the_template_of_a_plain_series_writes_what_the_attribute_encoder_writes(case, monkeypatch):
    """Most series are written from one template (builder._plain_entity_text); every attribute written one by one
    gives the same text, byte for byte, for random values: NaN, infinities, -0.0, subnormals, huge steps, odd names."""
    import random

    from prov4ml.provenance import builder, document_json

    rng = random.Random(7)
    pool = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 1 / 3, -2.5e-300, 1e16]
    snap = snapshot(case)
    contexts = [Context.TRAINING, Context.VALIDATION, Context.TESTING, Context("probe", Context.VALIDATION)]
    for n in range(300):
        values = tuple(rng.choice(pool) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6) for _ in range(4))
        steps = (rng.randrange(-2**63, 2**63), rng.randrange(2**63))
        snap.series.append(_series(rng.choice(["loss", "acc", f"m{n}", f'q"{n}"λ%s']), rng.choice(contexts),
                                   count=rng.randrange(1, 2**40), nan_count=rng.randrange(3), values=values,
                                   steps=steps, times=(rng.uniform(0, 1e4), rng.uniform(0, 1e4))))
    assert sum(builder._plain(m) for m in snap.series) > 300
    for indent in (1, None):
        fast = document_json(snap, indent=indent)
        monkeypatch.setattr(builder, "_plain", lambda m: False)
        assert document_json(snap, indent=indent) == fast
        monkeypatch.undo()


@pytest.mark.parametrize("case", CASES)
def test_build_document_is_the_builders_document(case):
    from prov4ml.provenance import build_document

    from prov4ml.provenance import to_json

    expected = (FIXTURES / f"{case}.json").read_text(encoding="utf-8")
    assert _document(to_json(build_document(snapshot(case)))) == _document(expected)


def _write_fixtures() -> None:
    from prov4ml.provenance import build_document, to_json

    FIXTURES.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        (FIXTURES / f"{case}.json").write_text(to_json(build_document(snapshot(case))), encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    _write_fixtures()


@pytest.mark.parametrize("count", [0, 1, 2000, 2001])
def test_the_summary_written_streamed_is_summarize(tmp_path, count):
    """The summary file is written series by series, in batches of 2,000: either side of a boundary, read back."""
    import dataclasses

    from prov4ml.provenance.summary import read_summary, summarize, write_summary

    base = snapshot("ended")
    snap = dataclasses.replace(base, series=(base.series * (count // len(base.series) + 1))[:count])
    owner = {"pid": 1, "host": "node-1", "start": 2.5}
    written = read_summary(write_summary(tmp_path, snap, owner))
    assert len(written["series"]) == count
    assert written == json.loads(json.dumps(summarize(snap, owner)))


def test_the_summary_template_writes_what_the_encoder_writes(tmp_path, monkeypatch):
    """A plain series' summary entry comes from one template: byte for byte what the JSON encoder writes of its
    entry, for random values and names (NaN, infinities, -0.0, subnormals, quotes, non-ASCII, higher-is-better)."""
    import random

    from prov4ml.provenance import summary

    rng = random.Random(11)
    pool = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 1 / 3, -2.5e-300, 1e16, 1e22]
    snap = snapshot("ended")
    for n in range(400):
        values = tuple(rng.choice(pool) if rng.random() < 0.3 else rng.uniform(-1e6, 1e6) for _ in range(4))
        name = rng.choice(["loss", "val_acc", "Accuracy", f"m{n}", f'q"{n}"λ\\x', "f1_macro", "top5err", "reward"])
        location = rng.choice([None, f"metrics/{n}.csv", 'metrics/ü "q".csv'])
        snap.series.append(_series(name, rng.choice([Context.TRAINING, Context("probe", Context.VALIDATION)]),
                                   count=rng.randrange(1, 2**40), nan_count=rng.randrange(3), values=values,
                                   steps=(rng.randrange(-2**63, 2**63), rng.randrange(2**63)), location=location))
    fast = list(summary._series_texts(snap))
    assert sum(summary._plain(m) and math.isfinite(m.min) for m in snap.series) > 150
    monkeypatch.setattr(summary, "_plain", lambda m: False)
    assert list(summary._series_texts(snap)) == fast


def test_higher_is_better_is_decided_by_any_word_of_the_name():
    import random
    import re

    from prov4ml.provenance.summary import HIGHER_IS_BETTER, higher_is_better

    def by_words(name):
        return any(w in HIGHER_IS_BETTER or w.startswith("acc") for w in re.findall(r"[a-z0-9]+", name.lower()))

    rng = random.Random(3)
    parts = list(HIGHER_IS_BETTER) + ["acc", "accu", "xacc", "loss", "err", "f10", "mapk", "a", "1", "_", "/", "-",
                                      " ", "é", "İ", "ACC", "Top1"]
    names = ["".join(rng.choice(parts) for _ in range(rng.randrange(1, 5))) for _ in range(5000)]
    assert {higher_is_better(n) for n in names} == {True, False}
    for name in names:
        assert higher_is_better(name) == by_words(name), name
    assert higher_is_better("loss", "max") and not higher_is_better("accuracy", "min")


def test_a_locations_suffix_is_posixpaths_and_a_safe_name_is_left_as_quote_leaves_it():
    import posixpath
    import random
    from urllib.parse import quote

    from prov4ml.provenance import builder

    rng = random.Random(5)
    parts = [".", "..", "/", "a", "csv", ".csv", "ü", " ", "%", "~", "-", "_", "tar.gz", "x.y"]
    for _ in range(20000):
        path = "".join(rng.choice(parts) for _ in range(rng.randrange(0, 7)))
        assert builder._suffix(path) == posixpath.splitext(path)[1], path
        name = path.rpartition("/")[2]
        assert (builder._URI_SAFE.fullmatch(name) is not None) == (quote(name, safe="/-._~") == name), name
