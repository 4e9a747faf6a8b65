"""For code written for yProv4ML: ``get_run_dir`` and ``get_artifacts_dir`` of the active run."""

from .compat.documents import get_artifacts_dir, get_run_dir

__all__ = ["get_run_dir", "get_artifacts_dir"]
