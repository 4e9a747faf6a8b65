"""A researcher's questions as plain SPARQL over a real experiment, with exact answers (docs/prov-mapping.md).

The experiment is a script in a git repository, run as a process: a sweep of
``lr`` (three finished runs, one that fails), model versions each epoch, a
two-rank run that saves the same weights on both ranks, and carbon metrics in
the first run. Every expected answer is read from the files (CSV points,
hashes of the weights, ``git rev-parse``), not from the document.
"""

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from datetime import datetime

import pytest

from conftest import ROOT, load_json
from prov4ml import query as q
from prov4ml.exceptions import InvalidValueError

pytest.importorskip("rdflib")

SCRIPT = '''
import sys
import torch
import prov4ml
from prov4ml import Context

out = sys.argv[1]
data = torch.utils.data.TensorDataset(torch.zeros(8, 2), torch.zeros(8, 1))
for run_index, lr in enumerate([0.1, 0.01, 0.001, 0.5]):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    try:
        with prov4ml.run("www.example.org", "sweep", out, user="alice", capture=True):
            prov4ml.log_params({"lr": lr, "epochs": 3})
            prov4ml.log_dataset(data, "train")
            for epoch in range(3):
                prov4ml.mark_epoch(epoch, Context.TRAINING)
                for i in range(4):
                    prov4ml.log_metric("loss", lr * (4 - i) + 1.0 / (epoch + 1), Context.TRAINING, step=epoch * 4 + i)
                with torch.no_grad():
                    model.weight.add_(lr)
                prov4ml.save_model_version(model, "net", Context.TRAINING, step=epoch)
                prov4ml.log_metric("val_loss", 1.0 - lr - 0.1 * epoch, Context.VALIDATION, step=epoch)
                if run_index == 0:
                    prov4ml.log_carbon_metrics(Context.TRAINING, step=epoch)
                if lr == 0.5:
                    raise FloatingPointError("loss is nan at epoch 0")
            prov4ml.log_model(model, "net")
    except FloatingPointError:
        pass
for rank in (0, 1):  # a two-rank run, one rank after the other: the same initial weights on each
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    prov4ml.start_run("www.example.org", "sweep", out, user="alice", rank=rank, run_id=4,
                      collect_all_processes=True, capture=False)
    prov4ml.save_model_version(model, "net", Context.TRAINING, step=0)
    prov4ml.end_run()
'''


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    base = tmp_path_factory.mktemp("query")
    repo = base / "code"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "a@b.org")
    git(repo, "config", "user.name", "a")
    (repo / "train.py").write_text(SCRIPT)
    git(repo, "add", "train.py")
    git(repo, "commit", "-qm", "sweep")
    proc = subprocess.run([sys.executable, str(repo / "train.py"), str(base / "prov")], cwd=base,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base / "prov" / "sweep", git(repo, "rev-parse", "HEAD")


def points(run_dir, name, context):
    with open(run_dir / "metrics" / f"{name}_{context}_rank0.csv") as fh:
        return [float(r["value"]) for r in csv.DictReader(fh)]


def ask(experiment_dir, sparql, engine=None):
    columns, rows = q.query(experiment_dir, sparql, engine=engine)
    return rows


ENGINES = ["pyoxigraph", "rdflib"]


@pytest.fixture(params=ENGINES)
def engine(request):
    if request.param == "pyoxigraph":
        pytest.importorskip("pyoxigraph")
    return request.param


def test_versions_derived_from_version_0(experiment, engine):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT ?run ?version WHERE {
          ?v0 a provml:ModelVersion ; provml:version ?first .
          FILTER(?first = 0)  # numbers are xsd:int: compare by value, not as a term of the pattern
          ?v a provml:ModelVersion ; prov:wasDerivedFrom+ ?v0 ; provml:version ?version .
          ?v prov:wasGeneratedBy ?where . ?run_act mls:hasPart+ ?where ; provml:run_id ?run .
        } ORDER BY ?run ?version""", engine)
    assert rows == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]


def test_which_run_used_which_lr(experiment, engine):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT ?run ?lr WHERE {
          ?act a mls:Run ; provml:run_id ?run ; prov:used ?p .
          ?p a mls:HyperParameterSetting ; rdfs:label "lr" ; prov:value ?lr .
        } ORDER BY ?run""", engine)
    assert rows == [(0, 0.1), (1, 0.01), (2, 0.001), (3, 0.5)]


def test_mean_training_loss_per_run(experiment, engine):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT ?run ?mean WHERE {
          ?act a mls:Run ; provml:run_id ?run ; mls:hasPart ?ctx .
          ?ctx a provml:Training .
          ?s a provml:Metric ; provml:name "loss" ; prov:wasGeneratedBy ?ctx ; provml:mean ?mean .
        } ORDER BY ?run""", engine)
    expected = []
    for run in range(4):
        values = points(exp / f"run_{run}", "loss", "training")
        expected.append((run, pytest.approx(sum(values) / len(values), rel=1e-12)))
    assert rows == expected


def test_failed_runs_and_their_errors(experiment, engine):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT ?run ?type ?message WHERE {
          ?act a mls:Run ; provml:status "failed" ; provml:run_id ?run ;
               provml:error_type ?type ; provml:error_message ?message .
        }""", engine)
    assert rows == [(3, "FloatingPointError", "loss is nan at epoch 0")]


def test_the_last_model_versions_file_hash_run_user_commit_and_datasets(experiment, engine):
    exp, commit = experiment
    rows = ask(exp, """
        SELECT ?file ?sha ?run ?user ?commit ?dataset WHERE {
          { SELECT ?v WHERE { ?v a provml:ModelVersion ; provml:created ?t } ORDER BY DESC(?t) LIMIT 1 }
          ?v prov:atLocation ?file ; provml:sha256 ?sha ; prov:wasGeneratedBy ?where .
          ?act mls:hasPart+ ?where ; provml:run_id ?run ;
               prov:qualifiedAssociation [ prov:hadRole provml:researcher ; prov:agent ?who ] .
          ?who rdfs:label ?user .
          OPTIONAL { ?act mls:executes ?code . ?code provml:git_commit ?commit }
          OPTIONAL { ?act mls:hasInput ?d . ?d a mls:Dataset ; rdfs:label ?dataset }
        }""", engine)
    path = exp / "run_4" / "artifacts" / "rank1" / "models" / "net" / "net_step0.pt"
    # the last version saved is rank 1's of the two-rank run (no capture there: no commit, no dataset)
    assert rows == [(path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest(), 4, "alice", None, None)]
    rows = ask(exp, """
        SELECT ?file ?sha ?run ?user ?commit ?dataset WHERE {
          ?v a provml:ModelVersion ; provml:version ?version ; prov:atLocation ?file ; provml:sha256 ?sha ;
             prov:wasGeneratedBy ?where .
          FILTER(?version = 2 && ?run = 2)
          ?act mls:hasPart+ ?where ; provml:run_id ?run ;
               prov:qualifiedAssociation [ prov:hadRole provml:researcher ; prov:agent ?who ] .
          ?who rdfs:label ?user .
          ?act mls:executes ?code . ?code provml:git_commit ?commit .
          ?act mls:hasInput ?d . ?d a mls:Dataset ; rdfs:label ?dataset .
        }""", engine)
    path = exp / "run_2" / "artifacts" / "models" / "net" / "net_step2.pt"
    assert rows == [(path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest(), 2, "alice", commit, "train")]


def test_runs_with_status_duration_and_best_validation_loss(experiment):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT ?run ?status ?start ?end ?best WHERE {
          ?experiment a mls:Experiment ; mls:hasPart ?act .
          ?act provml:run_id ?run ; provml:rank ?rank ; provml:status ?status ;
               prov:startedAtTime ?start ; prov:endedAtTime ?end .
          FILTER(?rank = 0)
          OPTIONAL { ?act mls:hasOutput ?s . ?s provml:name "val_loss" ; provml:min ?best }
        } ORDER BY ?run""")
    expected = []
    for run in range(5):
        data = load_json(exp / f"run_{run}" / "prov_rank0.json")
        (act,) = [a for a in data["activity"].values() if {"$": "mls:Run", "type": "xsd:QName"} in list(a["prov:type"])]
        start, end = (datetime.fromisoformat(act[k]) for k in ("prov:startTime", "prov:endTime"))
        best = min(points(exp / f"run_{run}", "val_loss", "validation")) if run < 4 else None
        expected.append((run, "failed" if run == 3 else "finished", start, end, best))
    assert rows == expected
    # the duration, in SPARQL (oxigraph subtracts dateTimes)
    pytest.importorskip("pyoxigraph")
    rows = ask(exp, """
        SELECT ?run ((?end - ?start) AS ?duration) WHERE {
          ?act a mls:Run ; provml:run_id ?run ; provml:rank ?rank ; prov:startedAtTime ?start ; prov:endedAtTime ?end .
          FILTER(?rank = 0)
        } ORDER BY ?run""", "pyoxigraph")
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    durations = [(e[3] - e[2]).total_seconds() for e in expected]
    assert [_seconds(r[1]) for r in rows] == pytest.approx(durations, abs=1e-6)


def _seconds(duration):
    """xsd:dayTimeDuration text (PT1.5S, PT2M3.25S) as seconds."""
    import re

    m = re.fullmatch(r"-?P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", str(duration))
    d, h, mi, s = (float(g or 0) for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def test_weights_identical_across_ranks(experiment, engine):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT DISTINCT ?run ?rank_a ?rank_b ?sha WHERE {
          ?a a provml:ModelWeights ; provml:sha256 ?sha ; prov:wasGeneratedBy ?ga .
          ?b a provml:ModelWeights ; provml:sha256 ?sha ; prov:wasGeneratedBy ?gb .
          ?ra mls:hasPart+ ?ga ; provml:run_id ?run ; provml:rank ?rank_a .
          ?rb mls:hasPart+ ?gb ; provml:run_id ?run ; provml:rank ?rank_b .
          FILTER(?rank_a < ?rank_b)
        }""", engine)
    files = [exp / "run_4" / "artifacts" / sub / "models" / "net" / "net_step0.pt" for sub in (".", "rank1")]
    digests = {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert len(digests) == 1 and rows == [(4, 0, 1, digests.pop())]


def test_energy_and_emissions_per_run(experiment, engine):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT ?run ?name ((?mean * ?count) AS ?total) ?unit WHERE {
          ?act a mls:Run ; provml:run_id ?run ; mls:hasPart ?ctx .
          ?s prov:wasGeneratedBy ?ctx ; provml:source "carbon_metric" ; provml:name ?name ;
             provml:mean ?mean ; provml:count ?count ; provml:unit ?unit .
          FILTER(?name IN ("energy_consumed", "emissions"))
        } ORDER BY ?run ?name""", engine)
    run_dir = exp / "run_0"
    assert rows == [
        (0, "emissions", pytest.approx(sum(points(run_dir, "emissions", "training")), rel=1e-9), "gCO2eq"),
        (0, "energy_consumed", pytest.approx(sum(points(run_dir, "energy_consumed", "training")), rel=1e-9), "J"),
    ]


def test_lineage_in_ml_schema_terms(experiment, engine):
    exp, _commit = experiment
    rows = ask(exp, """
        SELECT ?run ?implementation ?input WHERE {
          ?model a mls:Model ; provml:model_name "net" ; provml:version ?version .
          FILTER(?version = 2)
          ?act a mls:Run ; mls:hasOutput ?model ; provml:run_id ?run ;
               mls:executes ?impl ; mls:hasInput ?in .
          ?impl a mls:Implementation ; rdfs:label ?implementation .
          ?in rdfs:label ?input .
          FILTER(?run = 1)
        } ORDER BY ?input""", engine)
    assert rows == [(1, "train.py", "epochs"), (1, "train.py", "lr"), (1, "train.py", "train")]


def test_cli_prints_a_table(experiment, capsys):
    exp, _commit = experiment
    code = q.main([str(exp), "SELECT ?run ?status WHERE { ?a a mls:Run ; provml:run_id ?run ; provml:rank ?k ; "
                             "provml:status ?status FILTER(?k = 0) } ORDER BY ?run"])
    assert code == 0
    assert capsys.readouterr().out == (
        "run  status\n---  --------\n0    finished\n1    finished\n2    finished\n3    failed\n4    finished\n(5 rows)\n")
    assert q.main([str(exp), "SELECT ?x WHERE { ?x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prov4ml.query: error: the SPARQL query does not parse") and err.count("\n") == 1


def test_module_runs_from_the_command_line(experiment):
    exp, _commit = experiment
    proc = subprocess.run([sys.executable, "-m", "prov4ml.query", str(exp), "--csv",
                           "SELECT ?run WHERE { ?a a mls:Run ; provml:status 'failed' ; provml:run_id ?run }"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["run", "3"]


def test_an_empty_query_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidValueError, match="give a SPARQL query"):
        q.query(tmp_path, "  ")


def test_every_query_in_the_mapping_page_answers(experiment):
    """docs/prov-mapping.md's SPARQL examples run, as written, and find something."""
    import re

    pytest.importorskip("pyoxigraph")
    exp, _commit = experiment
    page = (ROOT / "docs" / "prov-mapping.md").read_text(encoding="utf-8")
    queries = re.findall(r"```sparql\n(.*?)```", page, re.S)
    assert len(queries) == 10
    for sparql in queries:
        columns, rows = q.query(exp, sparql)
        assert rows, sparql
