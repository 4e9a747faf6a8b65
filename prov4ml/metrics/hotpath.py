"""Which hot path ``log_metric`` takes: the C one (``_hot.c``) where it is built, else the Python one.

Both record the same points; the C one costs a training loop a fraction of
the Python one (see docs/performance.md). ``PROV4ML_PURE_PYTHON=1`` forces
the Python path (the tests run both). ``cut`` (a plot's cut of a CSV metric
file, for the web UI) comes from the same extension, or is None.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

__all__ = ["Cursor", "HotPath", "WHY", "cut"]

Cursor: Optional[Any] = None
HotPath: Optional[Any] = None
cut: Optional[Any] = None
WHY = ""  # why the C path is off, when it is

if os.environ.get("PROV4ML_PURE_PYTHON", "") not in ("", "0"):
    WHY = "PROV4ML_PURE_PYTHON is set"
elif sys.byteorder != "little":  # the journal's records are little-endian; the C path writes native order
    WHY = "the C hot path writes little-endian records only"
else:
    try:
        from ._hot import Cursor, HotPath, cut  # type: ignore[no-redef]
    except ImportError as exc:
        WHY = f"the C hot path is not built ({exc}); reinstall prov4ml with a C compiler for a faster log_metric"
