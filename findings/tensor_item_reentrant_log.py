"""A CPU tensor whose item() (under a TorchFunctionMode) logs to the same series: the C path and the
Python path must record the same rows. Run: python findings/_harness.py findings/tensor_item_reentrant_log.py"""
import torch
from torch.overrides import TorchFunctionMode
import prov4ml


class LogInItem(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.item:
            prov4ml.log_metric("loss", -1.0, "training")
            prov4ml.log_metric("loss", -2.0, "training")
        return func(*args, **(kwargs or {}))


def body(lm, out):
    for i in range(1000):  # past the small-int cache, so the series' counter is a fresh int object
        lm("loss", float(i), "training")
    t = torch.tensor(5.0)
    lm("loss", t, "training")  # warm up: the C path learns torch.Tensor
    with LogInItem():
        lm("loss", t, "training")
    lm("loss", 7.0, "training")
    lm("loss", 8.0, "training")
