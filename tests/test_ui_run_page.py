"""The run page (datasets, artifact previews, model versions and lineage, environment, errors), graphs that
fit a screen, and the UI over a bucket: real runs, real Graphviz, a real S3 server, a real headless Chromium."""

import csv
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import prov4ml
from prov4ml import prov2dot
from prov4ml.runs import read_run
from prov4ml.ui import serve

from conftest import ROOT
from s3_server import s3, server  # noqa: F401  (the fixtures)
from test_ui import _js_wait

CSV_ROWS = [["epoch", "loss"], ["0", "1.5"], ["1", "0.75"], ["2", "0.5"]]
JSON_DATA = {"lr": 0.01, "layers": [8, 4], "note": "<b>not markup</b>"}


def _png(path, size=(24, 16)):
    from PIL import Image

    Image.new("RGB", size, (200, 30, 30)).save(path)


def _inputs(folder):
    """The files the producer logs: an image, a CSV, a JSON, a text file, and a data file (a dataset)."""
    folder.mkdir(parents=True, exist_ok=True)
    _png(folder / "confusion.png")
    with open(folder / "predictions.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(CSV_ROWS)
    (folder / "config.json").write_text(json.dumps(JSON_DATA))
    (folder / "train.log").write_text("epoch 0 <done>\nepoch 1 done\n")
    (folder / "data.bin").write_bytes(bytes(range(256)) * 64)
    return folder


def _producer(save_dir, files):
    import torch

    with prov4ml.run("www.example.org", "train", str(save_dir), capture=False) as run:
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(40, 3)), batch_size=8)
        prov4ml.log_dataset(loader, "mnist-train")
        prov4ml.log_dataset(files / "data.bin", "raw-bytes")
        for name in ("confusion.png", "predictions.csv", "config.json", "train.log"):
            prov4ml.log_artifact(str(files / name), prov4ml.Context.TRAINING)
        net = torch.nn.Linear(3, 2)
        for epoch in range(2):
            prov4ml.log_metric("loss", 1.0 / (epoch + 1), prov4ml.Context.TRAINING, step=epoch)
            with torch.no_grad():
                net.weight.add_(1.0)
            prov4ml.save_model_version(net, "net", prov4ml.Context.TRAINING, step=epoch)
    return run.run_dir


def _consumer(save_dir, checkpoint):
    """A run in another experiment that evaluates the producer's last version, then fails (its environment captured)."""
    with pytest.raises(ValueError):
        with prov4ml.run("www.example.org", "evaluate", str(save_dir)):
            prov4ml.log_artifact(str(checkpoint), prov4ml.Context.EVALUATION, is_input=True)
            raise ValueError("the batch had no labels")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runpage")
    save_dir = tmp / "prov"
    producer = _producer(save_dir, _inputs(tmp / "files"))
    versions = [a for a in read_run(producer).artifacts if a["kind"] == "model_version"]
    _consumer(save_dir, producer / versions[-1]["location"])
    ui = serve(save_dir, port=0)
    yield save_dir, producer, versions, ui
    ui.shutdown()
    ui.server_close()


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.read()


def test_the_run_page_shows_datasets_previews_versions_and_lineage(browser, runs):
    from selenium.webdriver.common.by import By

    save_dir, producer, versions, ui = runs
    d = browser
    d.get(ui.url + "run/train/run_0")
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r for r in d.find_elements(By.CSS_SELECTOR, "#datasets-table tbody tr")}
    headers = [th.text for th in d.find_elements(By.CSS_SELECTOR, "#datasets-table thead th")]
    assert set(rows) == {"mnist-train", "raw-bytes"}
    cell = lambda label, col: rows[label].find_elements(By.TAG_NAME, "td")[headers.index(col)].text  # noqa: E731
    assert cell("mnist-train", "samples") == "40" and cell("mnist-train", "batch_size") == "8"
    assert cell("raw-bytes", "bytes") == str(256 * 64)
    doc = read_run(producer).datasets
    raw = next(x for x in doc if x["label"] == "raw-bytes")
    assert cell("raw-bytes", "sampled digest") == raw["digest"][:12]

    # previews: the image loaded, the CSV's rows, the JSON pretty-printed and escaped, the log as text
    img = "document.querySelector('figure.preview[data-kind=image] img')"
    assert _js_wait(d, f"const i = {img}; return i && i.complete && i.naturalWidth", what="the image") == 24
    csv_rows = [[td.text for td in r.find_elements(By.TAG_NAME, "td")]
                for r in d.find_elements(By.CSS_SELECTOR, "figure.preview[data-kind=csv] tbody tr")]
    assert csv_rows == CSV_ROWS[1:]
    shown = d.find_element(By.CSS_SELECTOR, "figure.preview[data-kind=json] pre").text
    assert json.loads(shown) == JSON_DATA and shown == json.dumps(JSON_DATA, indent=2, ensure_ascii=False)
    assert d.execute_script("return document.querySelectorAll('figure.preview b').length") == 0  # escaped
    assert d.find_element(By.CSS_SELECTOR, "figure.preview[data-kind=text] pre").text == "epoch 0 <done>\nepoch 1 done"
    artifact_cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")]
                      for r in d.find_elements(By.CSS_SELECTOR, "#artifacts-table tbody tr")]
    assert artifact_cells and all("nan" not in row for row in artifact_cells)

    # model versions over time, and the run that used the last one
    vrows = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in d.find_elements(By.CSS_SELECTOR, "#versions-table tbody tr")]
    assert [(r[0], r[1], r[2], r[6], r[7]) for r in vrows] == [
        ("net", str(v["version"]), str(v["step"]), str(v["size_bytes"]), v["sha256"][:12]) for v in versions]
    assert [r[9] for r in vrows] == ["", "evaluate/run_0"]
    d.find_element(By.LINK_TEXT, "evaluate/run_0").click()
    assert d.find_element(By.CSS_SELECTOR, "h2#errors + p.error").text == "ValueError: the batch had no labels"
    upstream = d.find_element(By.ID, "lineage-upstream").text
    assert "train/run_0" in upstream and versions[-1]["sha256"][:12] in upstream
    assert d.find_element(By.ID, "run-status").text == "failed"
    env = {r.find_element(By.TAG_NAME, "th").text: r.find_element(By.TAG_NAME, "td").text
           for r in d.find_elements(By.CSS_SELECTOR, "h2#environment + table tr")}
    assert env["gpu"] == "not available" and env["python"] == ".".join(map(str, sys.version_info[:3]))


def test_a_preview_is_bounded_and_a_file_outside_the_run_is_refused(runs, tmp_path):
    from prov4ml.ui.previews import TEXT_BYTES, preview_html

    big = tmp_path / "big.log"
    big.write_text("x" * (TEXT_BYTES * 3))
    asked = []

    def read(n):
        asked.append(n)
        with open(big, "rb") as fh:
            return fh.read(n)

    shown = re.search(r"<pre[^>]*>(.*?)</pre>", preview_html(big.name, "/files/x", read), re.S).group(1)
    assert len(shown) == TEXT_BYTES and asked == [TEXT_BYTES + 1]  # one byte past the head: "there is more"
    _save_dir, _producer, _versions, ui = runs
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(ui.url + "files/train/run_0?path=../../evaluate/run_0/prov_rank0.json")
    assert err.value.code == 404


def test_show_and_the_report_list_datasets_with_label_and_size(runs, capsys, tmp_path):
    import prov4ml.analysis
    from prov4ml.cli import main

    _save_dir, producer, _versions, _ui = runs
    assert main(["show", str(producer)]) == 0
    section = capsys.readouterr().out.split("\ndatasets\n")[1].split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line.split() for line in section[1:] if line.strip() and not set(line) <= set("-─ ")}
    assert section[0].split()[:4] == ["label", "rank", "samples", "bytes"]
    assert rows["mnist-train"][2] == "40" and rows["raw-bytes"][2] == str(256 * 64)  # no samples: bytes come next
    report = prov4ml.analysis.html_report(producer, tmp_path / "report.html")
    table = Path(report).read_text().split("<h2>Datasets</h2>")[1].split("<h2>")[0]
    assert "mnist-train" in table and ">40<" in table and "raw-bytes" in table and f">{256 * 64}<" in table


# ------------------------------------------------------------------ graphs
def _epochs_run(save_dir, epochs):
    """The quickstart's shape: parameters, two datasets, three series, a model version per epoch."""
    import torch

    with prov4ml.run("www.example.org", f"e{epochs}", str(save_dir), capture=False) as run:
        prov4ml.log_params({"epochs": epochs, "batch_size": 32, "hidden": 32, "lr": 0.01, "seed": 0})
        data = torch.utils.data.TensorDataset(torch.zeros(64, 8))
        prov4ml.log_dataset(torch.utils.data.DataLoader(data, batch_size=32), "train")
        prov4ml.log_dataset(torch.utils.data.DataLoader(data, batch_size=64), "validation")
        net = torch.nn.Linear(8, 1)
        for epoch in range(epochs):
            prov4ml.log_metric("loss", 1.0 / (epoch + 1), prov4ml.Context.TRAINING, step=epoch)
            prov4ml.log_metric("val_loss", 1.0 / (epoch + 2), prov4ml.Context.VALIDATION, step=epoch)
            prov4ml.save_model_version(net, "regressor", prov4ml.Context.TRAINING, step=epoch)
    return run.prov_path


def _svg_size(dot_text):
    svg = subprocess.run(["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, check=True, timeout=120).stdout
    width, height = (float(v) for v in re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    nodes = svg.count('class="node"')
    return width, height, nodes, svg


@pytest.mark.parametrize("attributes", [True, False])
def test_graphs_at_3_and_100_epochs_fit_a_screen_and_fold_model_versions(tmp_path_factory, attributes):
    from prov.model import ProvDocument

    save_dir = tmp_path_factory.getbasetemp() / "graphs"
    sizes = {}
    for epochs in (3, 100):
        path = save_dir / f"e{epochs}" / "run_0" / "prov_rank0.json"
        if not path.exists():
            _epochs_run(save_dir, epochs)
        doc = ProvDocument.deserialize(str(path))
        width, height, nodes, svg = _svg_size(prov2dot.prov_to_dot(doc, show_attributes=attributes).to_string())
        assert 0.5 <= width / height <= 2.0, f"{epochs} epochs: {width:.0f}x{height:.0f} pt is not screen-like"
        assert f"model versions ×{epochs}" in svg
        sizes[epochs] = nodes
        _w, _h, full_nodes, full = _svg_size(prov2dot.prov_to_dot(doc, show_attributes=attributes, fold=False).to_string())
        assert "regressor v0 (step 0)" in full and "model versions ×" not in full
        assert full_nodes > nodes
    assert sizes[3] == sizes[100]  # the epochs' versions are one node, whatever their number


def test_prov4ml_graph_full_flag_draws_every_version(tmp_path):
    prov_json = _epochs_run(tmp_path / "prov", 3)
    for flags, expect in (([], "model versions ×3"), (["--full"], "regressor v2 (step 2)")):
        out = tmp_path / f"g{len(flags)}.dot"
        done = subprocess.run([sys.executable, "-m", "prov4ml", "graph", str(prov_json), "-o", str(out), *flags],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert expect in out.read_text()


# ------------------------------------------------------------------ object storage
def test_prov4ml_ui_serves_runs_from_a_bucket(s3, tmp_path, monkeypatch):  # noqa: F811
    url, fs = s3
    files = _inputs(tmp_path / "files")
    (files / "weights.bin").write_bytes(os.urandom(4096))
    with prov4ml.run("www.example.org", "remote", url, capture=False):
        prov4ml.log_dataset(files / "data.bin", "raw-bytes")
        prov4ml.log_artifact(str(files / "predictions.csv"), prov4ml.Context.TRAINING)
        prov4ml.log_artifact(str(files / "weights.bin"), prov4ml.Context.TRAINING)
        prov4ml.log_metric("loss", 0.5, prov4ml.Context.TRAINING, step=0)
    staging = tmp_path / "another-host"  # the UI runs where nothing was recorded
    port = str(__import__("s3_server")._free_port())
    proc = subprocess.Popen([sys.executable, "-m", "prov4ml", "ui", url, "--port", port],
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(staging)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                listing = _get(base).decode()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "no answer"
                time.sleep(0.2)
        assert 'href="/run/remote/run_0"' in listing
        page = _get(base + "run/remote/run_0").decode()
        assert "raw-bytes" in page and f"{url}/remote/run_0" in page
        assert "<td>0.75</td>" in page  # the CSV preview, its file fetched for the page
        local = next(staging.rglob("remote/run_0"))
        weights = next(p for p in json.loads(_get(base + "api/runs"))[0:1])  # the API lists it too
        assert weights["key"] == "remote/run_0" and weights["last"] == {"loss/training": 0.5}
        assert not list(local.rglob("weights.bin")), "an artifact was copied before a page asked for it"
        assert not list(local.rglob("predictions.csv")), "a preview downloaded its whole file"
        body = _get(base + "files/remote/run_0?path=artifacts/weights.bin")
        assert body == (files / "weights.bin").read_bytes()
        assert _get(base + "experiment/remote").startswith(b"<!DOCTYPE html>")
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_preview_of_a_run_in_a_bucket_reads_only_its_head(s3, tmp_path, monkeypatch):  # noqa: F811
    """A 21 MB log in the bucket: its preview is its first 16 KiB, fetched by one ranged read; nothing
    of it is staged on the UI's host, and the file link still serves every byte."""
    import prov4ml.storage.remote as remote
    from prov4ml.ui.previews import TEXT_BYTES
    from prov4ml.ui.run_page import run_page
    from prov4ml.ui.store import Store

    url, fs = s3
    log = tmp_path / "train.log"
    log.write_bytes(b"".join(b"line %07d of the log\n" % i for i in range(1_000_000)))
    with prov4ml.run("www.example.org", "big", url, capture=False):
        prov4ml.log_artifact(str(log), prov4ml.Context.TRAINING)
    reads = []
    read_head = remote.Remote.read_head

    def counted(self, local, size):
        data = read_head(self, local, size)
        reads.append((local.name, size, len(data)))
        return data

    monkeypatch.setattr(remote.Remote, "read_head", counted)
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "another-host"))  # the UI runs where nothing was recorded
    store = Store(url)
    page = run_page(store, store.head("big/run_0"))
    shown = re.search(r'<figure class="preview" data-kind="text"[^>]*>.*?<pre[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert shown == log.read_bytes()[:TEXT_BYTES].decode()
    assert reads == [("train.log", TEXT_BYTES + 1, TEXT_BYTES + 1)]  # the bytes that crossed: 16 KiB and one
    assert not list(store.root.rglob("train.log")), "the preview staged the whole file"
    assert store.file(store.head("big/run_0"), "artifacts/train.log").read_bytes() == log.read_bytes()  # the link's copy
