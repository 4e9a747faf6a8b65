"""During a run the sink process writes the PROV-JSON; the training process only saves its records.

The promise: between ``start_run`` and ``end_run`` the training process builds
no document (the refresh costs it a fraction of a millisecond), yet the
document on disk is as fresh as before: after a flush it describes exactly
the rows on disk, and a new record is in it within the refresh interval. When
the sink cannot write documents, the run writes them itself and says so.
"""

import time
from pathlib import Path

import pytest

import prov4ml
from killing import prov_json, read_rows, series_count
from prov4ml import provenance


@pytest.fixture
def builds(monkeypatch):
    """Every document the test process builds (the sink process's builds are not counted)."""
    calls = []
    real = provenance.write_document

    def counting(path, snapshot, *args, **kwargs):
        calls.append(snapshot.status)
        return real(path, snapshot, *args, **kwargs)

    monkeypatch.setattr(provenance, "write_document", counting)
    return calls


def start(tmp_path, **kw):
    return prov4ml.start_run("www.example.org", "live", str(tmp_path / "prov"), capture=False,
                             prov_flush_interval=0.05, flush_interval=0.2, **kw)


def test_the_training_process_builds_no_document_between_start_and_end(tmp_path, builds):
    run = start(tmp_path)
    assert run._refresher.documents_in_sink
    assert builds == ["running"]  # the first document, inside start_run
    for i in range(5000):
        prov4ml.log_metric("loss", i * 0.5, "training", step=i)
    prov4ml.log_param("lr", 0.01)
    prov4ml.flush()
    data = prov_json(run.run_dir)
    csv = run.run_dir / "metrics" / "loss_training_rank0.csv"
    assert series_count(data, "loss") == len(read_rows(csv)) == 5000
    assert any(k.endswith(".param.lr") for k in data["entity"])
    for i in range(5000, 7000):
        prov4ml.log_metric("loss", i * 0.5, "training", step=i)
    time.sleep(1.0)  # the periodic refreshes, without a flush
    assert series_count(prov_json(run.run_dir), "loss") == 7000
    assert builds == ["running"]
    prov4ml.end_run()
    assert builds == ["running", "finished"]  # the final document is the run's own
    assert series_count(prov_json(run.run_dir), "loss") == 7000


def test_a_new_record_reaches_the_sinks_document_within_the_interval(tmp_path):
    run = start(tmp_path)
    prov4ml.log_metric("loss", 1.0, "training", step=0)
    prov4ml.log_param("batch_size", 64)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(k.endswith(".param.batch_size") for k in prov_json(run.run_dir)["entity"]):
            break
        time.sleep(0.02)
    else:
        pytest.fail("the parameter did not reach the document within 5 s")
    prov4ml.end_run()


def test_when_the_sink_cannot_write_documents_the_run_writes_them(tmp_path, builds):
    run = start(tmp_path)
    prov4ml.log_param("lr", 0.01)
    prov4ml.flush()
    logged = 0
    for attempt in range(50):  # the run saves its records again while they settle: corrupt them until the sink reads them
        (run.journal_dir / "state.pickle").write_bytes(b"not a pickle")
        for _ in range(10):
            prov4ml.log_metric("loss", float(logged), "training", step=logged)
            logged += 1
        prov4ml.flush()
        if not run._refresher.documents_in_sink:
            break
    assert not run._refresher.documents_in_sink
    for _ in range(300 - logged):
        prov4ml.log_metric("loss", float(logged), "training", step=logged)
        logged += 1
    prov4ml.flush()
    assert any("could not write the PROV-JSON" in e for e in run._refresher.errors)
    assert series_count(prov_json(run.run_dir), "loss") == 300
    assert builds.count("running") >= 2  # the run's own refresh wrote it
    prov4ml.end_run()
    data = prov_json(run.run_dir)
    assert series_count(data, "loss") == 300
    assert "could not write the PROV-JSON" in data["activity"]["ex:live.run_0.rank0"]["provml:writer_errors"]


def test_without_the_sink_process_the_run_writes_its_documents(tmp_path, builds):
    run = start(tmp_path, writer_process=False)
    assert not run._refresher.documents_in_sink
    for i in range(300):
        prov4ml.log_metric("loss", float(i), "training", step=i)
    prov4ml.flush()
    assert series_count(prov_json(run.run_dir), "loss") == 300
    prov4ml.end_run()


def test_a_flush_catches_up_with_a_sink_that_is_behind(tmp_path):
    run = start(tmp_path)
    n = 1_500_000  # logged faster than the sink writes rows: it is seconds behind at the flush
    for i in range(n):
        prov4ml.log_metric("loss", i * 0.5, "training", step=i)
    prov4ml.flush()
    csv = run.run_dir / "metrics" / "loss_training_rank0.csv"
    assert series_count(prov_json(run.run_dir), "loss") == n
    assert len(read_rows(csv)) == n
    prov4ml.end_run()


def test_when_the_sink_dies_its_rows_are_kept_and_never_over_claimed(tmp_path):
    import os
    import signal

    run = start(tmp_path)
    csv = run.run_dir / "metrics" / "loss_training_rank0.csv"
    for i in range(200_000):
        prov4ml.log_metric("loss", i * 0.5, "training", step=i)
    prov4ml.flush()
    assert len(read_rows(csv)) == 200_000
    pid = int((run.journal_dir / "sink.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    sizes = [csv.stat().st_size]
    for i in range(200_000, 400_000):
        prov4ml.log_metric("loss", i * 0.5, "training", step=i)
        if i % 20_000 == 0:
            sizes.append(csv.stat().st_size)
            data = prov_json(run.run_dir)
            assert series_count(data, "loss") <= len(read_rows(csv))  # the document never claims a missing row
    prov4ml.flush()
    sizes.append(csv.stat().st_size)
    assert sizes == sorted(sizes)  # the run's own thread continued the file: it never shrank
    assert read_rows(csv) == [(i, i * 0.5) for i in range(400_000)]
    assert series_count(prov_json(run.run_dir), "loss") == 400_000
    assert any("sink process failed" in e for e in run._refresher.errors)
    prov4ml.end_run()
    assert series_count(prov_json(run.run_dir), "loss") == 400_000


def test_the_host_is_known_from_the_start_without_the_capture(tmp_path):
    import socket

    run = start(tmp_path)  # capture=False: only what start_run knows
    hosts = [a["prov:label"] for a in prov_json(run.run_dir)["agent"].values() if "provml:Host" in str(a.get("prov:type"))]
    assert hosts == [socket.gethostname()]
    prov4ml.end_run()


WRITES = []


def _writer(journal_dir, run_dir, stats, check=None):
    """A document writer for the sink's ``Documents``: it checks between its 'batches' as write_live does."""
    for _ in range(3):
        if check is not None:
            check()
    WRITES.append(check is None)


def test_a_waiting_request_drops_the_live_document_and_a_full_one_is_written(tmp_path):
    import os

    from prov4ml.metrics import _sink

    (tmp_path / "state.pickle").write_bytes(b"")  # what the key of a document is made of
    read, write = os.pipe()
    consumer = _sink.Consumer(str(tmp_path), str(tmp_path))
    docs = _sink.Documents(str(tmp_path), str(tmp_path), [str(Path(__file__).parent)], "test_live_document:_writer",
                           waiting=_sink._Pipe(read).waiting)
    WRITES.clear()
    assert docs.update(consumer) and WRITES == [False]  # nothing waits: written
    (tmp_path / "state.pickle").write_bytes(b"changed")
    docs.next_at = 0.0
    os.write(write, b"C")  # the run's end_run asks while the sink writes
    assert docs.update(consumer) and WRITES == [False]  # dropped unwritten, the sink still writes documents
    assert docs.written is not None and not docs.failed
    assert docs.update(consumer, full=True) and WRITES == [False, True]  # a flush or the end: never dropped
    docs.closing = True
    (tmp_path / "state.pickle").write_bytes(b"changed again")
    docs.next_at = 0.0
    os.read(read, 1)
    assert docs.update(consumer) and WRITES == [False, True]  # closing: no more live documents
    os.close(read)
    os.close(write)
    consumer.close()


def test_live_documents_are_spaced_by_their_own_cost(tmp_path):
    from prov4ml.metrics import _sink

    (tmp_path / "state.pickle").write_bytes(b"")
    consumer = _sink.Consumer(str(tmp_path), str(tmp_path))
    docs = _sink.Documents(str(tmp_path), str(tmp_path), [str(Path(__file__).parent)], "test_live_document:_writer")
    WRITES.clear()
    assert docs.update(consumer) and WRITES == [False]
    docs.next_at = time.monotonic() + 60  # as after a document that took 15 s
    (tmp_path / "state.pickle").write_bytes(b"changed")
    assert docs.update(consumer) and WRITES == [False]  # too soon: skipped, reported as written by the sink
    assert docs.update(consumer, full=True) and WRITES == [False, True]  # a flush waits for no spacing
    consumer.close()


def test_a_sink_killed_after_its_final_report_leaves_files_and_document_that_agree(tmp_path, monkeypatch):
    """end_run writes its document while the sink writes the files' last rows; the sink killed in between (a
    real SIGKILL, timed by wrapping close) is replaced by the run's thread, and the document says what the files hold."""
    import os
    import signal

    from prov4ml.metrics.outputs import ProcessOutput

    real_close = ProcessOutput.close

    def close_then_kill(self, timeout=60.0):
        report = real_close(self, timeout)
        os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait(10)
        return report

    monkeypatch.setattr(ProcessOutput, "close", close_then_kill)
    run = start(tmp_path)
    for i in range(300_000):
        prov4ml.log_metric("loss", i * 0.5, "training", step=i)
        prov4ml.log_metric("acc", float(i), "validation", step=i)
    prov4ml.end_run()
    data = prov_json(run.run_dir)
    for key, context, value in (("loss", "training", 0.5), ("acc", "validation", 1.0)):
        rows = read_rows(run.run_dir / "metrics" / f"{key}_{context}_rank0.csv")
        assert rows == [(i, i * value) for i in range(300_000)]
        assert series_count(data, key, context) == len(rows)
    assert any("sink process failed" in e for e in run._refresher.errors)
    assert not (run.run_dir / ".prov4ml").exists()  # complete: the run's thread finished the files


class _Pressed:
    """A consumer of many series whose files are left to make (the sink's ``Consumer.pressed``)."""

    def __init__(self):
        self.stats, self.pressing = {}, True

    def pressed(self):
        return self.pressing

    def summaries(self):
        return {}


def test_with_many_series_a_live_document_waits_for_the_files_at_most_its_defer(tmp_path):
    from prov4ml.metrics import _sink

    (tmp_path / "state.pickle").write_bytes(b"")
    consumer = _Pressed()
    docs = _sink.Documents(str(tmp_path), str(tmp_path), [str(Path(__file__).parent)], "test_live_document:_writer",
                           defer=3.0)
    WRITES.clear()
    assert docs.update(consumer) and WRITES == []  # files to make: the document waits, the sink still writes them
    docs.written_at -= 3.0  # as if the last one were 3 s old
    assert docs.update(consumer) and WRITES == [False]  # no longer
    (tmp_path / "state.pickle").write_bytes(b"changed")
    assert docs.update(consumer) and WRITES == [False]  # pressed again, and the last one is new
    assert docs.update(consumer, full=True) and WRITES == [False, True]  # a flush never waits
    (tmp_path / "state.pickle").write_bytes(b"changed again")
    docs.next_at, consumer.pressing = 0.0, False
    assert docs.update(consumer) and WRITES == [False, True, False]  # the files made: at once
