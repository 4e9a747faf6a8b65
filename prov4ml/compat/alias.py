"""``import yprov4ml`` on prov4ml, for code written for yProv4ML that cannot be edited: an explicit opt-in.

    python -m prov4ml.compat.run_as_yprov4ml train.py --epochs 3

or, in a ``sitecustomize.py`` / ``conftest.py`` / a launcher::

    import prov4ml.compat
    prov4ml.compat.install_yprov4ml_alias()

Afterwards ``import yprov4ml`` (and ``yprov4ml.constants``,
``yprov4ml.utils.getters`` ...) imports prov4ml (``prov4ml.constants`` ...).
Nothing happens without that call: a real ``yprov4ml`` installation is never
shadowed. When one is importable, the call warns and installs nothing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Optional

__all__ = ["install_yprov4ml_alias", "uninstall_yprov4ml_alias", "ALIAS"]

ALIAS = "yprov4ml"
TARGET = "prov4ml"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def create_module(self, spec):  # the prov4ml module itself, so both names share one state
        return self.module

    def exec_module(self, module) -> None:
        """Already executed under its prov4ml name."""


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``yprov4ml[.x]`` as the already imported (or importable) ``prov4ml[.x]``."""

    def find_spec(self, fullname: str, path=None, target=None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        module = importlib.import_module(TARGET + fullname[len(ALIAS):])
        is_package = hasattr(module, "__path__")
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module), is_package=is_package)


def _installed() -> Optional[_AliasFinder]:
    return next((f for f in sys.meta_path if isinstance(f, _AliasFinder)), None)


def install_yprov4ml_alias() -> bool:
    """For code written for yProv4ML: make ``import yprov4ml`` import prov4ml; returns whether it did.

    Refuses (a warning, ``False``) when a real ``yprov4ml`` is importable, so
    an installed yProv4ML keeps running as itself.
    """
    if _installed() is not None:
        return True
    loaded = sys.modules.get(ALIAS)
    try:
        real = loaded is not None or importlib.util.find_spec(ALIAS) is not None
    except (ImportError, ValueError):
        real = True  # something named yprov4ml is there, broken or not: leave it alone
    if real:
        where = getattr(loaded, "__file__", None) or getattr(importlib.util.find_spec(ALIAS), "origin", "?")
        warnings.warn(
            f"install_yprov4ml_alias(): a real yprov4ml is installed ({where}); `import yprov4ml` keeps importing it. "
            "Uninstall it (pip uninstall yprov4ml) to run this code on prov4ml.",
            stacklevel=2,
        )
        return False
    sys.meta_path.insert(0, _AliasFinder())
    return True


def uninstall_yprov4ml_alias() -> None:
    """Undo :func:`install_yprov4ml_alias` (modules imported as ``yprov4ml`` are forgotten)."""
    finder = _installed()
    if finder is not None:
        sys.meta_path.remove(finder)
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]
