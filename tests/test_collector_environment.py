"""Reproducibility capture against real git repositories made in temporary directories."""

import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata

import pytest

from prov4ml.collectors import environment
from prov4ml.collectors.environment import REDACTED, EnvironmentCapture, capture, redact_env

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def git(cwd, *args):
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("lr = 0.1\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    git(path, "remote", "add", "origin", "https://alice:ghp_secret123@github.com/alice/proj.git")
    return path


@needs_git
def test_clean_repository(repo):
    got = capture(cwd=str(repo), packages=False, host=False)
    assert got.git == {
        "commit": git(repo, "rev-parse", "HEAD"),
        "branch": "main",
        "remote": f"https://{REDACTED}@github.com/alice/proj.git",  # the token is not recorded
        "dirty": False,
        "root": str(repo.resolve()),
    }
    assert got.diff is None


@needs_git
def test_dirty_repository_diff_and_untracked_files(repo):
    (repo / "train.py").write_text("lr = 0.01\n")
    (repo / "notes.txt").write_text("new\n")
    got = capture(cwd=str(repo), packages=False)
    assert got.git["dirty"] is True
    assert "-lr = 0.1" in got.diff and "+lr = 0.01" in got.diff
    assert "# Untracked files:" in got.diff and "notes.txt" in got.diff
    # The diff is the same text git itself gives for the tracked part.
    assert git(repo, "diff", "HEAD") in got.diff


@needs_git
def test_only_untracked_files_make_the_tree_dirty(repo):
    (repo / "data.csv").write_text("1\n")
    got = capture(cwd=str(repo / "."), packages=False)
    assert got.git["dirty"] is True
    assert got.diff == "# Untracked files:\n#\tdata.csv\n"


@needs_git
def test_subdirectory_detached_head_and_no_remote(tmp_path):
    path = tmp_path / "r"
    (path / "src").mkdir(parents=True)
    git(path, "init", "-q")
    (path / "src" / "a.py").write_text("x = 1\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "one")
    git(path, "checkout", "-q", "--detach")
    got = capture(cwd=str(path / "src"), packages=False)
    assert got.git["branch"] is None and got.git["remote"] is None
    assert got.git["root"] == str(path.resolve())


@needs_git
def test_repository_without_commits(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    got = capture(cwd=str(tmp_path), packages=False)
    assert got.git["commit"] is None and got.git["dirty"] is True
    assert "+x = 1" in got.diff


@needs_git
def test_outside_a_repository(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    got = capture(cwd=str(plain), packages=False)
    assert got.git == {"available": False, "reason": "not a git repository"}
    assert got.diff is None


def test_without_git_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable on PATH
    got = capture(cwd=str(tmp_path), packages=False)
    assert got.git == {"available": False, "reason": "git executable not found"}


def test_a_missing_directory_does_not_raise(tmp_path):
    got = capture(cwd=str(tmp_path / "gone"), packages=False)
    assert got.git["available"] is False


def test_command_python_packages_host():
    got = capture(git=False)
    assert got.command == sys.argv
    assert got.python == platform.python_version()
    assert got.executable == sys.executable
    assert got.packages["pytest"] == metadata.version("pytest")
    assert got.packages["psutil"] == metadata.version("psutil")
    assert got.host["cpu_count"] == os.cpu_count()
    assert got.host["hostname"] and got.host["platform"] and got.host["machine"]


def test_parts_not_asked_for_are_empty():
    got = capture(git=False, packages=False, command=False, host=False, source=False)
    assert got == EnvironmentCapture(python=platform.python_version(), executable=sys.executable)
    assert got.env_vars is None  # never captured unless asked


def test_main_source_of_a_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "from prov4ml.collectors.environment import capture\n"
        "print(capture(git=False, packages=False).main_source)\n"
    )
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(script.resolve())
    inline = subprocess.run(
        [sys.executable, "-c", "from prov4ml.collectors.environment import capture; print(capture().main_source)"],
        capture_output=True, text=True, check=True,
    )
    assert inline.stdout.strip() == "None"


def test_secrets_are_redacted():
    environ = {
        "HF_TOKEN": "hf_abc",
        "aws_secret_access_key": "x",
        "DB_PASSWORD": "p",
        "MYSQL_PASSWD": "p",
        "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
        "Authorization": "Bearer t",
        "SSH_PRIVATE": "k",
        "SESSION_ID": "s",
        "WANDB_API_KEY": "k",
        "HTTPS_PROXY": "http://bob:hunter2@proxy.local:3128",
        "PATH": "/usr/bin",
        "CUDA_VISIBLE_DEVICES": "0,1",
    }
    out = redact_env(environ)
    for name in list(environ)[:9]:
        assert out[name] == REDACTED, name
    assert out["HTTPS_PROXY"] == f"http://{REDACTED}@proxy.local:3128"
    assert out["PATH"] == "/usr/bin" and out["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert environ["HF_TOKEN"] == "hf_abc"  # the input is not modified


def test_env_vars_only_when_asked(monkeypatch):
    monkeypatch.setenv("PROV4ML_TEST_TOKEN", "t0ps3cret")
    monkeypatch.setenv("PROV4ML_TEST_PLAIN", "visible")
    got = capture(git=False, packages=False, env_vars=True)
    assert got.env_vars["PROV4ML_TEST_TOKEN"] == REDACTED
    assert got.env_vars["PROV4ML_TEST_PLAIN"] == "visible"
    assert "t0ps3cret" not in repr(got)


@needs_git
def test_a_hanging_git_is_cut_off(repo, monkeypatch):
    # A real git made slow by a real hook: the fsmonitor hook status calls never answers.
    hook = repo.parent / "slow-fsmonitor.sh"
    hook.write_text(f"#!/bin/sh\n{shutil.which('sleep')} 30\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(hook))
    monkeypatch.setattr(environment, "GIT_TIMEOUT_S", 0.5)
    start = time.perf_counter()
    got = capture(cwd=str(repo), packages=False)
    assert time.perf_counter() - start < 5
    assert got.git == {"available": False, "reason": "git status took more than 0.5 s"}


@needs_git
def test_capture_is_fast(repo):
    capture(cwd=str(repo))  # warm the metadata caches
    start = time.perf_counter()
    capture(cwd=str(repo))
    assert time.perf_counter() - start < 1.0  # typically ~0.1 s; generous for a loaded CI box
