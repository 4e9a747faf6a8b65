"""A metric key that is a str subclass (accepted by log_metric) which pickle cannot import (defined in a function,
or an unpicklable subclass) makes every state refresh and end_run fail with PicklingError: end_run raises, the
run is not finished. Both paths (C and PROV4ML_PURE_PYTHON=1).
Expected: the key is recorded as the plain string it equals (or refused by log_metric). """
import glob, sys, tempfile
import prov4ml


def main():
    class Name(str):  # e.g. a torchmetrics/hydra-style str subclass defined locally
        pass

    d = tempfile.mkdtemp()
    prov4ml.start_run("www.example.org", "exp", d, capture=False)
    prov4ml.log_metric(Name("loss"), 1.0, "training", 0)
    try:
        prov4ml.end_run()
        print("end_run ok")
    except Exception as exc:
        print("end_run raised", type(exc).__name__, str(exc)[:120])
    print("active run after end_run:", prov4ml.active_run())
    print("files:", sorted(p[len(d):] for p in glob.glob(f"{d}/**/*", recursive=True)))


main()
