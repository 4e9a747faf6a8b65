"""The point journal: its format, the valid-record rule, segments, threads, and its consumers."""

import os
import signal
import struct
import threading

import pytest
import torch

import prov4ml
from prov4ml.metrics import _sink
from prov4ml.metrics.journal import (
    FIRST_SLOT, HEADER, MAGIC, RECORD, SEGMENT_SLOTS, SLOT, VOID, Journal, JournalReader, segment_path,
)
from killing import prov_json, read_rows, series_count


def test_a_record_counts_only_with_its_commit_word(tmp_path):
    j = Journal(str(tmp_path))
    j.add_series({"sid": 0, "name": "x", "context": "training", "kind": "metric", "unit": None, "file": "x.csv"})
    for k in range(5):
        j.append(0, k, k * 1.5, 100.0 + k)
    mm = j.current[0]
    # a record torn by a kill: payload written, commit word not yet
    RECORD.pack_into(mm, (FIRST_SLOT + 5) * SLOT, 5, 7.5, 105.0, 0, 0)
    # a commit word from another slot (a stale file) does not count either
    RECORD.pack_into(mm, (FIRST_SLOT + 6) * SLOT, 6, 9.0, 106.0, 0, FIRST_SLOT + 99)
    got = JournalReader(str(tmp_path)).read(final=True)
    assert got == [(0, k, k * 1.5, 100.0 + k) for k in range(5)]
    assert HEADER.unpack_from(mm, 0) == (MAGIC, 1, SLOT, SEGMENT_SLOTS)
    j.close()


def test_a_live_reader_waits_at_a_hole_then_skips_it_once_stale(tmp_path):
    j = Journal(str(tmp_path))
    mm, slots = j.current
    first = next(slots)  # claimed, not yet written (a thread between claim and pack)
    j.append(0, 1, 1.0, 1.0)
    reader = JournalReader(str(tmp_path), stale=5.0)
    assert reader.read(now=0.0) == []
    assert reader.read(now=4.0) == []
    assert reader.read(now=6.0) == [(0, 1, 1.0, 1.0)]
    j.void(mm, first)
    j.close()


def test_void_slots_are_skipped(tmp_path):
    j = Journal(str(tmp_path))
    j.append(0, 0, 0.5, 1.0)
    j.mark()
    j.append(0, 1, 1.5, 2.0)
    assert JournalReader(str(tmp_path)).read() == [(0, 0, 0.5, 1.0), (0, 1, 1.5, 2.0)]
    j.close()


def test_int64_steps_come_back_exact(start):
    run = start()
    steps = [2**53 + 1, 2**63 - 1, -(2**63), 0, -1]
    for s in steps:
        prov4ml.log_metric("x", 1.0, "training", step=s)
    with pytest.raises(prov4ml.InvalidValueError, match="64 bits"):
        prov4ml.log_metric("x", 1.0, "training", step=2**63)
    with pytest.raises(prov4ml.InvalidValueError, match="64 bits"):
        prov4ml.log_metric("x", 1.0, "training", step=10**400)
    prov4ml.end_run()
    rows = read_rows(run.run_dir / "metrics" / "x_training_rank0.csv")
    assert [r[0] for r in rows] == steps


def test_points_cross_segments(start):
    run = start(save_after_n_logs=10_000)
    n = 2 * SEGMENT_SLOTS + 17
    for i in range(n):
        prov4ml.log_metric("x", float(i), "training", step=i)
    prov4ml.flush()
    assert os.path.exists(segment_path(str(run.journal_dir), 2))
    prov4ml.end_run()
    rows = read_rows(run.run_dir / "metrics" / "x_training_rank0.csv")
    assert rows == [(i, float(i)) for i in range(n)]


def test_threads_never_share_a_slot(start):
    run = start()

    def work(k):
        for i in range(40_000):
            prov4ml.log_metric(f"t{k}", float(i), "training", step=i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    prov4ml.end_run()
    for k in range(4):
        assert read_rows(run.run_dir / "metrics" / f"t{k}_training_rank0.csv") == [(i, float(i)) for i in range(40_000)]


@pytest.mark.parametrize("writer_process", [True, False])
def test_the_document_claims_exactly_what_the_files_hold(start, writer_process):
    run = start(writer_process=writer_process)
    for i in range(2500):
        prov4ml.log_metric("loss", i * 0.25, "training", step=i)
    prov4ml.flush()
    rows = read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv")
    assert len(rows) == 2500 == series_count(prov_json(run.run_dir), "loss")
    prov4ml.log_metric("loss", 1.0, "training", step=2500)
    prov4ml.end_run()
    assert series_count(prov_json(run.run_dir), "loss") == 2501
    assert not (run.run_dir / ".prov4ml").exists()


def test_a_dead_sink_is_replaced_and_the_files_rebuilt(start):
    run = start()
    for i in range(1000):
        prov4ml.log_metric("loss", float(i), "training", step=i)
    prov4ml.flush()
    os.kill(run._refresher._out._proc.pid, signal.SIGKILL)
    run._refresher._out._proc.wait()
    for i in range(1000, 2000):
        prov4ml.log_metric("loss", float(i), "training", step=i)
    prov4ml.end_run()  # warns about the sink, raises nothing
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(i, float(i)) for i in range(2000)]
    data = prov_json(run.run_dir)
    assert series_count(data, "loss") == 2000
    run_attrs = data["activity"]["ex:exp.run_0.rank0"]
    assert "metric sink process failed" in run_attrs["provml:writer_errors"]


def test_cpu_tensors_are_journaled_at_the_call(start):
    run = start()
    prov4ml.log_metric("loss", torch.tensor(0.5, requires_grad=True) * 2, "training", step=0)
    prov4ml.log_metric("loss", torch.tensor([3], dtype=torch.int64), "training", step=1)
    prov4ml.log_metric("loss", torch.tensor(True), "training", step=2)
    for bad, why in [
        (torch.empty(1, device="meta"), "meta"),
        (torch.ones(2), "shape"),
        (torch.tensor([1.0]).to_sparse(), "sparse"),
        (torch.tensor(1 + 2j), "complex"),
    ]:
        with pytest.raises(prov4ml.InvalidValueError, match=why):
            prov4ml.log_metric("loss", bad, "training")
    # journaled at once: visible to a reader without any hand-over
    records = JournalReader(str(run.journal_dir)).read()
    assert [(s, v) for _, s, v, _ in records] == [(0, 1.0), (1, 3.0), (2, 1.0)]
    prov4ml.end_run()


def test_the_consumer_cuts_a_torn_row_and_keeps_whole_rows(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"step,value,time\n0,0.5,1.000\n1,0.2")  # torn by a kill mid-write
    fh = _sink.CsvFile(str(path), b"step,value,time\n")
    fh.open()
    fh.write(b"1,0.25,2.000\n")
    fh.close()
    assert path.read_bytes() == b"step,value,time\n0,0.5,1.000\n1,0.25,2.000\n"
    fresh = _sink.CsvFile(str(tmp_path / "new.csv"), b"step,value,time\n")  # a new file: created, the header first
    fresh.open()
    fresh.write(b"0,1.5,3.000\n")
    fresh.close()
    assert (tmp_path / "new.csv").read_bytes() == b"step,value,time\n0,1.5,3.000\n"


def test_recover_rebuilds_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd
    from killing import Child, wait_for_sinks

    body = ('run = prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False, metrics_file_type="parquet")\n'
            "for i in range(3000):\n    prov4ml.log_metric('loss', i * 0.5, 'training', step=i)\n    tell(i + 1)\nflag(1)\ntime.sleep(600)\n")
    child = Child(tmp_path, body)
    child.wait_flag(1)
    child.kill()
    d = child.run_dir()
    wait_for_sinks(d)
    prov4ml.recover(d)
    df = pd.read_parquet(d / "metrics" / "loss_training_rank0.parquet")
    assert df["step"].tolist() == list(range(3000)) and df["value"].tolist() == [i * 0.5 for i in range(3000)]
    assert not (d / "metrics" / "loss_training_rank0.parquet.csv").exists()


def test_journal_records_are_32_bytes():
    assert RECORD.size == SLOT == 32 and VOID == 0xFFFFFFFF
    assert struct.calcsize("<8sIII") * 2 <= FIRST_SLOT * SLOT


def test_accelerator_tensors_wait_for_one_batch_per_hand_over(start, monkeypatch):
    """No GPU here: CPU tensors stand in for accelerator ones by taking the path a CUDA tensor takes."""
    from prov4ml import _values
    from prov4ml.metrics import recorder

    monkeypatch.setattr(recorder, "_TENSOR", [type(None)])  # off the CPU fast path
    real = _values._tensor_value
    monkeypatch.setattr(_values, "_tensor_value", lambda value, name: value.detach() if value.dim() == 0 else real(value, name))
    run = start(save_after_n_logs=100)
    for i in range(250):
        prov4ml.log_metric("loss", torch.tensor(i * 0.5), "training", step=i)
        if i == 98:  # nothing synchronised before the hand-over
            assert JournalReader(str(run.journal_dir)).read() == []
    records = JournalReader(str(run.journal_dir)).read()
    assert [(s, v) for _, s, v, _ in records] == [(i, i * 0.5) for i in range(200)]  # two hand-overs, in order
    prov4ml.end_run()
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(i, i * 0.5) for i in range(250)]


def test_parquet_reads_back_with_another_separator(start):
    pytest.importorskip("pyarrow")
    import pandas as pd

    run = start(metrics_file_type="parquet", csv_separator=";")
    for i in range(3):
        prov4ml.log_metric("loss", i + 0.5, "training", step=i)
    prov4ml.end_run()
    df = pd.read_parquet(run.run_dir / "metrics" / "loss_training_rank0.parquet")
    assert list(df.columns) == ["step", "value", "time"] and df["value"].tolist() == [0.5, 1.5, 2.5]


def test_series_lines_are_read_on_from_where_the_last_read_stopped(tmp_path):
    from prov4ml.metrics.journal import SeriesLines

    path = tmp_path / "series.jsonl"
    path.write_bytes(b'{"sid": 0, "name": "a"}\n' + b"\0" * 64)  # the reserved tail is zeros
    lines = SeriesLines(str(tmp_path))
    assert lines.read_new() == {0: {"sid": 0, "name": "a"}}
    assert lines.read_new() == {}
    with open(path, "r+b") as fh:  # a line half written, then whole, past a line not yet written (a hole)
        fh.seek(24)
        fh.write(b'{"sid": 1, "na')
    assert lines.read_new() == {}
    with open(path, "r+b") as fh:
        fh.seek(38)
        fh.write(b'me": "b"}\n' + b"\0" * 10 + b'{"sid": 3}\n')
    assert lines.read_new() == {1: {"sid": 1, "name": "b"}}  # the line after the hole waits for it
    with open(path, "r+b") as fh:
        fh.seek(48)
        fh.write(b'{"sid":2}\n')  # the hole filled (the writer writes its lines in order)
    assert lines.read_new() == {2: {"sid": 2}, 3: {"sid": 3}}
    with open(path, "r+b") as fh:  # a line that is not JSON (a torn disk block) costs that line alone
        fh.seek(69)
        fh.write(b'{"sid": 4}\n{"sid": 5, ]\n{"sid": 6}\n7\n{"sid": "8"}\n[9]\n{"sid": 10}\n')
    assert lines.read_new() == {4: {"sid": 4}, 6: {"sid": 6}, 10: {"sid": 10}}
    with open(path, "r+b") as fh:  # JSON, but not a series: skipped alone too
        fh.seek(69 + 66)
        fh.write(b'7\n{"sid": "8"}\n{"sid": 11}\n')
    assert lines.read_new() == {11: {"sid": 11}}


def test_series_lines_longer_than_a_read_part_are_read_whole(tmp_path):
    from prov4ml.metrics import journal

    j = Journal(str(tmp_path))
    lines = journal.SeriesLines(str(tmp_path))
    metas = [{"sid": k, "name": f"a rather long metric name number {k:06d}", "context": "training"} for k in range(9000)]
    for meta in metas[:5000]:  # several parts of journal._LINES_READ bytes, a line across each border
        j.add_series(meta)
    assert os.path.getsize(tmp_path / "series.jsonl") > 2 * journal._LINES_READ
    assert lines.read_new() == {m["sid"]: m for m in metas[:5000]}
    for meta in metas[5000:]:
        j.add_series(meta)
    assert lines.read_new() == {m["sid"]: m for m in metas[5000:]}
    assert lines.read_new() == {}
    j.close()
