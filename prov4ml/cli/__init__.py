"""The ``prov4ml`` console command (also ``python -m prov4ml``); see :mod:`prov4ml.cli.main`."""

from .main import main

__all__ = ["main"]
