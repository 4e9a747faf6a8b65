"""Optional dependencies: a cached availability check, the import inside the feature."""

from __future__ import annotations

import importlib
import importlib.util
from functools import lru_cache
from types import ModuleType

from .exceptions import MissingDependencyError


@lru_cache(maxsize=None)
def available(module: str) -> bool:
    """True when ``module`` can be imported (checked once, without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise an error naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the '{module}' package, which is not installed. "
            f'Install it with: pip install "prov4ml[{extra}]"'
        ) from exc
