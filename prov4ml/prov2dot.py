"""``python -m prov4ml.prov2dot``: PROV-JSON to Graphviz DOT; the code is :mod:`prov4ml.provenance.dot`.

Importing this module gives that one, so both paths name the same functions.
"""

import sys

from .provenance import dot as _impl

if __name__ == "__main__":
    sys.exit(_impl.main())
sys.modules[__name__] = _impl
