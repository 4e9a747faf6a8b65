"""While a run is active prov4ml.log_metric is a HotPath object: introspection differs from the pure path
(a bound method). inspect.signature matches; these do not:
  help()/pydoc shows 'class HotPath' with use()/tick()/countdown/cursor, not log_metric's signature and doc;
  __name__, __qualname__, __self__ raise AttributeError; weakref.ref() raises TypeError; copy.copy() raises
  TypeError (the pure path returns the method). pickle.dumps raises TypeError on both paths.
Run with and without PROV4ML_PURE_PYTHON=1: cd /work/wt/attack && PYTHONPATH=. python findings/hotpath_introspection_differs.py"""
import copy, pickle, pydoc, tempfile, weakref
import prov4ml

prov4ml.start_run("www.example.org", "exp", tempfile.mkdtemp(), capture=False)
lm = prov4ml.log_metric
print("help:", pydoc.render_doc(lm, renderer=pydoc.plaintext).splitlines()[:3])
for name, f in (("__name__", lambda: lm.__name__), ("__qualname__", lambda: lm.__qualname__),
                ("__self__", lambda: type(lm.__self__).__name__), ("weakref", lambda: weakref.ref(lm) is not None),
                ("copy.copy", lambda: type(copy.copy(lm)).__name__), ("pickle", lambda: len(pickle.dumps(lm)))):
    try:
        print(name, "->", f())
    except Exception as exc:
        print(name, "raises", type(exc).__name__, exc)
prov4ml.end_run()
