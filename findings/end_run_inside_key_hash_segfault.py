"""A key whose __hash__ ends the run (any Python code run inside the C path's dict lookups may): the C path
checked 'recording' and its cursor before the lookups only, then dereferenced the cursor end_run had dropped.
Expected: RunStateError (as PROV4ML_PURE_PYTHON=1 gives). Happened: SIGSEGV.
Run: cd /work/wt/attack && PYTHONPATH=. python findings/end_run_inside_key_hash_segfault.py"""
import tempfile
import prov4ml

armed = []


class Key(str):
    def __hash__(self):
        if armed:
            armed.clear()
            prov4ml.end_run()
        return str.__hash__(self)

    __eq__ = str.__eq__


prov4ml.start_run("www.example.org", "exp", tempfile.mkdtemp(), capture=False)
k = Key("loss")
prov4ml.log_metric(k, 1.0, "training", 0)  # the series exists
lm = prov4ml.log_metric
armed.append(1)
try:
    lm(k, 2.0, "training", 1)
    print("returned")
except Exception as exc:
    print("raised", type(exc).__name__, exc)
