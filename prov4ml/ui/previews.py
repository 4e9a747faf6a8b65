"""Previews of a run's artifacts for its page: images inline, the head of text, CSV and JSON files.

Every preview is bounded (``TEXT_BYTES`` read of a text file, ``CSV_ROWS``
rows from at most ``CSV_BYTES``, ``JSON_BYTES`` parsed) and only those bytes
are read: for runs on object storage, by ranged reads from the bucket, so a
50 MB log previews for 16 KiB. Everything read from a file is HTML-escaped:
an artifact is the run's data, never markup for the page.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import PurePosixPath
from typing import Callable, Optional

__all__ = ["preview_kind", "preview_html", "Reader", "IMAGE_SUFFIXES", "TEXT_SUFFIXES", "TEXT_BYTES", "CSV_ROWS", "JSON_BYTES"]

IMAGE_SUFFIXES = frozenset((".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"))
TEXT_SUFFIXES = frozenset((".txt", ".log", ".yaml", ".yml", ".md", ".markdown", ".cfg", ".ini", ".toml", ".out",
                           ".err", ".py", ".sh", ".diff", ".patch"))
TEXT_BYTES = 16 << 10   # of a text file shown; the link serves the whole file
CSV_ROWS = 20           # data rows of a CSV shown under its header
CSV_BYTES = 256 << 10   # read of a CSV for those rows
JSON_BYTES = 256 << 10  # a bigger JSON file is shown as text (its head), not parsed
JSON_SHOWN = 16 << 10   # of the pretty-printed JSON shown


def preview_kind(name: str) -> Optional[str]:
    """``image``, ``csv``, ``json``, ``text`` or None (no preview) for a file named ``name``."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        return "json"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


#: ``read(n)``: the first ``n`` bytes of the file previewed (fewer when it is shorter)
Reader = Callable[[int], bytes]


def _head(read: Reader, limit: int) -> "tuple[str, bool]":
    """The first ``limit`` bytes of the file as text (invalid UTF-8 replaced), and whether there is more."""
    data = read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def _pre(text: str, cut: bool, cls: str) -> str:
    more = '<p class="muted">… (the first part; the link above serves the whole file)</p>' if cut else ""
    return f'<pre class="{cls}">{html.escape(text)}</pre>{more}'


def _csv(read: Reader, tsv: bool) -> str:
    text, cut = _head(read, CSV_BYTES)
    lines = text.splitlines()
    if cut and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    dialect = csv.excel_tab if tsv else csv.excel
    rows = list(csv.reader(io.StringIO("\n".join(lines[: CSV_ROWS + 1])), dialect))
    if not rows:
        return '<p class="muted">(empty)</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    shown = len(rows) - 1
    more = f'<p class="muted">the first {shown} rows</p>' if cut or len(lines) > CSV_ROWS + 1 else ""
    return f'<div class="scroll"><table class="csv"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


def _json(read: Reader) -> str:
    raw_bytes = read(JSON_BYTES + 1)
    if len(raw_bytes) > JSON_BYTES:  # too big to parse: its head, as text
        return _pre(raw_bytes[:TEXT_BYTES].decode("utf-8", "replace"), True, "text")
    raw = raw_bytes.decode("utf-8", "replace")
    try:
        pretty = json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError as exc:
        return f'<p class="error">not valid JSON ({html.escape(str(exc))}); its head:</p>' + _pre(raw[:TEXT_BYTES], len(raw) > TEXT_BYTES, "text")
    return _pre(pretty[:JSON_SHOWN], len(pretty) > JSON_SHOWN, "json")


def preview_html(name: str, url: str, read: Reader) -> str:
    """The preview of the file ``name`` (served at ``url``, its head read by ``read``); empty when its kind
    has none or the file is missing, a short error when it cannot be read."""
    kind = preview_kind(name)
    try:
        if kind == "image":
            return f'<img class="preview" src="{html.escape(url)}" alt="{html.escape(PurePosixPath(name).name)}" loading="eager">'
        if kind == "csv":
            return _csv(read, PurePosixPath(name).suffix.lower() == ".tsv")
        if kind == "json":
            return _json(read)
        if kind == "text":
            return _pre(*_head(read, TEXT_BYTES), "text")
    except FileNotFoundError:  # listed in the document, gone from the run: the table says where it was
        return ""
    except OSError as exc:
        return f'<p class="error">cannot read {html.escape(PurePosixPath(name).name)}: {html.escape(exc.strerror or str(exc))}</p>'
    return ""
