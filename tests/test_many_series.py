"""Any number of series, every row: the sink keeps one file per series through a bounded pool of open files."""

import csv
import json
import resource
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

SERIES, POINTS = 2000, 10


def _run_under_fd_limit(folder, limit, body, hard_too=False):
    script = folder / "train.py"
    script.write_text(textwrap.dedent(body))

    def lower_limit():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit if hard_too else hard))

    return subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, preexec_fn=lower_limit)


@pytest.mark.parametrize("writer_process,hard_too", [(True, False), (True, True), (False, False)],
                         ids=["sink process", "sink process, hard limit 256", "refresher thread"])
def test_2000_series_under_ulimit_256_keep_every_row(tmp_path, writer_process, hard_too):
    """Under a hard limit of 256 too, the sink cannot raise its own: its pool holds 192 of the 2,000 files, and
    the rows of a closed file wait (CLOSED_FILE_WAIT) for more; a flush writes them all the same."""
    proc = _run_under_fd_limit(tmp_path, 256, f"""
        import pathlib, resource
        import prov4ml
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 256
        prov4ml.start_run("www.example.org", "many", "prov", capture=False, writer_process={writer_process})
        for step in range({POINTS}):
            for k in range({SERIES}):
                prov4ml.log_metric(f"m{{k}}", k + step / 10, prov4ml.Context.TRAINING, step=step)
        prov4ml.flush()
        files = list(pathlib.Path("prov/many/run_0/metrics").iterdir())
        print("rows after flush", sum(len(f.read_bytes().splitlines()) - 1 for f in files))
        prov4ml.end_run()
    """, hard_too)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"rows after flush {SERIES * POINTS}" in proc.stdout
    run_dir = tmp_path / "prov" / "many" / "run_0"
    files = sorted((run_dir / "metrics").glob("*.csv"))
    assert len(files) == SERIES
    for path in files:
        k = int(path.name.split("_")[0][1:])
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        assert [(int(r["step"]), float(r["value"])) for r in rows] == [(s, k + s / 10) for s in range(POINTS)], path.name
    doc = json.loads((run_dir / "prov_rank0.json").read_text())
    (run,) = [a for a in doc["activity"].values() if "provml:run_id" in a]
    assert run["provml:status"] == "finished"
    assert not (run_dir / ".prov4ml").exists()  # the journal went only because the files were complete
