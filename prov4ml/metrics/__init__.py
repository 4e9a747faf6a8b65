"""Metric series: samplers, folds, buffers and the background writer."""
