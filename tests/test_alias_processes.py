"""`import yprov4ml` in every process of a script that opted in: spawn and forkserver children, a dask
LocalCluster's worker processes, torchrun ranks; and in no process that did not opt in.

Real processes throughout; the scripts are in tests/compat_scripts/.
"""

import csv
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, load_json, series_entity
from prov4ml.compat.alias import ALIAS_PATH

SCRIPTS = ROOT / "tests" / "compat_scripts"
SUBMODULES_SAME = [True] * 5  # yprov4ml.constants, .functs, .utils.getters, .datamodel.metric_type, .datamodel.metric_data


def run(args, cwd, env=None, expect=0, timeout=300):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == expect, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def csv_points(path):
    with open(path, newline="") as fh:
        return [float(r["value"]) for r in csv.DictReader(fh)]


def test_children_of_a_script_under_the_runner_import_yprov4ml(tmp_path):
    pytest.importorskip("distributed")
    run(["-m", "prov4ml.compat.run_as_yprov4ml", SCRIPTS / "yprov4ml_in_children.py", tmp_path], tmp_path)
    seen = load_json(tmp_path / "seen.json")
    assert seen["parent_is_prov4ml"]
    children = seen["spawn_pool"] + seen["forkserver"] + seen["dask"]
    assert len(children) == 6 and seen["parent"] not in {c["pid"] for c in children}
    for child in children:
        assert child["is_prov4ml"] and child["file"] == str(ROOT / "prov4ml" / "__init__.py")
        assert child["submodules"] == SUBMODULES_SAME and child["data"]
    # each dask task recorded a run of its own, in a worker process, with exactly the points it logged
    assert len({c["pid"] for c in seen["dask"]}) >= 1
    for i, task in enumerate(seen["dask"]):
        run_dir = tmp_path / f"dask_task_{i}" / "run_0"
        assert task["prov_json"] == str(run_dir / "prov_rank0.json") and task["experiment_dir"] == str(run_dir)
        series = series_entity(load_json(task["prov_json"]), "x")
        assert series["provml:count"] == 3 and task["values"] == [i * 10.0 + s for s in range(3)]
        assert csv_points(run_dir / "metrics" / "x_training_rank0.csv") == task["values"]
    assert seen["subprocess"] == "True"


def test_torchrun_ranks_under_the_runner_import_yprov4ml(tmp_path):
    run(["-m", "prov4ml.compat.run_as_yprov4ml", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         SCRIPTS / "yprov4ml_ranks.py", tmp_path], tmp_path)
    run_dir = tmp_path / "ranks" / "run_0"
    for rank in (0, 1):
        seen = load_json(tmp_path / f"rank{rank}.json")
        assert seen["rank"] == rank and seen["is_prov4ml"] and seen["sum"] == 3.0
        assert seen["pythonpath"].split(os.pathsep)[0] == ALIAS_PATH
        assert seen["prov_json"] == str(run_dir / f"prov_rank{rank}.json")
        doc = load_json(seen["prov_json"])
        assert csv_points(run_dir / "metrics" / f"rank_value_training_rank{rank}.csv") == [rank + 1.0]
        assert series_entity(doc, "sum")["provml:last"] == 3.0


OPT_IN = textwrap.dedent('''
    import json, multiprocessing, os, sys
    import prov4ml
    from prov4ml.compat import uninstall_yprov4ml_alias
    from prov4ml.compat.alias import ALIAS_PATH

    def probe(_):
        try:
            import yprov4ml
            return yprov4ml.__name__
        except ImportError as exc:
            return type(exc).__name__

    def child():
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.map(probe, [0])[0]

    def exported():
        return [ALIAS_PATH in os.environ.get("PYTHONPATH", "").split(os.pathsep), ALIAS_PATH in sys.path]

    if __name__ == "__main__":
        out = {"no_opt_in": [child(), exported()]}
        prov4ml.install_yprov4ml_alias(children=False)
        out["this_process_only"] = [child(), exported(), probe(0)]
        uninstall_yprov4ml_alias()
        prov4ml.install_yprov4ml_alias()
        out["children"] = [child(), exported(), probe(0)]
        uninstall_yprov4ml_alias()
        out["uninstalled"] = [child(), exported(), probe(0), os.environ.get("PYTHONPATH")]
        print(json.dumps(out))
''')


def load_json_line(text):
    return json.loads(text.strip().splitlines()[-1])


def test_children_get_the_alias_only_when_asked_and_not_after_it_is_undone(tmp_path):
    script = tmp_path / "opt_in.py"
    script.write_text(OPT_IN)
    out = load_json_line(run([script], tmp_path).stdout)
    assert out["no_opt_in"] == ["ModuleNotFoundError", [False, False]]
    assert out["this_process_only"] == ["ModuleNotFoundError", [False, False], "prov4ml"]
    assert out["children"] == ["prov4ml", [True, True], "prov4ml"]
    assert out["uninstalled"] == ["ModuleNotFoundError", [False, False], "ModuleNotFoundError", str(ROOT)]


def test_the_alias_folder_never_shadows_a_real_yprov4ml(tmp_path):
    real = tmp_path / "site" / "yprov4ml"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    (real / "constants.py").write_text("WHERE = 'real'\n")
    # a child that inherited the alias folder, in an environment where yprov4ml is really installed
    env = {"PYTHONPATH": os.pathsep.join([ALIAS_PATH, str(ROOT), str(real.parent)])}
    code = "import yprov4ml, yprov4ml.constants as c; print(yprov4ml.REAL, c.WHERE, yprov4ml.__file__)"
    assert run(["-c", code], tmp_path, env=env).stdout.split() == ["True", "real", str(real / "__init__.py")]
    # without one, the folder alone gives prov4ml and its submodules
    env = {"PYTHONPATH": os.pathsep.join([ALIAS_PATH, str(ROOT)])}
    code = ("import prov4ml, yprov4ml, yprov4ml.utils.getters as g; "
            "print(yprov4ml is prov4ml, g is prov4ml.utils.getters, 'prov4ml.compat.yprov4ml_path.yprov4ml' in __import__('sys').modules)")
    assert run(["-c", code], tmp_path, env=env).stdout.split() == ["True", "True", "False"]


def test_a_2x_style_script_runs_unchanged_under_the_runner(tmp_path):
    pytest.importorskip("distributed")
    from prov4ml import runs

    run(["-m", "prov4ml.compat.run_as_yprov4ml", SCRIPTS / "yprov4ml_2x_style.py", tmp_path], tmp_path)
    seen = load_json(tmp_path / "seen.json")
    run_dir = tmp_path / "style_2x" / "run_0"
    assert seen["experiment_dir"] == str(run_dir) and seen["dask_dir"] == str(tmp_path / "dask_eval" / "run_0")
    record = runs.read_run(run_dir)
    versions = sorted((a for a in record.artifacts if a["kind"] == "model_version"), key=lambda a: a["step"])
    assert [(a["step"], a["context"], a["version"]) for a in versions] == [(e, "training", e) for e in range(3)]
    for a in versions:
        assert hashlib.sha256((run_dir / a["location"]).read_bytes()).hexdigest() == a["sha256"]
    assert any(a["kind"] == "model" for a in record.artifacts) and record.params == {"lr": 0.1}
    assert [s.count for s in record.series if s.name == "loss"] == [3]
    assert runs.read_run(tmp_path / "dask_eval" / "run_0").status == "finished"
