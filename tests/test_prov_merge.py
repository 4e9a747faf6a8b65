"""A run's document read at any moment unifies with its final one (docs/prov-mapping.md, "Documents that merge").

A real training process refreshes its document (``flush()`` and the interval refresher) while this test copies
``prov_rank0.json`` from outside; each copy is merged with the final document by ``prov``'s own API
(``ProvDocument.update`` + ``unified()``), and the result must pass every check of tests/provcheck.py.
"""

import json
import os
import subprocess
import sys
import threading
import time
import warnings

import pytest
from pathlib import Path

from prov.model import ProvDocument

from prov4ml.provenance.checks import violations
from conftest import ROOT

pytest.importorskip("lxml")
pytest.importorskip("rdflib")
pytest.importorskip("jsonschema")
import provcheck  # noqa: E402  (needs the three above)

CHILD = r"""
import sys, time
import torch
import prov4ml
from prov4ml import Context

run = prov4ml.start_run("www.example.org", "merge", sys.argv[1], capture=False,
                        prov_flush_interval=0.05, flush_interval=0.1)
prov4ml.register_final_metric("val_loss", float("inf"), prov4ml.FoldOperation.MIN)
prov4ml.log_param("lr", 0.01)
model = torch.nn.Linear(2, 1)
print(run.prov_path, flush=True)
for epoch in range(3):
    prov4ml.mark_epoch(epoch, Context.TRAINING)
    for i in range(10):
        prov4ml.log_metric("loss", 1.0 / (epoch * 10 + i + 1), Context.TRAINING, step=epoch * 10 + i)
        time.sleep(0.02)  # the refresher rewrites the document meanwhile
    prov4ml.mark_epoch(epoch, Context.VALIDATION)
    prov4ml.log_metric("val_loss", 0.5 / (epoch + 1), Context.VALIDATION, step=epoch)
    prov4ml.save_model_version(model, "net", Context.TRAINING, step=epoch)
    prov4ml.flush()
    print("flushed", epoch, flush=True)
    sys.stdin.readline()  # the test copies the document now
prov4ml.log_metric("acc", 0.9, Context.TESTING, step=0)
prov4ml.end_run()
"""


def record_a_run(tmp_path):
    """(the documents copied while the child recorded, the final document's path)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "prov")], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = Path(proc.stdout.readline().strip())
    seen = {}
    done = threading.Event()

    def copy():
        try:
            text = path.read_text()  # written atomically: always whole
        except FileNotFoundError:
            return
        if "prov:endTime" not in json.dumps(json.loads(text)["activity"][run_id(text)]):
            seen.setdefault(text, len(seen))

    def poll():  # copies taken at any moment, between the refresher's rewrites
        while not done.is_set():
            copy()
            time.sleep(0.01)

    watcher = threading.Thread(target=poll)
    watcher.start()
    flushed = 0
    for line in proc.stdout:
        if line.startswith("flushed"):
            copy()
            flushed += 1
            proc.stdin.write("\n")
            proc.stdin.flush()
    done.set()
    watcher.join()
    assert proc.wait(60) == 0, proc.stderr.read()
    assert flushed == 3
    return sorted(seen, key=seen.get), path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_a_run(tmp_path_factory.mktemp("merge"))


def run_id(text):
    return next(k for k, a in json.loads(text)["activity"].items() if k.endswith(".rank0"))


def doc(text):
    return ProvDocument.deserialize(content=text, format="json")


def merged(*texts):
    d = doc(texts[0])
    for t in texts[1:]:
        d.update(doc(t))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # prov's warnings about what does not unify are failures too
        return d.unified()


def distinct(document):
    """``document`` with each statement once: two documents share most of their statements, which ``unified()``
    keeps twice when they have no identifier, and ``prov`` writes twice under one blank id, which PROV-JSON's
    schema refuses."""
    out = ProvDocument(namespaces=document.namespaces)
    kept = []
    for record in document.get_records():
        if record not in kept:
            kept.append(record)
            out.add_record(record)
    return out


def attrs_named(record, name):
    return [v for k, v in record.attributes if str(k) == name]


def test_documents_read_while_a_run_records_unify_with_the_final_one(recorded, tmp_path):
    snapshots, final_path = recorded
    final = final_path.read_text()
    assert len(snapshots) >= 3  # the three after flush(), and whatever the refresher wrote between them
    final_doc = doc(final)
    assert violations(final_doc) == []
    for i, snapshot in enumerate(snapshots):
        assert violations(doc(snapshot)) == [], i
        both = merged(snapshot, final)
        assert violations(both) == [], i
        out = tmp_path / f"merged{i}.json"
        out.write_text(distinct(both).serialize(format="json"))
        provcheck.check_all(out, tmp_path)
        # the final document's records are all there, each unified with its earlier form and not contradicted
        for rec in final_doc.get_records():
            if rec.is_element():
                (same,) = both.get_record(rec.identifier)
                if type(rec).__name__ == "ProvActivity":
                    assert (same.get_startTime(), same.get_endTime()) == (rec.get_startTime(), rec.get_endTime())
                for key in ("provml:count", "provml:last", "prov:value", "mls:hasValue"):
                    assert attrs_named(same, key) == attrs_named(rec, key), (i, rec.identifier, key)
    assert violations(merged(*snapshots, final)) == []  # all of them at once


def test_a_document_read_mid_run_has_no_end_of_what_goes_on_and_snapshots_of_what_grows(recorded):
    snapshots, final_path = recorded
    final = doc(final_path.read_text())
    mid = doc(snapshots[-1])  # after the third flush: the last epochs are still open
    ends = {str(r.identifier): r.get_endTime() for r in mid.get_records() if type(r).__name__ == "ProvActivity"}
    epochs = sorted(k for k in ends if ".epoch." in k)
    assert [k.rsplit(".", 3)[-3:] for k in epochs] == [
        ["training", "epoch", "0"], ["training", "epoch", "1"], ["training", "epoch", "2"],
        ["validation", "epoch", "0"], ["validation", "epoch", "1"], ["validation", "epoch", "2"]]
    assert [k for k in epochs if ends[k] is None] == [epochs[2], epochs[5]]  # each context's last epoch is open
    assert ends[epochs[0]] is not None and ends[epochs[3]] is not None  # the next mark ended the earlier ones
    for k, end in ends.items():
        if k.endswith((".context.training", ".context.validation")) or k.endswith(".rank0"):
            assert end is None, k
    ended = {str(dict(r.formal_attributes)[r.FORMAL_ATTRIBUTES[0]]) for r in mid.get_records() if r.get_type().localpart == "End"}
    assert ended == {k for k, end in ends.items() if end is not None} == {epochs[i] for i in (0, 1, 3, 4)}
    # the series: a snapshot with the values so far, of which the complete series is a revision
    loss = [r for r in mid.get_records() if r.is_element() and "provml:Snapshot" in map(str, r.get_asserted_types())
            and attrs_named(r, "provml:name") == ["loss"]]
    (snap,) = loss
    assert int(attrs_named(snap, "provml:count")[0].value) == 30
    (whole,) = final.get_record(snap.identifier.namespace[snap.identifier.localpart.rsplit(".snapshot.", 1)[0]])
    assert int(attrs_named(whole, "provml:count")[0].value) == 30 and "provml:Metric" in map(str, whole.get_asserted_types())
    revisions = [r for r in mid.get_records() if r.get_type().localpart == "Derivation"
                 and dict(r.formal_attributes)[r.FORMAL_ATTRIBUTES[1]] == snap.identifier]
    assert [str(dict(r.formal_attributes)[r.FORMAL_ATTRIBUTES[0]]) for r in revisions] == [str(whole.identifier)]
    assert not final.get_record(snap.identifier)  # the final document names no snapshot
