"""``import yprov4ml`` on prov4ml, for code written for yProv4ML that cannot be edited: an explicit opt-in.

    python -m prov4ml.compat.run_as_yprov4ml train.py --epochs 3

or, in a ``sitecustomize.py`` / ``conftest.py`` / a launcher::

    import prov4ml.compat
    prov4ml.compat.install_yprov4ml_alias()

Afterwards ``import yprov4ml`` (and ``yprov4ml.constants``,
``yprov4ml.utils.getters`` ...) imports prov4ml (``prov4ml.constants`` ...),
in this process and in every process it starts: spawn and forkserver
children, ``multiprocessing`` pools, dask workers, torchrun ranks,
subprocesses running Python. Those inherit it through the environment: the
folder :data:`ALIAS_PATH`, which holds a ``yprov4ml`` package of one line,
is put first on ``PYTHONPATH``; a child that imports ``yprov4ml`` imports that
package, which installs the alias there and hands back prov4ml. Processes
started otherwise (another shell, a cluster scheduler's fresh environment)
get it by putting :data:`ALIAS_PATH` on their ``PYTHONPATH`` themselves.

Nothing happens without the opt-in: a real ``yprov4ml`` installation is
never shadowed. When one is importable, the call warns and installs nothing,
and the ``yprov4ml`` of :data:`ALIAS_PATH` imports the real one instead.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from types import ModuleType
from typing import Optional

__all__ = ["install_yprov4ml_alias", "uninstall_yprov4ml_alias", "ALIAS", "ALIAS_PATH"]

ALIAS = "yprov4ml"
TARGET = "prov4ml"
#: The folder that, on ``PYTHONPATH``, makes ``import yprov4ml`` import prov4ml in any process.
ALIAS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "yprov4ml_path")


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


def _real_spec() -> Optional[importlib.machinery.ModuleSpec]:
    """The spec of an installed yprov4ml: found by the import system, leaving out the alias and its folder."""
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != ALIAS_PATH]
    for finder in sys.meta_path:
        if isinstance(finder, _AliasFinder) or not hasattr(finder, "find_spec"):
            continue
        on_path = finder is importlib.machinery.PathFinder
        spec = finder.find_spec(ALIAS, path) if on_path else finder.find_spec(ALIAS, None)
        if spec is not None:
            return spec
    return None


def _real_yprov4ml() -> Optional[str]:
    """Where a real yprov4ml is (loaded or importable), or None."""
    loaded = sys.modules.get(ALIAS)
    if loaded is not None and loaded is not sys.modules.get(TARGET):
        return getattr(loaded, "__file__", None) or "?"
    try:
        spec = _real_spec()
    except (ImportError, ValueError):
        return "?"  # something named yprov4ml is there, broken or not: leave it alone
    return None if spec is None else (spec.origin or "?")


def _pythonpath() -> list:
    value = os.environ.get("PYTHONPATH", "")
    return value.split(os.pathsep) if value else []


def _export_to_children() -> None:
    """Put :data:`ALIAS_PATH` on ``PYTHONPATH`` (the processes this one starts) and on ``sys.path`` (spawn and
    forkserver children take the parent's ``sys.path`` as it is); here the alias's finder comes first anyway."""
    paths = _pythonpath()
    if paths[:1] != [ALIAS_PATH]:
        os.environ["PYTHONPATH"] = os.pathsep.join([ALIAS_PATH, *(p for p in paths if p != ALIAS_PATH)])
    if ALIAS_PATH not in sys.path:
        sys.path.append(ALIAS_PATH)


def install_yprov4ml_alias(children: bool = True) -> bool:
    """For code written for yProv4ML: make ``import yprov4ml`` import prov4ml; returns whether it did.

    With ``children`` (the default), the processes this one starts from now
    on import it so too (the environment's ``PYTHONPATH``; see the module
    docstring); ``children=False`` keeps it to this process. Refuses (a
    warning, ``False``) when a real ``yprov4ml`` is importable, so an
    installed yProv4ML keeps running as itself.
    """
    if _installed() is None:
        where = _real_yprov4ml()
        if where is not None:
            warnings.warn(
                f"install_yprov4ml_alias(): a real yprov4ml is installed ({where}); `import yprov4ml` keeps importing "
                "it. Uninstall it (pip uninstall yprov4ml) to run this code on prov4ml.",
                stacklevel=2,
            )
            return False
        sys.meta_path.insert(0, _AliasFinder())
    if children:
        _export_to_children()
    return True


def uninstall_yprov4ml_alias() -> None:
    """Undo :func:`install_yprov4ml_alias` (modules imported as ``yprov4ml`` are forgotten; children started
    from now on do not get the alias)."""
    finder = _installed()
    if finder is not None:
        sys.meta_path.remove(finder)
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        del sys.modules[name]
    while ALIAS_PATH in sys.path:
        sys.path.remove(ALIAS_PATH)
    paths = [p for p in _pythonpath() if p != ALIAS_PATH]
    if paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    else:
        os.environ.pop("PYTHONPATH", None)


def imported_in_child() -> ModuleType:
    """What ``import yprov4ml`` gives in a process that has :data:`ALIAS_PATH` on its path.

    A real yprov4ml, if one is installed (never shadowed); otherwise prov4ml,
    with the alias installed for its submodules. Called by the ``yprov4ml``
    package of :data:`ALIAS_PATH`, which puts the result in its own place.
    """
    spec = _real_spec()
    if spec is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[ALIAS] = module
        spec.loader.exec_module(module)
        return module
    if _installed() is None:
        sys.meta_path.insert(0, _AliasFinder())
    return importlib.import_module(TARGET)
