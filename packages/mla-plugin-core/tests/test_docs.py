"""docs/writing-a-plugin.md shows exactly the files `mla-plugin new` generates."""

import re
from pathlib import Path

import pytest

from mla_plugin_core.scaffold.generate import PluginNames, generate

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "writing-a-plugin.md"
BLOCK = re.compile(
    r"<!-- (?P<kind>off-policy )?file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.DOTALL
)


@pytest.mark.skipif(
    not GUIDE.exists(), reason="the guide lives in the repository, not in the sdist"
)
def test_guide_code_is_the_generated_code(tmp_path):
    generate(PluginNames.from_name("reinforce"), "on-policy", tmp_path)
    generate(PluginNames.from_name("tiny_dqn"), "off-policy", tmp_path)
    roots = {None: tmp_path / "mla-reinforce", "off-policy ": tmp_path / "mla-tiny-dqn"}
    blocks = list(BLOCK.finditer(GUIDE.read_text()))
    assert len(blocks) >= 8 and sum(b["kind"] is not None for b in blocks) >= 2
    for block in blocks:
        generated = (roots[block["kind"]] / block["path"]).read_text().rstrip()
        assert block["body"] == generated, f"{block['path']} in the guide differs from the template"
