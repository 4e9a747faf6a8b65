"""type(prov4ml.log_metric)() makes a HotPath whose fields are NULL; calling it (or its tick()) dereferences NULL.
Expected: a TypeError (or the type refusing to be made without its arguments). Happened: SIGSEGV."""
import sys
from prov4ml.metrics._hot import HotPath

hot = HotPath.__new__(HotPath)  # tp_new without __init__: slow, on_zero, by_context are NULL
which = sys.argv[1] if len(sys.argv) > 1 else "call"
if which == "call":
    hot("loss", 1.0)     # not recording -> "slow" -> PyObject_Vectorcall(NULL, ...)
elif which == "tick":
    hot.tick()           # countdown 0 -> PyObject_CallNoArgs(NULL)
elif which == "badinit":
    class NoSlots:  # __init__ fails half-way (series_type without the slots): same NULL fields
        pass
    try:
        HotPath.__init__(hot, {}, print, print, NoSlots, 5)
    except Exception as exc:
        print("init refused:", exc)
    hot("loss", 1.0)
print("survived")

# Hardening in the same commit (no crash observed, see the report): a failed re-__init__ of a live HotPath left
# the slot offsets of the other type behind while keeping MetricSeries as the series type.
