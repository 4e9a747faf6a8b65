"""Previews of a run's artifacts for its page: images inline, the head of text, CSV and JSON files.

Every preview is bounded (``TEXT_BYTES`` read of a text file, ``CSV_ROWS``
rows, ``JSON_BYTES`` parsed) and everything read from a file is HTML-escaped:
an artifact is the run's data, never markup for the page.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Optional

__all__ = ["preview_kind", "preview_html", "IMAGE_SUFFIXES", "TEXT_SUFFIXES", "TEXT_BYTES", "CSV_ROWS", "JSON_BYTES"]

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
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        return "json"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def _head(path: Path, limit: int) -> "tuple[str, bool]":
    """The first ``limit`` bytes of ``path`` as text (invalid UTF-8 replaced), and whether there is more."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def _pre(text: str, cut: bool, cls: str) -> str:
    more = '<p class="muted">… (the first part; the link above serves the whole file)</p>' if cut else ""
    return f'<pre class="{cls}">{html.escape(text)}</pre>{more}'


def _csv(path: Path) -> str:
    text, cut = _head(path, CSV_BYTES)
    lines = text.splitlines()
    if cut and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = list(csv.reader(io.StringIO("\n".join(lines[: CSV_ROWS + 1])), dialect))
    if not rows:
        return '<p class="muted">(empty)</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    shown = len(rows) - 1
    more = f'<p class="muted">the first {shown} rows</p>' if cut or len(lines) > CSV_ROWS + 1 else ""
    return f'<div class="scroll"><table class="csv"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


def _json(path: Path) -> str:
    if path.stat().st_size > JSON_BYTES:
        return _pre(*_head(path, TEXT_BYTES), "text")
    raw = path.read_bytes().decode("utf-8", "replace")
    try:
        pretty = json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError as exc:
        return f'<p class="error">not valid JSON ({html.escape(str(exc))}); its head:</p>' + _pre(raw[:TEXT_BYTES], len(raw) > TEXT_BYTES, "text")
    return _pre(pretty[:JSON_SHOWN], len(pretty) > JSON_SHOWN, "json")


def preview_html(path: Path, url: str) -> str:
    """The preview of the file ``path`` (served at ``url``); empty when its kind has none or it cannot be read."""
    kind = preview_kind(path.name)
    try:
        if kind == "image":
            return f'<img class="preview" src="{html.escape(url)}" alt="{html.escape(path.name)}" loading="eager">'
        if kind == "csv":
            return _csv(path)
        if kind == "json":
            return _json(path)
        if kind == "text":
            return _pre(*_head(path, TEXT_BYTES), "text")
    except OSError as exc:
        return f'<p class="error">cannot read {html.escape(path.name)}: {html.escape(exc.strerror or str(exc))}</p>'
    return ""
