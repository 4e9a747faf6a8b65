"""Forks, DataLoader workers, processes racing for one run id, secrets in env and argv, ended runs."""

import os
import subprocess
import sys
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import prov4ml
from conftest import ROOT
from killing import prov_json, read_rows, run_activity, series_count


def test_a_forked_child_never_writes_or_ends_the_parents_run(start):
    run = start(writer_process=False)
    prov4ml.log_metric("loss", 1.0, "training", step=0)
    prov4ml.flush()
    pid = os.fork()
    if pid == 0:  # the child: log (warned, not recorded), then exit normally (atexit runs)
        code = 0
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                prov4ml.log_metric("loss", 99.0, "training", step=99)
                prov4ml.log_param("child", 1)
            if not any("forked child" in str(w.message) and "start a run in the worker" in str(w.message) for w in caught):
                code = 3
        except BaseException:
            code = 4
        import atexit

        atexit._run_exitfuncs()  # what a normal exit runs (pytest's own exit path is not for a forked child)
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run_activity(prov_json(run.run_dir))["provml:status"] == "running"  # the child did not end it
    prov4ml.log_metric("loss", 2.0, "training", step=1)
    prov4ml.end_run()
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(0, 1.0), (1, 2.0)]
    assert not any("param/child" in k for k in prov_json(run.run_dir)["entity"])


class Logging(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        prov4ml.log_metric("in_worker", float(i), "training")
        return torch.tensor([float(i)])


def test_logging_inside_dataloader_workers_warns_instead_of_vanishing(start):
    run = start()
    loader = DataLoader(Logging(), batch_size=2, num_workers=2, multiprocessing_context="fork")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        batches = [b for b in loader]
    assert len(batches) == 4
    prov4ml.end_run()
    assert not (run.run_dir / "metrics" / "in_worker_training_rank0.csv").exists()


def test_the_worker_warning_reaches_the_worker(tmp_path):
    code = f"""
import warnings, torch, prov4ml
from torch.utils.data import DataLoader, Dataset
class D(Dataset):
    def __len__(self): return 2
    def __getitem__(self, i):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            prov4ml.log_metric("x", 1.0, "training")
        return torch.tensor([float(any("forked child" in str(m.message) for m in w))])
prov4ml.start_run("www.example.org", "w", {str(tmp_path)!r}, capture=False)
print(sum(float(b.sum()) for b in DataLoader(D(), batch_size=1, num_workers=1, multiprocessing_context="fork")))
prov4ml.end_run()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1.0"  # the worker warned at its first call, once


def test_eight_processes_racing_for_one_forced_run_id(tmp_path):
    code = f"""
import sys, prov4ml
try:
    prov4ml.start_run("www.example.org", "race", {str(tmp_path)!r}, run_id=7, rank=0, capture=False)
except prov4ml.InvalidValueError as exc:
    print("REFUSED", exc)
    sys.exit(0)
for i in range(5000):
    prov4ml.log_metric("loss", float(i), "training", step=i)
prov4ml.end_run()
print("RECORDED")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env) for _ in range(8)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert sum("RECORDED" in o for o in outs) == 1
    refused = [o for o in outs if "REFUSED" in o]
    assert len(refused) == 7 and all("already has a rank 0" in o for o in refused)
    d = tmp_path / "race" / "run_7"
    assert read_rows(d / "metrics" / "loss_training_rank0.csv") == [(i, float(i)) for i in range(5000)]


SECRETS_ENV = {
    "DB_PASS": "hunter2-db", "MYSQL_PWD": "hunter2-mysql", "GITHUB_PAT": "ghp_abcdefghijklmnopqrstuvwxyz0123",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
    "DATABASE_URL": "postgres://admin:s3cr3t-url@db.example.org/prod",
    "CONN_STR": "Server=db;Database=x;User Id=sa;Password=s3cr3t-conn;",
    "AZURE_STORAGE": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=s3cr3tAccountKey==;",
    "EXTRA_ARGS": "--verbose --password=s3cr3t-extra",
    "ID_JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.s3cr3tjwtsignature",
    "COOKIE": "session=s3cr3t-cookie", "CREDS": "s3cr3t-creds", "AWS_SECRET_ACCESS_KEY": "s3cr3t-aws",
    "OPENAI_API_KEY": "sk-s3cr3tOPENAIKEY0123456789", "HF_TOKEN": "hf_s3cr3ttoken",
    "AUTH_HEADER": "Bearer s3cr3tbearertoken123", "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nMIIs3cr3t\n-----END RSA PRIVATE KEY-----",
    "PGPASSWORD": "s3cr3t-pg", "SMTP_PASSWD": "s3cr3t-smtp", "NPM_AUTH": "s3cr3t-npm",
}


def test_no_secret_is_written_from_env_or_argv(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(f"""
import prov4ml
prov4ml.start_run("www.example.org", "sec", {str(tmp_path / 'prov')!r}, capture_env_vars=True)
prov4ml.log_metric("loss", 1.0, "training")
prov4ml.end_run()
""")
    argv = ["--api-key=sk-s3cr3tcliKEY0123456789abcd", "--password", "s3cr3t-cli", "--lr", "0.1",
            "--url", "https://user:s3cr3t-cliurl@example.org/x", "--token", "s3cr3t-tok"]
    out = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, **SECRETS_ENV, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "prov" / "sec" / "run_0"
    written = "\n".join(p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file())
    assert "--lr 0.1" in written and "DB_PASS" in written  # the command and the names are kept
    leaked = [s for s in ["hunter2", "ghp_abc", "XXXXSECRET", "s3cr3t", "sk-s3cr3t", "eyJhbGci"] if s in written]
    assert not leaked, leaked


def test_calls_on_an_ended_run_raise(start):
    run = start()
    prov4ml.end_run()
    for call in (lambda: run.log_metric("x", 1.0), lambda: run.log_param("a", 1), lambda: run.flush()):
        with pytest.raises(prov4ml.RunStateError, match="ended"):
            call()
    assert series_count(prov_json(run.run_dir), "x") == 0


def test_bad_options_leave_no_run_directory(tmp_path):
    for bad in ({"prov_flush_interval": -1}, {"flush_interval": "soon"}, {"csv_separator": "%"},
                {"csv_separator": "ab"}, {"csv_separator": "1"}):
        with pytest.raises(prov4ml.InvalidValueError):
            prov4ml.start_run("www.example.org", "bad", str(tmp_path), capture=False, **bad)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("module", ["prov4ml.prov2dot", "prov4ml.convert"])
def test_clis_refuse_deeply_nested_json_in_one_line(tmp_path, module):
    bad = tmp_path / "deep.json"
    bad.write_text('{"entity": ' + "[" * 100_000 + "]" * 100_000 + "}")
    flag = "--prov_json"
    out = subprocess.run([sys.executable, "-m", module, flag, str(bad), "--output", str(tmp_path / ("out.dot" if module.endswith("dot") else "out.ttl"))],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "too deeply" in out.stderr, out.stderr
