"""The lock (constraints.txt) against pyproject.toml, and the environment against the lock.

`make quickstart` and `make test` install through the lock so that pip never
backtracks; these tests catch a lock that was not regenerated after a change to
pyproject.toml (`make lock`) and an environment that was not installed from it.
"""

import re
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
TOOLS = {"test", "bench", "all"}  # extras that are not library features


def lock_pins() -> dict[str, Requirement]:
    """The lock's pins that apply to this interpreter and platform, by package name."""
    pins: dict[str, Requirement] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name not in pins, f"constraints.txt pins {name} twice for this Python: run `make lock`"
        pins[name] = req
    return pins


def requirements(extras: set[str]) -> list[Requirement]:
    """The project's requirements with these extras, the self-references (prov4ml[...]) expanded."""
    seen: set[str] = set()
    out: list[Requirement] = []
    todo = [Requirement(r) for r in PROJECT["dependencies"]]
    todo += [Requirement(r) for extra in extras for r in EXTRAS[extra]]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**default_environment(), "extra": ""}):
            continue
        if canonicalize_name(req.name) == "prov4ml":
            new = req.extras - seen
            seen |= new
            todo += [Requirement(r) for extra in new for r in EXTRAS[extra]]
            continue
        out.append(req)
    return out


def test_the_lock_pins_every_requirement_of_every_extra_within_its_range():
    pins = lock_pins()
    stale = []
    for req in requirements(set(EXTRAS)):
        pin = pins.get(canonicalize_name(req.name))
        version = next(iter(pin.specifier)).version if pin else None
        if version is None or not req.specifier.contains(version, prereleases=True):
            stale.append(f"{req} (lock: {version})")
    assert not stale, f"constraints.txt does not satisfy pyproject.toml, run `make lock`: {stale}"


def test_every_pin_is_exact_and_torch_is_the_tested_release():
    pins = lock_pins()
    loose = [str(r) for r in pins.values() if [s.operator for s in r.specifier] != ["=="]]
    assert not loose
    assert str(pins["torch"].specifier) == "==2.13.0"
    make_torch = re.search(r"^TORCH_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert make_torch and make_torch.group(1) == "2.13.0"


def test_the_all_extra_is_every_library_extra():
    (req,) = [Requirement(r) for r in EXTRAS["all"]]
    assert canonicalize_name(req.name) == "prov4ml"
    assert req.extras == set(EXTRAS) - TOOLS


def test_this_environment_was_installed_from_the_lock():
    """Every installed package the lock names is at its pinned version (`make test` installs so)."""
    pins = lock_pins()
    off = []
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        pin = pins.get(name)
        if pin is not None and not pin.specifier.contains(dist.version, prereleases=True):
            off.append(f"{name} {dist.version} (lock: {pin.specifier})")
    assert not off, f"not installed from constraints.txt, run `make test`: {sorted(off)}"
