"""For code written for yProv4ML: ``MetricInfo`` (a read-only view of one metric series) at its old import path."""

from ..compat.datamodel import MetricInfo

__all__ = ["MetricInfo"]
