"""Run a scenario under the C path and the pure-Python path; print both outcomes and whether they differ.

usage: python findings/_harness.py scenario.py   (the scenario defines body(lm, out) and may define SETUP kwargs)
"""
import json, os, subprocess, sys, tempfile

RUNNER = r"""
import json, sys, glob, os
sys.path.insert(0, os.path.dirname(sys.argv[2]))
import prov4ml
ns = {}
exec(open(sys.argv[2]).read(), ns)
out = {"events": []}
prov4ml.start_run("www.example.org", "exp", sys.argv[1], capture=False, **ns.get("SETUP", {}))
out["kind"] = type(prov4ml.log_metric).__name__
try:
    ns["body"](prov4ml.log_metric, out)
except Exception as exc:
    out["events"].append(f"body raised {type(exc).__name__}: {exc}")
if prov4ml.active_run() is not None:
    prov4ml.end_run()
rows = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "**", "metrics", "*.csv"), recursive=True)):
    lines = open(path).read().splitlines()[1:]
    rows[os.path.basename(path)] = [line.rsplit(",", 1)[0] for line in lines]
out["rows"] = rows
print("@@" + json.dumps(out, default=repr))
"""

def run(scenario, pure):
    d = tempfile.mkdtemp(prefix="p4ml_")
    env = dict(os.environ, PROV4ML_PURE_PYTHON="1" if pure else "0", PYTHONPATH="/work/wt/attack")
    p = subprocess.run([sys.executable, "-c", RUNNER, d, os.path.abspath(scenario)], capture_output=True, text=True,
                       env=env, cwd="/work/wt/attack", timeout=600)
    lines = [l for l in p.stdout.splitlines() if l.startswith("@@")]
    if p.returncode != 0 or not lines:
        return {"rc": p.returncode, "stderr": p.stderr[-2000:]}
    return json.loads(lines[-1][2:])

if __name__ == "__main__":
    c, py = run(sys.argv[1], False), run(sys.argv[1], True)
    for name, r in (("C", c), ("PURE", py)):
        short = dict(r, rows={k: (v if len(v) <= 20 else ["..."] + v[-12:]) for k, v in r.get("rows", {}).items()})
        print(f"--- {name}:", json.dumps(short, indent=None))
    for k in sorted(set(c.get("rows", {})) | set(py.get("rows", {}))):
        a, b = c.get("rows", {}).get(k), py.get("rows", {}).get(k)
        if a != b:
            i = next((j for j in range(min(len(a or []), len(b or []))) if a[j] != b[j]), min(len(a or []), len(b or [])))
            print(f"rows differ in {k} from row {i}: C {(a or [])[i:i+8]} / PURE {(b or [])[i:i+8]} (lengths {len(a or [])}, {len(b or [])})")
    print("SAME" if {k: v for k, v in c.items() if k != "kind"} == {k: v for k, v in py.items() if k != "kind"} else "DIFFERENT")
