"""``python -m prov4ml.prov_collection``: one collection document for an experiment's runs and ranks; the code is :mod:`prov4ml.provenance.collection`.

Importing this module gives that one, so both paths name the same functions.
"""

import sys

from .provenance import collection as _impl

if __name__ == "__main__":
    sys.exit(_impl.main())
sys.modules[__name__] = _impl
