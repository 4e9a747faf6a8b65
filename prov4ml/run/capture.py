"""The reproducibility capture of a run, done in a thread of the training process.

The capture asks git three questions at once (its processes run on another
core while they work), lists the installed packages from the names of their
metadata folders and copies the script: a few milliseconds of Python work in
all, so the run's capture thread does it itself. It writes the environment
files into the run's artifacts and describes them (``capture_into``); the run
keeps that description as its records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = ["capture_into"]


def capture_into(run_dir: str, rank: int, parts: Dict[str, bool], env_vars: bool, argv: List[str],
                 main: Optional[str], cwd: str) -> Dict[str, Any]:
    """Capture, write the environment files under the run's artifacts, describe both."""
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
        "records": records,
        "main_source": cap.main_source,
        "command": " ".join(cap.command) if cap.command else None,
    }
