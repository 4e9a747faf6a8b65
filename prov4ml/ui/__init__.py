"""A local web UI over recorded runs, with plots that follow running ones: ``python -m prov4ml.ui [DIR]``.

See :mod:`prov4ml.ui.server` for the pages and JSON endpoints; every script and
style the pages load ships in ``prov4ml/ui/static`` (no network is needed).
"""

from .server import DEFAULT_PORT, UIServer, main, serve

__all__ = ["UIServer", "serve", "main", "DEFAULT_PORT"]
