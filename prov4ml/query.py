"""``python -m prov4ml.query``: SPARQL over an experiment's provenance; the code is :mod:`prov4ml.provenance.query`.

Importing this module gives that one, so both paths name the same functions.
"""

import sys

from .provenance import query as _impl

if __name__ == "__main__":
    sys.exit(_impl.main())
sys.modules[__name__] = _impl
