"""Scripts in the style of the reference library's examples, run as users run them: a file, a fresh interpreter."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT


def run_script(folder: Path, body: str, timeout: float = 120, env=None, check: bool = True, name: str = "train.py",
               unset=()):
    """Write ``body`` to ``folder/name`` and run it there; the project is importable as ``prov4ml``."""
    script = folder / name
    script.write_text(textwrap.dedent(body))
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update({"PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default", **(env or {})})
    proc = subprocess.run([sys.executable, str(script)], cwd=folder, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def document(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def by_label(data: dict, label: str, kind: str = "entity") -> tuple:
    """(id, attributes) of the one record of ``kind`` labelled ``label``."""
    found = [(k, v) for k, v in data.get(kind, {}).items() if v.get("prov:label") == label]
    assert len(found) == 1, (label, [v.get("prov:label") for v in data.get(kind, {}).values()])
    return found[0]


def relations(data: dict, kind: str, entity: str) -> list:
    """The ``kind`` relations (used, wasGeneratedBy) whose entity is ``entity``."""
    return [r for r in data.get(kind, {}).values() if r.get("prov:entity") == entity]


def context_activity(data: dict, name: str) -> str:
    found = [k for k, a in data.get("activity", {}).items() if a.get("provml:context") == name]
    assert len(found) == 1, name
    return found[0]


def run_activity(data: dict) -> tuple:
    found = [(k, a) for k, a in data["activity"].items() if "provml:run_id" in a]
    assert len(found) == 1
    return found[0]
