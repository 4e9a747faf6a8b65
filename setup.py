"""The one thing pyproject.toml cannot say: the optional C extension of the metrics (the hot path
of log_metric, the sink's row formatting).

Where it cannot be built (no compiler), the install goes on and log_metric
takes its pure-Python path (``prov4ml.metrics.hotpath.WHY`` says why), as the
sink does for its rows.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("prov4ml.metrics._hot", ["prov4ml/metrics/_hot.c"], depends=["prov4ml/metrics/ryu.h"],
                             optional=True)])
