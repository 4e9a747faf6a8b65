"""A key (a str subclass) or a context whose __hash__ runs Python code: every call that the C path hands to the
Python path after its own dict lookups (a new series, an int / NumPy value, a sampler series, an error) runs
__hash__ once more than the pure-Python path does; a __hash__ that logs therefore records extra points.
Run: python findings/_harness.py findings/key_hash_called_twice_on_python_path_calls.py"""
import numpy as np
from _logging_key import LoggingKey, hashes


def body(lm, out):
    k = LoggingKey("loss")
    lm(k, 1.0, "training")       # a new series
    lm(k, 2.0, "training")       # the C path: one hash, as in Python
    lm(k, 3, "training")         # an int: C looks up, then the Python path looks up again
    lm(k, np.float32(4.0), "training")
    out["hash_calls"] = len(hashes)

# After commit 4ae00ae: SAME. Not fixed: a *context* whose __hash__ is Python code (a user Enum overriding it, an
# invalid context object) is still hashed once more by the C path on calls it hands over (a new series, a sampler's
# series, an invalid context); keeping user Enum contexts on the C path was preferred.
