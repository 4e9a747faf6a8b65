"""How the console command prints: rich tables and progress on a terminal, plain text otherwise.

Scripts get stable output: when stdout is not a terminal (a pipe, a file, a
test) tables are plain columns separated by two spaces with no colour, and
``--json`` / ``--csv`` print machine-readable text. Progress goes to stderr,
only on a terminal, and only once a task has taken more than a second.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
import threading
import time
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, TypeVar

__all__ = ["fmt", "counted", "duration", "print_table", "print_json", "print_csv", "progress", "steps", "busy", "jsonable",
           "status_style", "stdout_console", "PROGRESS_AFTER_S"]

#: Progress shows once a task has run this long (shorter tasks stay silent).
PROGRESS_AFTER_S = 1.0

STATUS_STYLE = {"finished": "green", "running": "bold blue", "failed": "bold red", "killed": "bold magenta",
                "terminated": "yellow", "interrupted": "yellow", "incomplete": "bold yellow"}

T = TypeVar("T")


def status_style(status: str) -> str:
    return STATUS_STYLE.get(status.split(" ", 1)[0], "")


def fmt(value: Any) -> str:
    """A value for a table cell: floats to 6 significant digits, times to the second, control characters escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple)):
        return ",".join(fmt(v) for v in value)
    text = str(value)
    if text.isprintable():
        return text
    # a tab, a newline or a control character in a name would break the table: shown escaped, as Python writes it
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def counted(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``, ``1,000 runs``: a count with its noun, plural unless one."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


def duration(seconds: Optional[float]) -> str:
    """``450ms``, ``12.3s``, ``3m 20s``, ``1h 02m``, ``2d 03h``."""
    if seconds is None or seconds != seconds:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def stdout_console(min_width: int = 0):
    """A rich console on stdout at least ``min_width`` wide: a wide table keeps whole cells, and the
    terminal wraps its lines (or ``less -S`` scrolls them) rather than rich folding every cell."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)
    if console.width < min_width:
        console = Console(highlight=False, soft_wrap=False, width=min_width)
    return console


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: Optional[str] = None,
                styled: Optional[Dict[int, Callable[[str], str]]] = None) -> None:
    """Print a table: rich on a terminal, plain aligned columns otherwise.

    ``styled``: column index -> function of the cell's text giving its rich
    style (the colour of a status). Numbers are right-aligned.
    """
    rows = [list(r) for r in rows]
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) or r[i] is None for r in rows)
               and any(r[i] is not None for r in rows) for i in range(len(columns))]
    cells = [[fmt(v) for v in r] for r in rows]
    if sys.stdout.isatty():
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, header_style="bold", title_justify="left")
        for col, num in zip(columns, numeric):
            table.add_column(col, justify="right" if num else "left", no_wrap=True)
        for r in cells:
            table.add_row(*(Text(v, style=styled[i](v)) if styled and i in styled else v for i, v in enumerate(r)))
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        stdout_console(sum(widths) + 3 * len(widths) + 1).print(table)
        return
    if title:
        print(title)
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    print(line(list(columns)))
    for r in cells:
        print(line(r))


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON: datetimes as ISO 8601, NaN and infinities as the strings PROV-JSON uses."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("INF" if value > 0 else "-INF")
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a NumPy scalar
        return jsonable(value.item())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def print_json(value: Any) -> None:
    print(json.dumps(jsonable(value), indent=2, allow_nan=False))


def print_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_csv_cell(v) for v in r])
    sys.stdout.write(buf.getvalue())


def _csv_cell(value: Any) -> Any:
    """A CSV cell: booleans as JSON writes them (``true``), floats exactly (repr), times as ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return fmt(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return value


def progress(items: Sequence[T], description: str) -> Iterator[T]:
    """Iterate ``items``; on a terminal, a progress bar on stderr appears once this takes over a second."""
    if not sys.stderr.isatty() or len(items) < 2:
        yield from items
        return
    start = time.monotonic()
    bar = task = None
    try:
        for i, item in enumerate(items):
            if bar is None and time.monotonic() - start > PROGRESS_AFTER_S:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeRemainingColumn(), console=Console(stderr=True), transient=True)
                bar.start()
                task = bar.add_task(description, total=len(items), completed=i)
            yield item
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()


@contextlib.contextmanager
def steps(description: str) -> Iterator[Callable[[int, int], None]]:
    """A ``step(done, total)`` callback; on a terminal, a progress bar on stderr once the work takes over a second."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    start = time.monotonic()
    state: Dict[str, Any] = {}

    def step(done: int, total: int) -> None:
        if "bar" not in state:
            if time.monotonic() - start < PROGRESS_AFTER_S:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            state["bar"] = bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                          TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            bar.start()
            state["task"] = bar.add_task(description, total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        yield step
    finally:
        if "bar" in state:
            state["bar"].stop()


@contextlib.contextmanager
def busy(message: str) -> Iterator[None]:
    """A spinner on stderr (terminal only) for one long call, shown once it has taken over a second."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    done = threading.Event()
    status: List[Any] = []

    def show() -> None:
        if not done.wait(PROGRESS_AFTER_S):
            status.append(Console(stderr=True).status(message))
            status[0].start()

    timer = threading.Thread(target=show, daemon=True)
    timer.start()
    try:
        yield
    finally:
        done.set()
        timer.join()
        if status:
            status[0].stop()
