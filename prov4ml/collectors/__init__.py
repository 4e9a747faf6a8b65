"""Optional measurements: system, carbon, FLOPs, environment, model and dataset inspection.

Each module imports its dependency only when called and reports what is not
available instead of failing."""
