"""``python -m prov4ml.convert``: PROV-JSON to PROV-N, PROV-XML, Turtle or TriG; the code is :mod:`prov4ml.provenance.convert`.

Importing this module gives that one, so both paths name the same functions.
"""

import sys

from .provenance import convert as _impl

if __name__ == "__main__":
    sys.exit(_impl.main())
sys.modules[__name__] = _impl
