"""FLOP counting with the real fvcore and torch counters on small real models."""

import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Subset, TensorDataset  # noqa: E402

from prov4ml.collectors.flops import CONVENTION, FlopCount, count_batch_flops, count_epoch_flops  # noqa: E402
from prov4ml.exceptions import InvalidValueError  # noqa: E402

needs_fvcore = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("fvcore"), reason="fvcore not installed"
)


@pytest.fixture
def no_fvcore(monkeypatch):
    """fvcore absent: the torch counter must answer."""
    from prov4ml import _optional

    monkeypatch.setitem(sys.modules, "fvcore", None)
    monkeypatch.setattr("prov4ml.collectors.flops.available", lambda name: False if name == "fvcore" else _optional.available(name))


class SmallCNN(nn.Module):
    """conv -> relu -> maxpool -> conv -> relu -> flatten -> linear: only multiply-add layers count."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.head = nn.Linear(16 * 6 * 6, 10)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.relu(self.conv2(x))
        return self.head(self.dropout(x.flatten(1)))


def cnn_flops(batch):
    """The CNN's multiply-adds x 2, by hand."""
    conv1 = 16 * 16 * 8 * (3 * 3 * 3)
    conv2 = 6 * 6 * 16 * (8 * 3 * 3)
    head = 16 * 6 * 6 * 10
    return 2 * batch * (conv1 + conv2 + head)


def test_linear_is_400_flops_with_both_counters(no_fvcore):
    got = count_batch_flops(nn.Linear(10, 5), torch.randn(4, 10))
    assert got == FlopCount(400, "torch", CONVENTION, got.note)
    assert "fvcore not installed" in got.note and "prov4ml[flops]" in got.note


@needs_fvcore
def test_linear_is_400_flops_with_fvcore():
    got = count_batch_flops(nn.Linear(10, 5), torch.randn(4, 10))
    assert (got.flops, got.counter, got.convention) == (400, "fvcore", "multiply-add = 2 FLOPs")


@needs_fvcore
def test_cnn_fvcore_doubled_equals_torch_and_the_hand_count(monkeypatch):
    model, x = SmallCNN(), torch.randn(2, 3, 16, 16)
    fv = count_batch_flops(model, x)
    assert fv.counter == "fvcore"
    monkeypatch.setattr("prov4ml.collectors.flops.available", lambda name: False)
    th = count_batch_flops(model, x)
    assert th.counter == "torch"
    assert fv.flops == th.flops == cnn_flops(2)


@needs_fvcore
def test_fvcore_non_multiply_add_ops_are_not_doubled_and_said_so(monkeypatch):
    # BatchNorm and adaptive pooling: fvcore counts them per element, torch's counter not at all.
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    x = torch.randn(1, 3, 8, 8)
    fv = count_batch_flops(model, x)
    monkeypatch.setattr("prov4ml.collectors.flops.available", lambda name: False)
    th = count_batch_flops(model, x)
    once = dict(item.split("=") for item in fv.note.split(": ", 1)[1].split("; ")[0].split(", "))
    assert set(once) == {"batch_norm", "adaptive_avg_pool2d"}
    assert once["adaptive_avg_pool2d"] == str(4 * 6 * 6)  # one add per input element
    assert fv.flops == th.flops + sum(int(v) for v in once.values())


class Output:
    """A model output object that torch.jit.trace (hence fvcore) cannot handle."""

    def __init__(self, logits):
        self.logits = logits


@needs_fvcore
def test_fvcore_failure_falls_back_to_torch():
    class ObjectOutput(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(10, 5)

        def forward(self, x):
            return Output(self.linear(x))

    got = count_batch_flops(ObjectOutput(), torch.randn(4, 10))
    assert (got.flops, got.counter) == (400, "torch")
    assert got.note.startswith("fvcore failed (RuntimeError")


def test_batch_forms_tuple_list_dict():
    model = nn.Linear(10, 5)
    x, y = torch.randn(4, 10), torch.zeros(4)
    assert count_batch_flops(model, (x, y)).flops == 400
    assert count_batch_flops(model, [x, y]).flops == 400

    class Keyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(10, 5)

        def forward(self, inputs, labels=None):
            return self.linear(inputs)

    got = count_batch_flops(Keyword(), {"inputs": x, "labels": y})
    assert (got.flops, got.counter) == (400, "torch")
    assert "keyword" in got.note
    with pytest.raises(InvalidValueError, match="empty batch"):
        count_batch_flops(model, ())


def test_training_mode_is_restored_per_module_and_no_grad_is_used():
    model = SmallCNN()
    model.train()
    model.dropout.eval()  # a submodule kept in eval on purpose stays so
    seen = {}
    model.register_forward_hook(lambda m, i, o: seen.update(training=m.training, grad=torch.is_grad_enabled()))
    count_batch_flops(model, torch.randn(1, 3, 16, 16))
    assert seen == {"training": False, "grad": False}
    assert model.training and model.conv1.training and not model.dropout.training
    assert all(p.grad is None for p in model.parameters())


def test_epoch_flops_dataset_subset_loader():
    model = SmallCNN()
    data = TensorDataset(torch.randn(10, 3, 16, 16), torch.zeros(10))
    per_sample = cnn_flops(1)

    got = count_epoch_flops(model, data)
    assert got.flops == 10 * per_sample
    assert "1 sample x 10 samples" in got.note
    assert count_epoch_flops(model, Subset(data, [1, 2, 3])).flops == 3 * per_sample
    assert count_epoch_flops(model, DataLoader(data, batch_size=4)).flops == 10 * per_sample
    assert count_epoch_flops(model, DataLoader(data, batch_size=4, drop_last=True)).flops == 8 * per_sample
    # Counted from one sample, not by running the epoch.
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    count_epoch_flops(model, DataLoader(data, batch_size=4, shuffle=True))
    assert calls == [1]


def test_epoch_flops_rejects_what_it_cannot_size():
    model = nn.Linear(10, 5)

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.randn(10)

    with pytest.raises(InvalidValueError, match="count_batch_flops"):
        count_epoch_flops(model, Stream())
    with pytest.raises(InvalidValueError, match="empty"):
        count_epoch_flops(model, TensorDataset(torch.randn(0, 10)))


def test_not_a_module_is_rejected():
    with pytest.raises(InvalidValueError, match="torch.nn.Module"):
        count_batch_flops(lambda x: x, torch.randn(2))
