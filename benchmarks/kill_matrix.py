"""The kill matrix: SIGKILL of the process or of its group, 0.05 / 0.3 / 1 s after start_run, in a tight
and a realistic loop; points whose call returned against points on disk, before and after recover.

    python benchmarks/kill_matrix.py
"""

import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import prov4ml  # noqa: E402
from killing import Child, prov_json, read_rows, series_count, wait_for_sinks  # noqa: E402
from test_crash import REALISTIC, TIGHT  # noqa: E402

for body_name, body in (("tight", TIGHT), ("realistic", REALISTIC)):
    for group in (False, True):
        for delay in (0.05, 0.3, 1.0):
            tmp = Path(tempfile.mkdtemp())
            c = Child(tmp, body, group=group); c.wait_flag(1); time.sleep(delay); c.kill(signal.SIGKILL)
            logged = c.logged; d = c.run_dir(); wait_for_sinks(d)
            doc_before = series_count(prov_json(d), "loss")
            csv = d / "metrics/loss_training_rank0.csv"
            before = max(csv.read_bytes().count(b"\n") - 1, 0) if csv.exists() else 0  # whole rows (a group kill can tear the last)
            prov4ml.recover(d)
            after = len(read_rows(d / "metrics/loss_training_rank0.csv"))
            print(f"{body_name:9} {'group' if group else 'process':7} kill at {delay:4.2f}s: returned {logged:>8,}  "
                  f"csv before recover {before:>8,} ({100 * before / max(logged, 1):3.0f} %)  after {after:>8,}  "
                  f"doc count before {doc_before:>7,} after {series_count(prov_json(d), 'loss'):>8,}")
