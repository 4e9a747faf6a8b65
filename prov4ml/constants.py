"""For code written for yProv4ML: ``PROV4ML_DATA``, now a read-only view of the active run.

See :mod:`prov4ml.compat.datamodel` for its attributes.
"""

from .compat.datamodel import PROV4ML_DATA

__all__ = ["PROV4ML_DATA"]
