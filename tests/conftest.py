import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import prov4ml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_active_run():
    """Every test starts and ends with no active run and no child process of its own, whatever it did."""
    yield
    run = prov4ml.active_run()
    if run is not None:
        run.end()
    from killing import kill_leftovers

    kill_leftovers()  # a test that failed before its kill leaves no child logging forever


@pytest.fixture
def save_dir(tmp_path):
    return tmp_path / "prov"


@pytest.fixture
def start(save_dir):
    """start_run with test defaults (no environment capture unless asked)."""

    def _start(experiment="exp", **kw):
        kw.setdefault("capture", False)
        return prov4ml.start_run("www.example.org", experiment, str(save_dir), **kw)

    return _start


def load_doc(path):
    from prov.model import ProvDocument

    return ProvDocument.deserialize(str(path))


def load_json(path):
    with open(path) as fh:
        return json.load(fh)


def entities_of_type(data, type_name):
    """Entities (from the raw PROV-JSON dict) whose prov:type includes ``type_name``."""
    out = {}
    for ident, attrs in data.get("entity", {}).items():
        types = attrs.get("prov:type", [])
        types = types if isinstance(types, list) else [types]
        names = [t["$"] if isinstance(t, dict) else t for t in types]
        if type_name in names:
            out[ident] = attrs
    return out


def literal(value):
    """The Python value of a PROV-JSON attribute."""
    if isinstance(value, dict):
        raw, kind = value["$"], value.get("type", "")
        if kind in ("xsd:int", "xsd:long"):
            return int(raw)
        if kind == "xsd:double":
            return float(raw.replace("INF", "inf"))
        return raw
    return value


def series_entity(data, name, context="training"):
    for attrs in entities_of_type(data, "provml:Metric").values():
        if attrs["provml:name"] == name and attrs["provml:context"] == context:
            return {k: location(v) if k == "prov:location" else literal(v) for k, v in attrs.items()}
    raise KeyError((name, context))


def run_python(code, cwd, env=None, **kw):
    """Run ``code`` in a fresh interpreter with the project importable."""

    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=full_env, **kw)


def location(value):
    """A PROV-JSON ``prov:location`` (an IRI: ``rundir:<path in the run>`` or ``fs:<absolute path>``) as a path."""
    from prov4ml.provenance import json_location

    return json_location(value)

@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 24 MiB tmpfs, to fill up (needs root: skipped otherwise)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every web-page test (each test module serves on its own port, so
    pages, storage and history do not leak between modules)."""
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)  # a local driver: nothing downloaded
    yield driver
    driver.quit()
