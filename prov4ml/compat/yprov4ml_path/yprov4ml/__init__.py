"""``import yprov4ml`` in a process started by one that opted in: prov4ml, under yProv4ML's name.

Its folder (``prov4ml.compat.alias.ALIAS_PATH``) is on ``PYTHONPATH`` after
``install_yprov4ml_alias()`` or under ``run_as_yprov4ml``, so spawned
children, dask workers and torchrun ranks find this package; it replaces
itself with prov4ml (or with a real yprov4ml, if one is installed).
"""

import sys

from prov4ml.compat import alias as _alias

sys.modules[__name__] = _alias.imported_in_child()
