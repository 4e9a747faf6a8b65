"""Trial functions for tests/test_cluster.py, in their own module so that Ray and spawned workers import only this."""

import os
import signal

import prov4ml

#: points each trial logs before it returns (or its worker is killed)
POINTS = 40


def train(config):
    """Logs ``POINTS`` losses; a config with ``crash`` kills its own worker with SIGKILL after them."""
    for step in range(POINTS):
        prov4ml.log_metric("loss", config["x"] * 1000 + step, prov4ml.Context.TRAINING, step=step)
    if config.get("crash"):
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer or a lost node does to a worker
    if config.get("fail"):
        raise RuntimeError(f"trial x={config['x']} diverged")
    return config["x"] * 2.0


def flaky(config):
    """Fails the first time a trial runs (a file under ``config['flag_dir']`` remembers it), then succeeds."""
    flag = os.path.join(config["flag_dir"], f"x{config['x']}")
    prov4ml.log_metric("loss", float(config["x"]), prov4ml.Context.TRAINING, step=0)
    if not os.path.exists(flag):
        open(flag, "w").close()
        if config.get("crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("first attempt fails")
    return float(config["x"])
