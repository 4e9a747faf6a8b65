"""The new points of a metric file since a byte offset: :mod:`prov4ml.runs.tail` (kept for code that imports it here)."""

from ..runs.tail import Chunk, read_new

__all__ = ["Chunk", "read_new"]
