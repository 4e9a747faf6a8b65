"""The one thing pyproject.toml cannot say: the optional C hot path of log_metric.

Where it cannot be built (no compiler), the install goes on and log_metric
takes its pure-Python path (``prov4ml.metrics.hotpath.WHY`` says why).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("prov4ml.metrics._hot", ["prov4ml/metrics/_hot.c"], optional=True)])
