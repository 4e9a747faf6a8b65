"""How long ``log_dataset`` of a big file-backed dataset takes, and its full digest after.

    python benchmarks/dataset_digest.py [--gib 10] [--dir /tmp/prov4ml_dataset]

Makes a ``--gib`` GiB file (sparse: its blocks read as zeros, so it costs no
disk), then in a run: the wall time of ``log_dataset("train", path)`` (the
sampled digest, at the call), the time ``end_run`` waited for the SHA-256 of
every byte (computed off the training thread since the call), and the same
for a second run, whose full digest comes from the per-machine cache.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import prov4ml
from prov4ml import runs


def one_run(save_dir: Path, path: Path) -> tuple:
    run = prov4ml.start_run("www.example.org", "digest", str(save_dir), capture=False)
    t0 = time.perf_counter()
    prov4ml.log_dataset("train", str(path))
    call = time.perf_counter() - t0
    t0 = time.perf_counter()
    prov4ml.end_run()
    ending = time.perf_counter() - t0
    (dataset,) = runs.read_run(run.run_dir).datasets
    return call, ending, dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=10.0)
    parser.add_argument("--dir", default="/tmp/prov4ml_dataset")
    args = parser.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")  # a machine that has never seen the file
    path = root / "train.bin"
    path.unlink(missing_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(int(args.gib * (1 << 30)))
    for label in ("first run", "second run (cached)"):
        call, ending, dataset = one_run(root / "prov", path)
        print(f"{label}: log_dataset of {args.gib:g} GiB took {call * 1000:.1f} ms; end_run took {ending:.2f} s "
              f"(waiting for the full digest); sha256 {dataset['sha256'][:16]}..., {dataset['size_bytes']:,} bytes")
    path.unlink()


if __name__ == "__main__":
    main()
