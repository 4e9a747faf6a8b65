"""New points of a metric file since a byte offset: what the live plots poll.

A CSV metric file only grows while its run goes on (the writer appends whole
lines), so a reader that remembers how far it read needs only the bytes past
that offset. A line not yet ended by a newline is left for the next read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

__all__ = ["Chunk", "read_new"]

_HEADER = re.compile(rb"^step(.)value\1time\r?$")


@dataclass
class Chunk:
    """Points read from one file: ``offset`` is where the next read starts.

    ``reset`` is true when the file is shorter than the offset asked for (it was
    rewritten, e.g. by ``prov4ml recover``): the points are then the whole file.
    ``more`` is true when the read stopped at its byte limit before the end.
    """

    offset: int
    reset: bool = False
    more: bool = False
    step: List[Optional[int]] = field(default_factory=list)
    value: List[Optional[float]] = field(default_factory=list)
    time: List[Optional[float]] = field(default_factory=list)


def read_new(path: Path, offset: int = 0, limit: Optional[int] = None) -> Chunk:
    """The complete lines of the metric CSV ``path`` from byte ``offset`` on (0: the whole file),
    at most ``limit`` bytes of them (None: to the end; at least one line is read).

    A missing file reads as no points at ``offset`` 0 (a series not flushed yet).
    Values that are not numbers (``nan``, ``inf`` are numbers) read as None.
    """
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            reset = offset > size
            if reset:
                offset = 0
            fh.seek(0)
            header = fh.readline()
            m = _HEADER.match(header.rstrip(b"\n"))
            if m is None:  # not a metric file yet (the header is written with the first points)
                return Chunk(offset=0, reset=reset)
            offset = max(offset, len(header))
            fh.seek(offset)
            want = size - offset if limit is None else min(size - offset, limit)
            data = fh.read(want)
            end = data.rfind(b"\n") + 1  # only whole lines: the writer may be half-way through one
            if end == 0 and want < size - offset:  # one line longer than the limit
                data += fh.readline()
                end = len(data) if data.endswith(b"\n") else 0
    except FileNotFoundError:
        return Chunk(offset=0, reset=offset > 0)
    chunk = Chunk(offset=offset + end, reset=reset, more=offset + end < size and end > 0 and want < size - offset)
    sep = m.group(1)
    for line in data[:end].splitlines():
        cells = line.split(sep)
        if len(cells) != 3:
            continue
        step, value, time = _step(cells[0]), _number(cells[1]), _number(cells[2])
        chunk.step.append(step)
        chunk.value.append(value)
        chunk.time.append(time)
    return chunk


def _step(cell: bytes) -> Optional[int]:
    """A step as the file holds it (a step beyond 2**53 stays exact); None when it is not a whole number."""
    try:
        return int(cell)
    except ValueError:
        number = _number(cell)
        return int(number) if number is not None and math.isfinite(number) and number == int(number) else None


def _number(cell: bytes) -> Optional[float]:
    try:
        return float(cell)
    except ValueError:
        return None
