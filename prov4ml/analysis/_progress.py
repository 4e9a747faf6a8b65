"""Progress of a long report: a callback, or rich's bar on a terminal, or nothing."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Union

from .._optional import available

#: ``progress(done, total, what)``: called after each step of a report (``done`` of ``total``).
ProgressCallback = Callable[[int, int, str], None]
Progress = Union[None, bool, ProgressCallback]


class Steps:
    """Counts the steps of one piece of work and tells whoever watches."""

    def __init__(self, total: int, callback: Optional[ProgressCallback], bar: Optional[Callable[[str], None]]) -> None:
        self.total, self.done = total, 0
        self._callback, self._bar = callback, bar

    def __call__(self, what: str) -> None:
        self.done += 1
        if self._callback is not None:
            self._callback(self.done, self.total, what)
        if self._bar is not None:
            self._bar(what)


@contextmanager
def steps(progress: Progress, total: int, title: str) -> Iterator[Steps]:
    """``progress``: a callback; ``False`` for none; ``True`` for rich's bar on stderr; ``None`` for
    rich's bar when stderr is a terminal. Without rich installed there is no bar."""
    if callable(progress):
        yield Steps(total, progress, None)
        return
    if progress is False or (progress is None and not _terminal()) or not available("rich"):
        yield Steps(total, None, None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
             console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(title, total=total)
        yield Steps(total, None, lambda what: bar.update(task, advance=1, description=f"{title}: {what}"))


def _terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())
