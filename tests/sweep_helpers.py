"""Trial functions for tests/test_sweep.py, in their own module so spawned workers import only this."""

import os

import prov4ml


def quadratic(config, seed):
    """Logs a short loss curve computed from the config; returns a score and a non-numeric note."""
    for step in range(3):
        prov4ml.log_metric("loss", (config["lr"] - 0.1) ** 2 + config["depth"] / (step + 1), prov4ml.Context.TRAINING, step=step)
    if config.get("fail"):
        raise ValueError(f"diverged at lr={config['lr']}")
    return {"score": config["lr"] * config["depth"], "seed_seen": seed, "note": "not a number", "pid": os.getpid()}


def constant(config):
    return 1.5


def start_a_run(config):
    """Misuse: a run is already active inside a trial."""
    prov4ml.start_run("www.example.org", "nested")


def sleepy(config):
    """Sleeps ``config["sleep"]`` seconds; a trial for sweep(timeout=...)."""
    import time

    time.sleep(config["sleep"])
    return 1.0
