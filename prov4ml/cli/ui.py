"""A local web UI over recorded runs: runs list, live plots of running runs, experiments compared, graphs.

Everything the pages need ships in the package; nothing is fetched from the network.
"""

from ..ui.server import add_arguments, run

__all__ = ["add_arguments", "run"]
