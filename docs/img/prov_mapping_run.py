"""The run drawn in docs/prov-mapping.md: two epochs, a parameter, a dataset, model versions.

    cd docs/img && python prov_mapping_run.py prov && cp prov/mapping/run_0/prov_rank0.svg prov-mapping.svg
"""
import sys
import torch
import prov4ml
from prov4ml import Context

out = sys.argv[1]
torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
prov4ml.start_run("www.example.org", "mapping", out, user="alice", capture=False)
prov4ml.log_param("lr", 0.01)
prov4ml.log_dataset(torch.utils.data.TensorDataset(torch.zeros(16, 4)), "train")
for epoch in range(2):
    prov4ml.mark_epoch(epoch, Context.TRAINING)
    for i in range(4):
        prov4ml.log_metric("loss", 1.0 / (epoch * 4 + i + 1), Context.TRAINING, step=epoch * 4 + i)
    with torch.no_grad():
        model.weight.add_(0.1)
    prov4ml.save_model_version(model, "net", Context.TRAINING, step=epoch)
    prov4ml.log_metric("val_loss", 0.5 / (epoch + 1), Context.VALIDATION, step=epoch)
prov4ml.log_model(model, "net", log_model_info=False)
prov4ml.end_run(create_graph=True, create_svg=True)
