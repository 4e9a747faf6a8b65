"""One redactor for every string that enters the record: each secret shape is kept out of every file."""

import json

import pytest

import prov4ml
from prov4ml.redact import REDACTED, redact_value

#: (a value as a user would pass it, the secret part that must reach no file)
SECRETS = [
    ("postgres://admin:PASSWORD1@db:5432/x", "PASSWORD1"),
    ("https://user:hunter22@example.org/data", "hunter22"),
    ("https://ghp_TOKENONLY1234567890abcd@github.com/a/b.git", "ghp_TOKENONLY1234567890abcd"),
    ("https://plaintoken0123@example.org/repo", "plaintoken0123"),
    ("ghp_" + "a1B2" * 9, "ghp_" + "a1B2" * 9),
    ("github_pat_" + "Z9y8" * 10, "github_pat_" + "Z9y8" * 10),
    ("glpat-" + "x1Y2" * 5, "glpat-" + "x1Y2" * 5),
    ("hf_" + "AbCd" * 8, "hf_" + "AbCd" * 8),
    ("sk-" + "proj" * 6, "sk-" + "proj" * 6),
    ("AKIA" + "ABCDEFGHIJKLMNOP", "AKIA" + "ABCDEFGHIJKLMNOP"),
    ("xoxb-" + "1234567890-abcdef", "xoxb-" + "1234567890-abcdef"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX3BhcnQ", "eyJzdWIiOiIxMjM0In0"),
    ("Bearer abcdefghij0123456789", "abcdefghij0123456789"),
    ("password=s3cr3tvalue", "s3cr3tvalue"),
    ("https://user:S3CRET/PW3@host/x", "S3CRET/PW3"),  # a password may hold / and @
    ("postgres://admin:p@ssw0rd@db/x", "p@ssw0rd"),
    ('{"db": {"password": "S3CRETPW2"}}', "S3CRETPW2"),  # a dict's JSON text
    ("password='hunter 2'", "hunter 2"),
    ("password=abc,def", "abc,def"),
    ("Authorization: Basic QWxhZGRpbjpvcGVu", "QWxhZGRpbjpvcGVu"),
    ('{"lr": 0.1, "password": 987654, "bs": 4}', "987654"),  # a bare JSON value
    ("private_key=S3CRETPK", "S3CRETPK"),
    ("secret_key: S3CRETSK", "S3CRETSK"),
]

#: text that looks random but is not a secret: digests, commits, run ids survive intact
KEPT = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "1f0c3e5a9b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e",
    "git@github.com:org/repo.git",
    "https://example.org/path/a@b",
    "adam",
    "max_tokens",
    "max_tokens=512",  # a hyperparameter, not a token
    "token_type=bearer",
]


@pytest.mark.parametrize("value,secret", SECRETS, ids=[s[:12] for _, s in SECRETS])
def test_each_secret_shape_is_redacted(value, secret):
    out = redact_value(value)
    assert secret not in out and REDACTED in out


@pytest.mark.parametrize("value", KEPT)
def test_digests_commits_and_plain_text_survive(value):
    assert redact_value(value) == value


def test_a_failed_run_keeps_no_secret_of_its_error(save_dir):
    with pytest.raises(RuntimeError):
        with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False) as run:
            raise RuntimeError(f"cannot connect to {SECRETS[0][0]}")
    text = _every_file_text(run.run_dir)
    assert SECRETS[0][1] not in text and "cannot connect to postgres://" in text


def test_a_redacted_json_text_stays_json():
    out = redact_value('{"lr": 0.1, "password": 987654, "bs": 4, "db": {"password": "x y"}}')
    assert json.loads(out) == {"lr": 0.1, "password": REDACTED, "bs": 4, "db": {"password": REDACTED}}


def _every_file_text(folder):
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def test_secrets_in_parameters_reach_no_file(start, save_dir):
    run = start()
    for i, (value, _) in enumerate(SECRETS):
        prov4ml.log_param(f"p{i}", value)
    prov4ml.log_param("nested", {"url": SECRETS[0][0], "tokens": [SECRETS[4][0]]})
    prov4ml.log_param("from_db", 1, source=SECRETS[1][0])  # where an item comes from
    prov4ml.log_execution_command(f"python train.py --api-key {SECRETS[8][0]} --db {SECRETS[2][0]} --password -S3CRETPW5")
    for i, value in enumerate(KEPT):
        prov4ml.log_param(f"kept{i}", value)
    run_dir = run.run_dir
    prov4ml.end_run()
    text = _every_file_text(run_dir)
    leaked = [secret for _, secret in SECRETS if secret in text] + (["-S3CRETPW5"] if "S3CRETPW5" in text else [])
    assert leaked == []
    assert all(value in text for value in KEPT)
