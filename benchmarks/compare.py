"""Side by side, in one invocation: what recording costs a real training loop, prov4ml against
the tools users would pick instead (TensorBoard, MLflow), and per call.

    python benchmarks/compare.py [--steps 2000 8000] [--repeats 5] [--quick]

The loop: an MLP 784-256-10, batch 64, SGD, on CPU with torch.set_num_threads(1),
logging 5 metrics per step (loss, accuracy, lr, grad norm, step time), or 1.
Each tool runs in its own fresh process; inside it, each repeat starts the
tool, then alternates blocks of 100 bare steps and 100 logged steps (in turn
bare first and logged first), so each logged block is compared with the bare
block beside it on a machine whose speed drifts. "loop" is the median of those
paired ratios over all repeats, with their interquartile range; "total" is the
median over repeats of logged time / bare time.
"end to end" adds the tool's start and final drain (start_run and end_run,
SummaryWriter and close, the MLflow run). "first 100 steps" compares the 100
steps right after the tool starts with 100 bare steps. Peers are optional:
`pip install "prov4ml[bench]"`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the "local file store" of the comparison

TOOLS = {
    "no tool, 3 .item() a step": "items",  # the floor: what converting loss, accuracy, grad norm costs any tool
    "prov4ml, floats": "prov4ml_floats",
    "prov4ml, tensors": "prov4ml_tensors",
    "prov4ml, 1 metric/step": "prov4ml_one",
    "TensorBoard": "tensorboard",
    "MLflow log_metrics": "mlflow_sync",
    "MLflow async": "mlflow_async",
}


# --------------------------------------------------------------------------- the child's side
def _setup():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    xs = torch.randn(64 * 32, 784)
    ys = torch.randint(0, 10, (64 * 32,))
    return torch, model, opt, xs, ys


def _loop(steps, log, torch, model, opt, xs, ys):
    """Train ``steps`` steps, calling ``log(step, loss, acc, lr, grad_norm, step_time)``; returns seconds."""
    lr = opt.param_groups[0]["lr"]
    clock = time.perf_counter
    start = clock()
    for i in range(steps):
        t0 = clock()
        k = (i % 32) * 64
        x, y = xs[k:k + 64], ys[k:k + 64]
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)
        opt.step()
        acc = (out.argmax(1) == y).float().mean()
        if log is not None:
            log(i, loss, acc, lr, gn, clock() - t0)
    return clock() - start


def prov4ml_calls(name, lm, ctx):
    """The log function of a prov4ml variant (5 floats, 5 with tensors, or 1 metric a step), calling ``lm``."""
    if name == "prov4ml_floats":
        def log(i, loss, acc, lr, gn, dt):
            lm("loss", loss.item(), ctx, i)
            lm("accuracy", acc.item(), ctx, i)
            lm("lr", lr, ctx, i)
            lm("grad_norm", gn.item(), ctx, i)
            lm("step_time", dt, ctx, i)
    elif name == "prov4ml_tensors":
        def log(i, loss, acc, lr, gn, dt):
            lm("loss", loss.detach(), ctx, i)
            lm("accuracy", acc, ctx, i)
            lm("lr", lr, ctx, i)
            lm("grad_norm", gn, ctx, i)
            lm("step_time", dt, ctx, i)
    else:
        def log(i, loss, acc, lr, gn, dt):
            lm("loss", loss.item(), ctx, i)
    return log


def _tool(name, out_dir, **prov4ml_options):
    """(log function, close function) for one tool; ``prov4ml_options`` go to ``start_run``."""
    if name == "items":
        def log(i, loss, acc, lr, gn, dt):
            loss.item()
            acc.item()
            gn.item()
        return log, lambda: None
    if name.startswith("prov4ml"):
        import prov4ml

        prov4ml.start_run("www.example.org", "bench", str(out_dir), **{"capture": True, **prov4ml_options})
        return prov4ml_calls(name, prov4ml.log_metric, prov4ml.Context.TRAINING), prov4ml.end_run
    if name == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        w = SummaryWriter(str(out_dir))

        def log(i, loss, acc, lr, gn, dt):
            w.add_scalar("loss", loss.item(), i)
            w.add_scalar("accuracy", acc.item(), i)
            w.add_scalar("lr", lr, i)
            w.add_scalar("grad_norm", gn.item(), i)
            w.add_scalar("step_time", dt, i)
        return log, w.close
    if name.startswith("mlflow"):
        import mlflow

        mlflow.set_tracking_uri(Path(out_dir).resolve().as_uri())
        mlflow.set_experiment("bench")
        mlflow.start_run()
        sync = name == "mlflow_sync"

        def log(i, loss, acc, lr, gn, dt):
            mlflow.log_metrics({"loss": loss.item(), "accuracy": acc.item(), "lr": lr, "grad_norm": gn.item(),
                                "step_time": dt}, step=i, synchronous=sync)
        return log, mlflow.end_run
    raise ValueError(name)


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def child(name: str, steps: int, repeats: int, block: int = 100) -> dict:
    """Bare and logged blocks of ``block`` steps, alternating, ``steps`` logged steps in all, per repeat.

    Every logged block is paired with the bare block just before it, so the
    machine's drift cancels out; the tool runs (threads, processes) during
    both, as it would during a user's un-logged work.
    """
    torch, model, opt, xs, ys = _setup()
    args = (torch, model, opt, xs, ys)
    _loop(300, None, *args)  # warm up the kernels and the allocator
    results = {"bare": [], "tool": [], "pairs": [], "end": [], "start": [], "first100_bare": [], "first100_tool": [],
               "disk": 0, "points": 0}
    per_step = 1 if name == "prov4ml_one" else 5
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            results["first100_bare"].append(_loop(100, None, *args))
            t = time.perf_counter()
            log, close = _tool(name, Path(tmp))
            results["start"].append(time.perf_counter() - t)
            results["first100_tool"].append(_loop(100, log, *args))  # start-up work must not stall these
            bare = tool = 0.0
            for k in range(max(steps // block, 1)):
                if k % 2:
                    t = _loop(block, log, *args)
                    b = _loop(block, None, *args)
                else:
                    b = _loop(block, None, *args)
                    t = _loop(block, log, *args)
                bare += b
                tool += t
                results["pairs"].append(t / b)
            results["bare"].append(bare)
            results["tool"].append(tool)
            t = time.perf_counter()
            close()
            results["end"].append(time.perf_counter() - t)
            results["disk"] = _disk(Path(tmp))
            results["points"] = (max(steps // block, 1) * block + 100) * per_step
    results["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def micro(n: int) -> dict:
    """µs per call of each logging call, in one process."""
    import torch

    torch.set_num_threads(1)
    out = {}
    sink = []
    append = sink.append
    t = time.perf_counter()
    for i in range(n):
        append((i, 0.5))
    out["bare list.append"] = (time.perf_counter() - t) / n * 1e6
    import prov4ml

    with tempfile.TemporaryDirectory() as tmp:
        prov4ml.start_run("www.example.org", "micro", tmp, capture=False)
        lm, ctx = prov4ml.log_metric, prov4ml.Context.TRAINING
        t = time.perf_counter()
        for i in range(n):
            lm("loss", 0.5, ctx, i)
        out["prov4ml log_metric(float)"] = (time.perf_counter() - t) / n * 1e6
        v = torch.tensor(0.5)
        t = time.perf_counter()
        for i in range(n):
            lm("tensor", v, ctx, i)
        out["prov4ml log_metric(CPU tensor)"] = (time.perf_counter() - t) / n * 1e6
        t = time.perf_counter()
        for i in range(n):
            v.item()
        out["(tensor.item() alone)"] = (time.perf_counter() - t) / n * 1e6
        prov4ml.end_run()
    try:
        from torch.utils.tensorboard import SummaryWriter

        with tempfile.TemporaryDirectory() as tmp:
            w = SummaryWriter(tmp)
            t = time.perf_counter()
            for i in range(n):
                w.add_scalar("loss", 0.5, i)
            out["TensorBoard add_scalar"] = (time.perf_counter() - t) / n * 1e6
            w.close()
    except ImportError as exc:
        out["TensorBoard add_scalar"] = f"not measured: {exc}"[:80]
    try:
        import mlflow

        with tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tracking_uri(Path(tmp).resolve().as_uri())
            mlflow.set_experiment("micro")
            with mlflow.start_run():
                k = max(n // 200, 50)  # MLflow is slow per call: fewer calls
                t = time.perf_counter()
                for i in range(k):
                    mlflow.log_metric("loss", 0.5, step=i)
                out["MLflow log_metric"] = (time.perf_counter() - t) / k * 1e6
                from mlflow.entities import Metric

                client = mlflow.tracking.MlflowClient()
                run_id = mlflow.active_run().info.run_id
                t = time.perf_counter()
                for i in range(k):
                    client.log_batch(run_id, metrics=[Metric("loss", 0.5, 0, i)])
                out["MLflow log_batch (1 metric)"] = (time.perf_counter() - t) / k * 1e6
    except Exception as exc:  # not installed, or refusing the local store
        out["MLflow log_metric"] = out["MLflow log_batch (1 metric)"] = f"not measured: {exc}"[:80]
    return out


# --------------------------------------------------------------------------- the parent's side
def _run_child(name: str, steps: int, repeats: int):
    code = f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import compare; " \
           f"print(json.dumps(compare.child({name!r}, {steps}, {repeats})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ["?"]
        return None, tail[0]
    return json.loads(out.stdout.strip().splitlines()[-1]), None


def _ratios(r: dict, key: str):
    return [t / b for t, b in zip(r[key], r["bare"] if key != "first100_tool" else r["first100_bare"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one short size, 3 repeats")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS.values()), help=f"subset of {list(TOOLS.values())}")
    parser.add_argument("--slow-steps", type=int, nargs="+", default=[2000],
                        help="the sizes for MLflow, whose repeats take minutes at 8,000 steps (default 2000)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = [1000], 3
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}")
    print("\nTraining loop (MLP 784-256-10, batch 64, CPU, 1 thread): time with the tool / time without;\n"
          "loop: median of paired 100-step blocks [interquartile range]; the others: median over repeats [min-max]")
    header = (f"{'tool':<26}{'steps':>7}{'loop':>24}{'total':>24}{'end to end':>24}{'first 100 steps':>24}"
              f"{'B/point':>9}{'peak RSS':>10}")
    print(header)
    print("-" * len(header))
    for label, name in TOOLS.items():
        if name not in args.tools:
            continue
        for steps in (args.slow_steps if name.startswith("mlflow") and not args.quick else args.steps):
            r, err = _run_child(name, steps, args.repeats)
            if r is None:
                print(f"{label:<26}{steps:>7}   not measured: {err[:80]}")
                continue
            total = _ratios(r, "tool")
            e2e = [(t + e + s) / b for t, e, s, b in zip(r["tool"], r["end"], r["start"], r["bare"])]
            first = _ratios(r, "first100_tool")
            cell = lambda xs: f"{(statistics.median(xs) - 1) * 100:+6.2f}% [{(min(xs) - 1) * 100:+.1f},{(max(xs) - 1) * 100:+.1f}]"
            q = statistics.quantiles(r["pairs"], n=4)
            loop = f"{(statistics.median(r['pairs']) - 1) * 100:+6.2f}% [{(q[0] - 1) * 100:+.1f},{(q[2] - 1) * 100:+.1f}]"
            print(f"{label:<26}{steps:>7}{loop:>24}{cell(total):>24}{cell(e2e):>24}{cell(first):>24}"
                  f"{r['disk'] / max(r['points'], 1):>9.1f}{r['rss_mib']:>8.0f}Mi")
        sys.stdout.flush()
    print("\nPer call (µs), one process:")
    figures = micro(200_000)
    bare = figures["bare list.append"]
    for label, us in figures.items():
        print(f"  {label:<32}" + (us if isinstance(us, str) else f"{us:8.3f} µs  ({us / bare:6.1f}x bare)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
