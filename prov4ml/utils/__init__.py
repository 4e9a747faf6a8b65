"""yProv4ML's ``prov4ml.utils`` package, kept for code written for it: see ``prov4ml.utils.getters``."""
