"""A model wrapped with ProvenanceTrackedModel trains beside an unwrapped copy of itself.

usage: python tracked_model.py SAVE_DIR ARRAY_FORMAT   (zarr | npy)
Writes SAVE_DIR/expected.pt: the wrapped model's outputs, the copy's, and each layer's
inputs and outputs as the copy's own forward hooks saw them.
"""

import copy
import sys

import torch
import torch.nn as nn

import prov4ml

SAVE_DIR, ARRAY_FORMAT = sys.argv[1], sys.argv[2]
CHUNK = 5


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(inplace=True))
        self.head = nn.Linear(3 * 6, 4)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


prov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="tracked_model",
    provenance_save_dir=SAVE_DIR,
)

torch.manual_seed(0)
model = Classifier()
reference = copy.deepcopy(model)
tracked = prov4ml.ProvenanceTrackedModel("classifier", model, prov4ml.Context.TRAINING, chunk_size=CHUNK,
                                         array_format=ARRAY_FORMAT)
one_arg = prov4ml.ProvenanceTrackedModel(nn.Linear(3, 2), array_format=ARRAY_FORMAT)  # the one-argument form

seen = {}  # layer -> {"input": [...], "output": [...]}, from hooks on the unwrapped copy


def remember(name):
    def hook(module, inputs, output):
        seen.setdefault(name, {"input": [], "output": []})
        seen[name]["input"].append(inputs[0].detach().clone())
        seen[name]["output"].append(output.detach().clone())
    return hook


for name, module in (("features.0", reference.features[0]), ("head", reference.head)):
    module.register_forward_hook(remember(name))

checks = {
    "isinstance": isinstance(tracked, Classifier) and isinstance(tracked, nn.Module)
    and isinstance(tracked, prov4ml.ProvenanceTrackedModel),
    "state_dict_keys": list(tracked.state_dict()) == list(reference.state_dict()),
    "parameters": [tuple(p.shape) for p in tracked.parameters()] == [tuple(p.shape) for p in reference.parameters()],
    "repr": repr(tracked) == repr(reference),
    "to_returns_wrapper": tracked.to("cpu") is tracked,
}
tracked.eval()
checks["eval"] = tracked.training is False and model.training is False
tracked.train()

opt_a = torch.optim.SGD(tracked.parameters(), lr=0.05)
opt_b = torch.optim.SGD(reference.parameters(), lr=0.05)
outputs, reference_outputs = [], []
g = torch.Generator().manual_seed(1)
for step, batch in enumerate((3, 4, 2, 7, 1)):  # 17 rows: chunks of 5, 5, 5 and a last one of 2
    x, y = torch.randn(batch, 2, 8, generator=g), torch.randint(0, 4, (batch,), generator=g)
    for net, opt, out in ((tracked, opt_a, outputs), (reference, opt_b, reference_outputs)):
        opt.zero_grad()
        logits = net(x)
        nn.functional.cross_entropy(logits, y).backward()
        opt.step()
        out.append(logits.detach().clone())
one_arg_output = one_arg(torch.ones(2, 3)).detach()

checks["state_after_training"] = all(torch.equal(a, b) for a, b in zip(tracked.state_dict().values(),
                                                                       reference.state_dict().values()))
torch.save({"outputs": outputs, "reference_outputs": reference_outputs, "seen": seen, "checks": checks,
            "one_arg_output": one_arg_output},
           f"{SAVE_DIR}/expected.pt")
print(prov4ml.end_run())
