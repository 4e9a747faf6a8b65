"""The API reference covers every public name."""

import re

import prov4ml
from conftest import ROOT


def test_every_public_name_is_in_the_api_reference():
    text = (ROOT / "docs" / "api.md").read_text()
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", text))
    missing = [name for name in prov4ml.__all__ if name not in documented and name != "__version__"]
    assert not missing, f"add these to docs/api.md: {missing}"


def test_readme_names_the_commands():
    text = (ROOT / "README.md").read_text()
    assert "make quickstart" in text and "make test" in text
