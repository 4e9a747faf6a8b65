"""Public names whose module imports a heavy optional package, imported on first use.

``prov4ml.ProvMLLogger`` imports Lightning and ``prov4ml.ProvMLItwinAILogger``
itwinai (when installed) only when first touched, so ``import prov4ml`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LAZY", "module_getattr"]

#: public name -> the module that defines it
LAZY = {
    "ProvMLLogger": "prov4ml.compat.lightning",
    "ProvMLItwinAILogger": "prov4ml.integrations.itwinai",
}


def module_getattr(name: str) -> Any:
    """``prov4ml.__getattr__``: a lazy name's object; any other name is missing."""
    try:
        module = LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'prov4ml' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
