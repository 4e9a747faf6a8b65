"""Real child processes that record a run and get killed, and the exact oracles for what survives.

The child tells how far it got through a shared, memory-mapped counter file
(no pipe to fill, nothing for the kill to tear): after every call that
returned it stores the number of points it has logged, and it raises a flag
once ``start_run`` has returned. What the page cache holds when the child
dies is exactly what it had told. Each number is one aligned 8-byte store
(``struct.pack_into`` zero-fills its target before packing, so a kill between
the two read 0 about once in 20 kills under load).
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import mmap, os, struct, sys, time
import prov4ml
_fd = os.open({counter!r}, os.O_RDWR)
_mm = mmap.mmap(_fd, 64)
_slots = memoryview(_mm).cast("q")  # one aligned 8-byte store per update: a kill never tears it
def store(k, n):
    _slots[k] = n
def tell(n):
    _slots[0] = n
def flag(k):
    _slots[k] = 1
"""


#: Every child started, so that a test that fails before its kill never leaves one logging forever.
STARTED: list = []


def kill_leftovers() -> None:
    """SIGKILL every child (and its process group) still running: a loop left alive would fill the disk."""
    while STARTED:
        child = STARTED.pop()
        if child.proc.poll() is None:
            try:
                if child.group:
                    os.killpg(child.proc.pid, signal.SIGKILL)
                else:
                    child.proc.kill()
            except ProcessLookupError:
                pass
            child.proc.wait(30)


class Child:
    def __init__(self, tmp_path: Path, body: str, group: bool = False, env=None):
        self.tmp_path = tmp_path
        self.counter = tmp_path / "counter.bin"
        self.counter.write_bytes(b"\0" * 64)
        self.save_dir = tmp_path / "prov"
        code = PRELUDE.format(counter=str(self.counter)) + body.format(save_dir=str(self.save_dir))
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.group = group
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=tmp_path, env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=group,
        )
        STARTED.append(self)

    def _read(self, k: int) -> int:
        with open(self.counter, "rb") as fh:
            return struct.unpack_from("<q", fh.read(64), 8 * k)[0]

    @property
    def logged(self) -> int:
        """Points whose log_metric had returned."""
        return self._read(0)

    def wait_flag(self, k: int = 1, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._read(k):
            if self.proc.poll() is not None:
                raise AssertionError(f"child ended early ({self.proc.returncode}): {self.proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("child never raised its flag")
            time.sleep(0.002)

    def kill(self, sig=signal.SIGKILL) -> int:
        if self.group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        return self.wait()

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def run_dir(self, experiment: str = "crash", run_id: int = 0) -> Path:
        return self.save_dir / experiment / f"run_{run_id}"


def wait_for(predicate, timeout: float = 30.0, pause: float = 0.05) -> None:
    """Wait until ``predicate()`` holds; an AssertionError past ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(pause)


def wait_for_sinks(run_dir: Path, timeout: float = 60.0) -> None:
    """Wait until no sink process still works on ``run_dir`` (it finishes the files of a killed run, then
    removes the ``sink.pid`` its run's journal folder holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for pid_file in run_dir.glob(".prov4ml/rank*/sink.pid"):
            try:
                busy = busy or psutil.Process(int(pid_file.read_text())).status() != psutil.STATUS_ZOMBIE
            except (OSError, ValueError, psutil.Error):  # gone, or the file went meanwhile
                pass
        if not busy:
            return
        time.sleep(0.05)
    raise AssertionError("a metric sink never finished")


def read_rows(path: Path):
    """(step, value) pairs of a metric CSV, refusing any row that is not whole."""
    text = path.read_text()
    lines = text.split("\n")
    assert lines[0] == "step,value,time"
    assert lines[-1] == "", f"the last row of {path.name} is torn: {lines[-1]!r}"
    rows = []
    for line in lines[1:-1]:
        step, value, t = line.split(",")
        rows.append((int(step), float(value)))
        float(t)
    return rows


def prov_json(run_dir: Path, rank: int = 0) -> dict:
    path = run_dir / f"prov_rank{rank}.json"
    data = json.loads(path.read_text())
    from prov.model import ProvDocument

    ProvDocument.deserialize(str(path))  # readable by prov, not only by json
    return data


def run_activity(data: dict) -> dict:
    return next(a for k, a in data["activity"].items() if k.endswith(".rank0"))


def series_count(data: dict, name: str, context: str = "training") -> int:
    for attrs in data.get("entity", {}).values():
        if attrs.get("provml:name") == name and attrs.get("provml:context") == context:
            value = attrs.get("provml:count", 0)
            return int(value["$"]) if isinstance(value, dict) else int(value)
    return 0


def assert_exact(rows, logged: int, value=lambda i: i * 0.5) -> None:
    """Every point whose call returned is on disk, in order, with its value; at most the one in flight more."""
    assert logged <= len(rows) <= logged + 1, (logged, len(rows))
    assert rows == [(i, value(i)) for i in range(len(rows))]
