"""The API reference covers every public name."""

import re

import prov4ml
from conftest import ROOT
from prov4ml.cli.main import COMMANDS


def test_every_public_name_is_in_the_api_reference():
    text = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", text))
    missing = [name for name in prov4ml.__all__ if name not in documented and name != "__version__"]
    assert not missing, f"add these to docs/api.md: {missing}"


def test_readme_names_the_commands():
    text = (ROOT / "README.md").read_text()
    assert "make quickstart" in text and "make test" in text


def test_every_command_has_its_section_in_the_cli_docs():
    text = (ROOT / "docs" / "cli.md").read_text()
    named = {name for heading in re.findall(r"^## (.*)$", text, re.M) for name in re.findall(r"`([a-z]+)`", heading)}
    missing = [name for name, _module, _help in COMMANDS if name not in named]
    assert not missing, f"give these commands a section (## `name`: ...) in docs/cli.md: {missing}"
