"""For code written for yProv4ML: ``MetricsType`` and ``get_file_type`` at their old import path."""

from ..compat.datamodel import MetricsType, get_file_type

__all__ = ["MetricsType", "get_file_type"]
