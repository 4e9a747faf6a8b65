"""A CPU tensor logged when the journal segment is full: the C path converted it with item(), then handed the
tensor to the Python path, which called item() again (a TorchFunctionMode sees two calls; the pure path one).
Run: python findings/_harness.py findings/tensor_item_called_twice_at_segment_roll.py"""
import torch
from torch.overrides import TorchFunctionMode
from prov4ml.metrics.journal import SEGMENT_SLOTS, FIRST_SLOT


class CountItems(TorchFunctionMode):
    calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.item:
            CountItems.calls += 1
        return func(*args, **(kwargs or {}))


def body(lm, out):
    t = torch.tensor(5.0)
    lm("loss", t, "training")  # the C path learns torch.Tensor; slot 2
    for i in range(SEGMENT_SLOTS - FIRST_SLOT - 1):  # fill the first segment exactly
        lm("fill", float(i), "training")
    with CountItems():
        lm("loss", t, "training")  # the segment is full: this call rolls it
    out["item_calls"] = CountItems.calls
    lm("loss", 6.0, "training")
