"""A flavor shipped by another library is found through the ``modelreg.flavors`` entry point
group: a real distribution on sys.path, no mocking of the discovery."""

from __future__ import annotations

import sys
import textwrap

import pytest

import modelreg
from modelreg import flavors

PLUGIN = """
import json
from pathlib import Path


class Recipe:
    def __init__(self, steps):
        self.steps = steps


class RecipeFlavor:
    name = "recipe"

    def detect(self, obj):
        return type(obj).__name__ == "Recipe"

    def save(self, obj, directory, *, input_example=None):
        (Path(directory) / "steps.json").write_text(json.dumps(obj.steps))
        return {"file": "steps.json"}

    def libraries(self, obj):
        return {}

    def load(self, directory, metadata, *, trust):
        return Recipe(json.loads((Path(directory) / metadata["file"]).read_text()))
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "recipe_flavor.py").write_text(PLUGIN)
    info = site / "recipe_flavor-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: recipe-flavor\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [modelreg.flavors]
            recipe = recipe_flavor:RecipeFlavor
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    flavors.available.cache_clear()
    yield sys.modules.get("recipe_flavor") or __import__("recipe_flavor")
    flavors.available.cache_clear()
    sys.modules.pop("recipe_flavor", None)


def test_a_plugin_flavor_saves_and_loads_through_the_registry(plugin, registry, tmp_path):
    assert "recipe" in [f.name for f in flavors.available()]
    version = registry.register("bread", plugin.Recipe(["flour", "water", "salt"]))
    loaded = modelreg.load(version.ref, registry=registry, dest=tmp_path / "out")
    assert loaded.steps == ["flour", "water", "salt"]
    assert '"flavor": "recipe"' in (tmp_path / "out" / "flavor.json").read_text()
