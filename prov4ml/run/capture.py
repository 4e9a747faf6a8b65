"""The reproducibility capture of a run, done in a child process.

Listing the installed packages, running git and hashing the copied script
take a few hundred milliseconds of Python work; in a thread of the training
process that work would hold the GIL during the first steps of training. So
``start_run`` hands it to ``python -m prov4ml.run.capture`` (a JSON
request on stdin, a JSON answer on stdout), which writes the environment
files into the run's artifacts and describes them; the run only reads the
answer. When the child cannot run, the same function runs in a thread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = ["capture_into", "capture_in_child", "records_of"]


def capture_into(run_dir: str, rank: int, parts: Dict[str, bool], env_vars: bool, argv: List[str],
                 main: Optional[str], cwd: str) -> Dict[str, Any]:
    """Capture, write the environment files under the run's artifacts, describe both (JSON-able)."""
    from ..records.artifacts import ArtifactStore
    from ..collectors import environment

    cap = environment.capture(env_vars=env_vars, argv=argv, main=main or "", cwd=cwd, **parts)
    store = ArtifactStore(Path(run_dir), rank)
    env: Dict[str, Any] = {"python": cap.python, "executable": cap.executable}
    env.update({f"host_{k}" if k != "hostname" else "host": v for k, v in (cap.host or {}).items()})
    if cap.git:
        env.update({f"git_{k}": v for k, v in cap.git.items()})
    records = []
    if cap.packages:
        text = "\n".join(f"{k}=={v}" for k, v in sorted(cap.packages.items())) + "\n"
        records.append(store.write_text("environment/packages.txt", text))
        env["packages"] = len(cap.packages)
    if cap.diff:
        records.append(store.write_text("environment/git.diff", cap.diff, role="diff"))
    if cap.env_vars is not None:
        records.append(store.write_text("environment/env_vars.json", json.dumps(cap.env_vars, indent=1, sort_keys=True)))
    if cap.main_source:
        try:
            records.append(store.copy(Path(cap.main_source), f"source/{Path(cap.main_source).name}", role="source"))
        except OSError as exc:
            env["source_copy_error"] = repr(exc)
    return {
        "env": {k: v for k, v in env.items() if isinstance(v, (str, int, float, bool))},
        "records": [{**dataclasses.asdict(r), "time": r.time.isoformat()} for r in records],
        "main_source": cap.main_source,
        "command": " ".join(cap.command) if cap.command else None,
    }


def records_of(answer: Dict[str, Any]) -> list:
    from ..records.model import ArtifactRecord

    return [ArtifactRecord(**{**r, "time": datetime.fromisoformat(r["time"])}) for r in answer["records"]]


def capture_in_child(request: Dict[str, Any], timeout: float = 120.0) -> Dict[str, Any]:
    """``capture_into(**request)`` in a child process; raises OSError / ValueError when it fails."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run(
        [sys.executable, "-m", "prov4ml.run.capture"], input=json.dumps(request).encode(),
        capture_output=True, timeout=timeout, env=env, cwd=request["cwd"],
    )
    if out.returncode != 0:
        raise OSError(f"the capture process failed: {out.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
    return json.loads(out.stdout)


if __name__ == "__main__":
    try:
        os.nice(10)  # yield the CPU to training when the cores are busy
    except OSError:
        pass
    sys.stdout.write(json.dumps(capture_into(**json.loads(sys.stdin.buffer.read()))))
