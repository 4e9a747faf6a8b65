"""yProv4ML's ``prov4ml.datamodel`` package, kept for code written for it: ``metric_type``, ``metric_data``."""
