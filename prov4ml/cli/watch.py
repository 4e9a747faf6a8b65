"""A live view of a run: every metric series with its points, last value, range and a sparkline, the status, points/s.

Refreshes every --interval seconds as the run writes, and ends by itself when
the run ends (its status is no longer `running`), or on Ctrl-C (exit 0).
Metric files are read incrementally (only the bytes added since the last
refresh); the status comes from the PROV-JSON. --once prints one frame.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Deque, Dict, List, Optional, Tuple

from ..exceptions import InvalidValueError
from ._output import duration, fmt, print_table, status_style
from ..runs import DEFAULT_DIR, RunRecord, read_run, resolve_run

SPARK_POINTS = 40
_BARS = "▁▂▃▄▅▆▇█"
_FILE_NAME = re.compile(r"^(.*)_rank(\d+)(?:\.parquet)?\.csv$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help=f"a run directory or EXPERIMENT/run_N under ./{DEFAULT_DIR}")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between refreshes (default 1)")
    parser.add_argument("--once", action="store_true", help="print one frame and exit")


def run(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        raise InvalidValueError(f"--interval must be a positive number of seconds, got {args.interval}")
    view = View(resolve_run(args.run))
    if args.once:
        view.refresh()
        view.print_plain()
        return 0
    try:
        if sys.stdout.isatty():
            view.live(args.interval)
        else:
            view.plain(args.interval)
    except KeyboardInterrupt:  # leaving the view is how one stops watching
        pass
    return 0


def sparkline(values: List[float]) -> str:
    """``values`` as block characters, lowest ▁ to highest █ (a NaN is a space)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = high - low
    return "".join(
        " " if not math.isfinite(v) else _BARS[0 if span == 0 else min(7, int((v - low) / span * 8))] for v in values
    )


@dataclass
class Tail:
    """One metric file read incrementally: only the bytes added since the last read are parsed."""

    path: Path
    offset: int = 0
    partial: bytes = b""
    separator: Optional[str] = None
    count: int = 0
    last: Optional[float] = None
    last_step: Optional[int] = None
    low: float = math.inf
    high: float = -math.inf
    recent: Deque[float] = field(default_factory=lambda: deque(maxlen=SPARK_POINTS))

    def rewritten(self) -> bool:
        """True when the file is now shorter than what was read (recover, a format conversion rewrote it)."""
        try:
            return os.path.getsize(self.path) < self.offset
        except OSError:
            return False

    def read(self) -> None:
        try:
            size = os.path.getsize(self.path)
            if size <= self.offset:
                return
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(size - self.offset)
        except OSError:  # not written yet, or replaced between the two calls
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # an unfinished last line waits for its end
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _line(self, line: str) -> None:
        if self.separator is None:
            self.separator = line[4] if line.startswith("step") and len(line) > 4 else ","
            return
        parts = line.split(self.separator)
        if len(parts) < 2:
            return
        try:
            value = float(parts[1])
        except ValueError:
            return
        self.count += 1
        self.last = value
        try:
            self.last_step = int(parts[0])
        except ValueError:
            pass
        if math.isfinite(value):
            self.low, self.high = min(self.low, value), max(self.high, value)
        self.recent.append(value)


def _label(path: Path) -> Tuple[str, str, str]:
    """(name, context, rank) guessed from a metric file's name, ``<name>_<context>_rank<k>.csv``, until the
    document names the series (a context with an underscore in it reads wrong until then)."""
    m = _FILE_NAME.match(path.name)
    if m is None:
        return (path.stem, "", "")
    name, _, context = m.group(1).rpartition("_")
    return (name, context, m.group(2)) if name else (context, "", m.group(2))


class View:
    """What ``watch`` shows of one run, refreshed from its files."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.tails: Dict[Path, Tail] = {}
        self.labels: Dict[Path, Tuple[str, str, str]] = {}
        self.record: Optional[RunRecord] = None
        self.previous: Optional[Tuple[float, int]] = None
        self.rate = 0.0
        self.refreshed: Optional[datetime] = None

    def refresh(self) -> None:
        self.record = read_run(self.run_dir, details=False)
        for s in self.record.series:
            if s.location and s.location.endswith(".csv"):
                self.labels[self.run_dir / s.location] = (s.name, s.context, str(s.rank))
        for path in sorted((self.run_dir / "metrics").glob("*.csv")):  # files the document does not name yet
            if path not in self.labels:
                self.labels[path] = _label(path)
        for path in self.labels:
            tail = self.tails.get(path)
            if tail is None or tail.rewritten():
                tail = self.tails[path] = Tail(path)
            tail.read()
        now, total = time.monotonic(), self.points()
        if self.previous is not None and now > self.previous[0]:
            self.rate = (total - self.previous[1]) / (now - self.previous[0])
        elif self.record.duration_s:  # the first frame: the average since the run started
            self.rate = total / self.record.duration_s
        self.previous = (now, total)
        self.refreshed = datetime.now()

    def points(self) -> int:
        return sum(t.count for t in self.tails.values())

    @property
    def running(self) -> bool:
        return self.record is not None and self.record.status == "running"

    def rows(self) -> List[List[object]]:
        named = {(s.name, s.context, str(s.rank)): s for s in self.record.series} if self.record else {}
        out = []
        for path, (name, context, rank) in sorted(self.labels.items(), key=lambda kv: kv[1]):
            t = self.tails[path]
            entity = named.get((name, context, rank))
            if t.count == 0 and entity is not None and entity.count:  # a file that cannot be tailed (Parquet)
                out.append([name, context, rank, entity.count, entity.last, entity.min, entity.max, ""])
                continue
            out.append([name, context, rank, t.count, t.last,
                        t.low if t.count and math.isfinite(t.low) else None,
                        t.high if t.count and math.isfinite(t.high) else None, sparkline(list(t.recent))])
        return out

    def header(self) -> str:
        r = self.record
        assert r is not None
        return (f"{r.label}  {r.shown_status}  elapsed {duration(r.duration_s)}  points {self.points()}  "
                f"{self.rate:.1f} points/s  refreshed {self.refreshed:%H:%M:%S}")

    COLUMNS = ["metric", "context", "rank", "points", "last", "min", "max", "trend"]

    def print_plain(self) -> None:
        print(self.header())
        print_table(self.COLUMNS, self.rows())
        print(flush=True)

    def plain(self, interval: float) -> None:
        """Frames one after the other (output to a file or a pipe)."""
        while True:
            self.refresh()
            self.print_plain()
            if not self.running:
                self._ended()
                return
            time.sleep(interval)

    def live(self, interval: float) -> None:
        from rich.console import Group
        from rich.live import Live
        from rich.table import Table
        from rich.text import Text

        from ._output import stdout_console

        def frame():
            assert self.record is not None
            status = Text(self.header())
            status.stylize(status_style(self.record.shown_status))
            table = Table(header_style="bold", expand=False)
            for col in self.COLUMNS:
                table.add_column(col, justify="right" if col in ("points", "last", "min", "max") else "left")
            for row in self.rows():
                table.add_row(*(fmt(v) for v in row))
            return Group(status, table)

        self.refresh()
        with Live(frame(), console=stdout_console(), auto_refresh=False) as live:
            while self.running:
                time.sleep(interval)
                self.refresh()
                live.update(frame(), refresh=True)
        self._ended()

    def _ended(self) -> None:
        r = self.record
        assert r is not None
        hint = f"; run prov4ml recover {r.run_dir}" if r.needs_recovery else ""
        print(f"run ended: {r.status}{hint}", flush=True)
