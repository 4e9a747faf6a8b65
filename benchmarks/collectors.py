"""Collector costs: one SystemSampler.sample(), CarbonMeter's first start and one
measure() after it, one environment capture, one FLOP count.

    python benchmarks/collectors.py [--repeat 200]

Each figure is the median of ``--repeat`` calls (the first-start costs are
measured once, in a fresh interpreter, since codecarbon caches its hardware
detection per process).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_ms(call: Callable[[], object], repeat: int) -> float:
    times: List[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def first_start_in_fresh_process() -> str:
    """Import + first measure() of a CarbonMeter, and the first sample(), in a new interpreter."""
    code = (
        "import time\n"
        "t = time.perf_counter()\n"
        "from prov4ml.collectors.carbon import CarbonMeter\n"
        "m = CarbonMeter()\n"
        "m.measure()\n"
        "carbon = time.perf_counter() - t\n"
        "mode = m.mode\n"
        "m.stop()\n"
        "from prov4ml.collectors.system import SystemSampler\n"
        "t = time.perf_counter()\n"
        "s = SystemSampler(); s.sample()\n"
        "system = time.perf_counter() - t\n"
        "print(carbon * 1000, system * 1000, s.gpu_status, '|', mode, sep='\\t')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from prov4ml.collectors.carbon import CarbonMeter
    from prov4ml.collectors.environment import capture
    from prov4ml.collectors.system import SystemSampler

    carbon_first, system_first, gpu_status, _, mode = first_start_in_fresh_process().split("\t")
    print(f"CarbonMeter first measure() (import codecarbon + start)  {float(carbon_first):8.1f} ms")
    print(f"SystemSampler first sample() (NVML probe)                {float(system_first):8.2f} ms")

    sampler = SystemSampler()
    sampler.sample()
    print(f"SystemSampler.sample()                                   {median_ms(sampler.sample, args.repeat):8.3f} ms")

    meter = CarbonMeter()
    meter.measure()
    print(f"CarbonMeter.measure() after the first                    {median_ms(meter.measure, args.repeat):8.3f} ms")
    meter.stop()

    capture()  # warm importlib.metadata's caches
    print(f"capture() (git, packages, host, command)                 {median_ms(capture, 10):8.1f} ms")
    print(f"capture(packages=False)                                  {median_ms(lambda: capture(packages=False), 10):8.1f} ms")

    try:
        import torch
        from torch import nn

        from prov4ml.collectors.flops import count_batch_flops

        model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 30 * 30, 10))
        batch = torch.randn(8, 3, 32, 32)
        count_batch_flops(model, batch)
        print(f"count_batch_flops(small CNN, batch of 8)                 {median_ms(lambda: count_batch_flops(model, batch), 10):8.1f} ms")
    except ImportError:
        print("count_batch_flops: torch not installed")

    print(f"GPU: {gpu_status}")
    print(f"carbon mode: {mode}")


if __name__ == "__main__":
    main()
