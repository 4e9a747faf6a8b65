"""``python -m prov4ml.dot2svg``: DOT to SVG with Graphviz; the code is :mod:`prov4ml.provenance.svg`.

Importing this module gives that one, so both paths name the same functions.
"""

import sys

from .provenance import svg as _impl

if __name__ == "__main__":
    sys.exit(_impl.main())
sys.modules[__name__] = _impl
