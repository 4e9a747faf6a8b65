"""Reproducibility capture: git state and diff, command line, Python, packages, host.

``capture()`` never raises for a missing git, a directory outside a repository
or a slow repository: each part says what it could not find. Environment
variables are captured only when asked for, with secrets redacted.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..redact import REDACTED, redact_command, redact_env, redact_value

__all__ = ["EnvironmentCapture", "capture", "redact_env", "REDACTED"]

GIT_TIMEOUT_S = 5.0
# git's hash of the empty tree: the base of a diff in a repository with no commit yet.
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass
class EnvironmentCapture:
    """What a run needs to be reproduced. A part not asked for is empty (``{}``, ``[]``, None)."""

    git: Dict[str, Any] = field(default_factory=dict)
    diff: Optional[str] = None
    command: List[str] = field(default_factory=list)
    python: str = ""
    executable: str = ""
    packages: Dict[str, str] = field(default_factory=dict)
    host: Dict[str, Any] = field(default_factory=dict)
    main_source: Optional[str] = None
    env_vars: Optional[Dict[str, str]] = None


def capture(
    *,
    git: bool = True,
    packages: bool = True,
    command: bool = True,
    host: bool = True,
    source: bool = True,
    env_vars: bool = False,
    cwd: Optional[str] = None,
    argv: Optional[List[str]] = None,
    main: Optional[str] = None,
) -> EnvironmentCapture:
    """Capture the parts asked for; ``cwd`` is where git looks (default: the current directory).

    ``argv`` and ``main`` (the command line and the ``__main__`` file) default
    to this process's; a capture process is given those of the run's.

    ``git`` is ``{"commit", "branch", "remote", "dirty", "root"}`` (commit None
    before the first commit, branch None on a detached HEAD, remote None
    without an ``origin``), or ``{"available": False, "reason": ...}``.
    ``diff`` is ``git diff HEAD`` of the working tree followed by the list of
    untracked files; None when the tree is clean or there is no repository.
    """
    result = EnvironmentCapture(python=platform.python_version(), executable=sys.executable)
    if git:
        result.git, result.diff = git_state(cwd)
    if command:
        result.command = redact_command(list(sys.argv if argv is None else argv))
    if packages:
        result.packages = installed_packages()
    if host:
        result.host = host_info()
    if source:
        result.main_source = main_source() if main is None else (main or None)  # "": there is none
    if env_vars:
        result.env_vars = redact_env(os.environ)
    return result


def git_state(cwd: Optional[str] = None) -> Tuple[Dict[str, Any], Optional[str]]:
    """(git info, diff text or None) for the repository holding ``cwd``."""
    where = cwd or os.getcwd()
    # Three independent questions asked at once: the capture waits for the slowest git, not for the sum.
    # One status call gives the commit, the branch and the changed files.
    (ok, out), status, (has_remote, remote) = [_git_result(_git_start(args, where)) for args in (
        ["rev-parse", "--show-toplevel"],
        ["status", "--porcelain=v2", "--branch", "--untracked-files=normal", "-z"],
        ["config", "--get", "remote.origin.url"],
    )]
    if not ok:
        return {"available": False, "reason": out}, None
    root = out.strip()
    ok, out = status
    if not ok:
        return {"available": False, "reason": out}, None
    commit, branch, changed, untracked = _parse_status(out)
    info: Dict[str, Any] = {
        "commit": commit,
        "branch": branch,
        "remote": redact_value(remote.strip()) if has_remote and remote.strip() else None,
        "dirty": bool(changed or untracked),
        "root": root,
    }
    diff = None
    if changed or untracked:
        text = ""
        if changed:
            ok, text = _git(["diff", "--no-color", "--no-ext-diff", commit or _EMPTY_TREE], where)
            if not ok:
                text = f"# git diff failed: {text}\n"
        if untracked:
            text += "# Untracked files:\n" + "".join(f"#\t{path}\n" for path in untracked)
        diff = text
    return info, diff


def _parse_status(out: str) -> Tuple[Optional[str], Optional[str], bool, List[str]]:
    """(commit, branch, tracked changes?, untracked paths) from ``status --porcelain=v2 -z``."""
    commit = branch = None
    changed = False
    untracked: List[str] = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid "):]
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry[len("# branch.head "):]
            branch = None if head == "(detached)" else head
        elif entry.startswith("? "):
            untracked.append(entry[2:])
        elif entry[:2] in ("1 ", "u "):
            changed = True
        elif entry.startswith("2 "):
            changed = True
            i += 1  # a rename entry is followed by its original path
        i += 1
    return commit, branch, changed, untracked


def _git(args: List[str], cwd: str) -> Tuple[bool, str]:
    """(True, stdout) or (False, the reason); never raises, never waits more than GIT_TIMEOUT_S."""
    return _git_result(_git_start(args, cwd))


def _git_start(args: List[str], cwd: str) -> Any:
    """The git process running ``args`` in ``cwd``, or (False, why it could not start)."""
    env = {
        **os.environ,
        "GIT_OPTIONAL_LOCKS": "0",  # status must not take index.lock under a concurrent git command
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    if not os.path.isdir(cwd):
        return False, f"directory not found: {cwd}"
    try:
        # Its own process group, so that a timeout also ends any child git started.
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=os.name == "posix",
        )
    except FileNotFoundError:
        return False, "git executable not found"
    except OSError as exc:  # permission denied, ...
        return False, f"git could not run: {exc}"


def _git_result(proc: Any) -> Tuple[bool, str]:
    """(True, stdout) or (False, the reason) of a process from ``_git_start``."""
    if isinstance(proc, tuple):
        return proc
    try:
        stdout, stderr = proc.communicate(timeout=GIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return False, f"git {proc.args[1]} took more than {GIT_TIMEOUT_S:g} s"
    if proc.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[0] if message else f"git {proc.args[1]} exited with {proc.returncode}"
        if reason.startswith("fatal: not a git repository"):
            reason = "not a git repository"
        return False, reason
    return True, stdout.decode("utf-8", "replace")


def _kill(proc: "subprocess.Popen[bytes]") -> None:
    """End the git process we started (and its group on POSIX), then reap it."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass  # already gone
    try:
        proc.communicate(timeout=1.0)
    except subprocess.TimeoutExpired:
        pass  # leave the pipes; never wait longer


def installed_packages() -> Dict[str, str]:
    """Distribution name -> version, sorted by name; the first on sys.path wins, as for import.

    Read from the names of the ``*.dist-info`` / ``*.egg-info`` folders (``name-version.dist-info``),
    which costs a few milliseconds; reading every METADATA file costs ~100 ms.
    """
    found: Dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                stem = name.rsplit(".", 1)[0]
                dist, _, version = stem.partition("-")
                version = version.split("-py")[0]
                if dist and version and dist.lower() not in found:
                    found[dist.lower()] = (dist.replace("_", "-"), version)
    return dict(sorted(found.values(), key=lambda item: item[0].lower()))


def host_info() -> Dict[str, Any]:
    """Host name, OS, architecture and CPU count."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python_implementation": platform.python_implementation(),
    }


def main_source() -> Optional[str]:
    """Absolute path of the ``__main__`` module's file; None in a REPL or ``python -c``."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.abspath(path) if path else None
