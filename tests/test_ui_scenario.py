"""Issue 25's "done when", end to end in a real headless Chromium: from the UI alone, a researcher finds the 3
best runs of a sweep by validation accuracy, compares their smoothed losses on a log scale, and reads which
dataset and checkpoint each run used and made, and which run went on to use a checkpoint.

The runs are real prov4ml runs of a small torch MLP; the decisions are taken from what the pages show. The
oracles are what the runs logged: each run's val_acc, the dataset's label and size, the checkpoint's SHA-256
computed here from the file written.
"""

import hashlib

import pytest

import prov4ml
from prov4ml.ui import serve

from test_ui import _js_wait

NS = "www.example.org"
EPOCHS, BATCHES = 3, 4
# run index -> (lr, val_acc per epoch): the best three by final val_acc are runs 5, 2 and 7
VAL_ACC = {0: [0.40, 0.50, 0.55], 1: [0.50, 0.62, 0.66], 2: [0.60, 0.81, 0.90], 3: [0.30, 0.35, 0.41],
           4: [0.55, 0.70, 0.72], 5: [0.70, 0.88, 0.94], 6: [0.45, 0.58, 0.61], 7: [0.65, 0.80, 0.86]}
LRS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
DATASETS = {"cifar-small": 1000, "cifar-large": 3000}  # label -> bytes of the data file


def _dataset_of(i):
    return "cifar-small" if i % 2 == 0 else "cifar-large"


def _loss(i, b):
    """The loss of run i at global batch b: positive, falling over two decades."""
    return (1.0 + i) * 10.0 ** (-b / 6)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    import torch

    tmp = tmp_path_factory.mktemp("scenario")
    save_dir = tmp / "prov"
    files = {}
    for label, size in DATASETS.items():
        files[label] = tmp / f"{label}.bin"
        files[label].write_bytes(bytes(range(250)) * (size // 250))
    checkpoints = {}
    for i, accs in VAL_ACC.items():
        torch.manual_seed(i)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        with prov4ml.run(NS, "sweep", str(save_dir), capture=False) as run:
            prov4ml.log_params({"lr": LRS[i], "seed": i})
            prov4ml.log_dataset(files[_dataset_of(i)], _dataset_of(i))
            for epoch, acc in enumerate(accs):
                for b in range(BATCHES):
                    step = epoch * BATCHES + b
                    prov4ml.log_metric("loss", _loss(i, step), prov4ml.Context.TRAINING, step=step)
                prov4ml.log_metric("val_acc", acc, prov4ml.Context.VALIDATION, step=epoch)
            ckpt = tmp / f"ckpt_{i}.pt"
            torch.save(net.state_dict(), ckpt)
            prov4ml.save_model_version("mlp", str(ckpt), prov4ml.Context.TRAINING, step=EPOCHS - 1)
            checkpoints[f"sweep/{run.run_dir.name}"] = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    best = max(VAL_ACC, key=lambda i: VAL_ACC[i][-1])
    # a fine-tuning run in another experiment loads the best run's checkpoint, as copied into that run
    copied = next((save_dir / "sweep" / f"run_{best}" / "artifacts").rglob("*.pt"))
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == checkpoints[f"sweep/run_{best}"]
    with prov4ml.run(NS, "finetune", str(save_dir), capture=False):
        torch.load(copied)
        prov4ml.log_artifact(str(copied), prov4ml.Context.TRAINING, is_input=True)
        prov4ml.log_metric("loss", 0.1, prov4ml.Context.TRAINING, step=0)
    server = serve(save_dir, port=0)
    data_sha = {label: hashlib.sha256(path.read_bytes()).hexdigest() for label, path in files.items()}
    yield server, checkpoints, best, data_sha
    server.shutdown()
    server.server_close()


def _column(d, table, col):
    """The (run key, cell text) of every row of a runs table, in the order shown."""
    return d.execute_script(
        "const t = arguments[0], i = [...t.tHead.rows[0].cells].findIndex(h => h.dataset.col === arguments[1]);"
        "return [...t.tBodies[0].rows].map(r => [r.querySelector('input.tick').value, r.cells[i].textContent])",
        table, col)


def test_the_three_best_runs_are_found_compared_and_traced_from_the_ui(browser, sweep):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    server, checkpoints, best, data_sha = sweep
    d = browser
    d.get(server.url)
    d.execute_script("localStorage.clear(); sessionStorage.clear()")
    d.get(server.url)
    _js_wait(d, "return document.getElementById('count') !== null", what="the runs list")
    table = d.find_element(By.CSS_SELECTOR, "section[data-experiment=sweep] table.runs")
    header = table.find_element(By.CSS_SELECTOR, "th[data-col='val_acc/validation']")

    # sort by val_acc until the best is on top (the first click may sort either way)
    for _ in range(2):
        header.click()
        rows = _column(d, table, "val_acc/validation")
        if float(rows[0][1]) >= float(rows[-1][1]):
            break
    values = [float(v) for _, v in rows]
    assert values == sorted(values, reverse=True)
    top3 = [key for key, _ in rows[:3]]
    oracle = sorted(VAL_ACC, key=lambda i: -VAL_ACC[i][-1])[:3]
    assert top3 == [f"sweep/run_{i}" for i in oracle]
    assert values[:3] == [VAL_ACC[i][-1] for i in oracle]

    # the same three by the filter box, with the threshold read off the third row
    box = d.find_element(By.CSS_SELECTOR, "#filter input[name=where]")
    loads = d.execute_script("return Number(document.getElementById('experiments').dataset.loads || 0)")
    box.clear()
    box.send_keys(f"val_acc.best>={rows[2][1]}", Keys.ENTER)
    _js_wait(d, f"return Number(document.getElementById('experiments').dataset.loads || 0) > {loads}",
             what="the filtered list")
    shown = d.execute_script("return [...document.querySelectorAll('table.runs input.tick')].map(b => b.value)")
    assert sorted(shown) == sorted(top3)
    assert d.find_element(By.ID, "count").text == f"3 of {len(VAL_ACC) + 1} runs match the filter"

    for key in top3:
        d.find_element(By.CSS_SELECTOR, f"input.tick[value='{key}']").click()
    button = d.find_element(By.ID, "compare")
    assert button.text == "Compare 3 runs"
    button.click()
    _js_wait(d, "return location.pathname === '/compare'", what="the comparison")
    assert d.find_element(By.TAG_NAME, "h1").text == "3 runs compared"
    plot = "plot-loss__training_"
    _js_wait(d, f"const f = document.getElementById('{plot}'); return f && Number(f.dataset.points) === {3 * EPOCHS * BATCHES}",
             what="the three losses")

    # smoothing and log scale on the loss plot: the lines change, the y ticks are powers of ten
    paths = f"return [...document.querySelectorAll('#{plot} .p4chart svg path')].filter(p => p.getAttribute('fill') === 'none' && (p.getAttribute('d') || '').split('L').length > {EPOCHS * BATCHES - 1}).map(p => p.getAttribute('d'))"
    before = d.execute_script(paths)
    d.execute_script(f"const s = document.querySelector('#{plot} input.p4smooth'); s.value = '0.6'; s.dispatchEvent(new Event('input'))")
    d.find_element(By.CSS_SELECTOR, f"#{plot} input.p4log").click()
    _js_wait(d, f"return document.getElementById('{plot}').dataset.log === '1'", what="the log scale")
    after = d.execute_script(paths)
    assert len(before) == 3 and len(after) == 6 and not set(before) & set(after)  # smoothed + faint raw, re-scaled
    ticks = d.execute_script(f"return [...document.querySelectorAll('#{plot} .p4chart svg text')].map(t => t.textContent)"
                             ".filter(t => /^10[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+$/.test(t))")
    # the losses span 0.04..8 (runs 5, 2, 7): the decades 10⁻¹ and 10⁰ lie inside
    assert {"10⁻¹", "10⁰"} <= set(ticks), ticks

    # each run's page: the dataset it read, the checkpoint it made, and who used that checkpoint
    for i, key in zip(oracle, top3):
        d.get(server.url + "run/" + key)
        headers = [th.text for th in d.find_elements(By.CSS_SELECTOR, "#datasets-table thead th")]
        (drow,) = [[td.text for td in r.find_elements(By.TAG_NAME, "td")]
                   for r in d.find_elements(By.CSS_SELECTOR, "#datasets-table tbody tr")]
        label = _dataset_of(i)
        assert drow[0] == label and drow[headers.index("bytes")] == str(DATASETS[label])
        assert drow[headers.index("sha256 (full)")] == data_sha[label][:12]
        vheaders = [th.text for th in d.find_elements(By.CSS_SELECTOR, "#versions-table thead th")]
        (vrow,) = [[td.text for td in r.find_elements(By.TAG_NAME, "td")]
                   for r in d.find_elements(By.CSS_SELECTOR, "#versions-table tbody tr")]
        assert vrow[0] == "mlp" and vrow[vheaders.index("sha256")] == checkpoints[key][:12]
        downstream = d.find_elements(By.ID, "lineage-downstream")
        if i == best:
            assert "finetune/run_0" in downstream[0].text and checkpoints[key][:12] in downstream[0].text
            assert vrow[-1] == "finetune/run_0"
        else:  # a checkpoint no run used: nothing came of it
            assert downstream == [] and vrow[-1] == ""
    d.get(server.url + f"run/sweep/run_{best}")
    d.find_element(By.LINK_TEXT, "finetune/run_0").click()  # the consumer, reached through the link
    _js_wait(d, "return location.pathname === '/run/finetune/run_0'", what="the consumer's page")
    upstream = d.find_element(By.ID, "lineage-upstream").text
    assert f"sweep/run_{best}" in upstream and checkpoints[f"sweep/run_{best}"][:12] in upstream
