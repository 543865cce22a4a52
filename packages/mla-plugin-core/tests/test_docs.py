"""docs/writing-a-plugin.md shows exactly the files `mla-plugin new` generates."""

import re
from pathlib import Path

import pytest

from mla_plugin_core.cli.scaffold.generate import PluginNames, generate

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


def _testing_section() -> str:
    text = GUIDE.read_text()
    start = text.index("## Testing")
    return text[start : text.index("\n## ", start + 1)]


def _public_names() -> dict[str, list[str]]:
    """Each public callable and class of the testing kit -> its parameters and members."""
    import inspect

    from mla_plugin_core import testing
    from mla_plugin_core.testing import builders, conformance, hyperparameters, learn

    names: dict[str, list[str]] = {}
    callables = [getattr(testing, n) for n in testing.__all__ if n != "TrainingRun"]
    callables += [builders.vector_behavior_spec, builders.trainer_settings, builders.make_trainer]
    callables += [builders.random_action, builders.random_trajectory, learn.free_base_port]
    callables += [builders.update_once]
    callables += [hyperparameters.hyperparameter_table, hyperparameters.update_readme_tables]
    callables += [hyperparameters.readme_table_differences]
    for function in callables:
        names[function.__name__] = [
            p for p in inspect.signature(function).parameters if p not in ("options", "attempts")
        ]
    run = learn.TrainingRun
    names["TrainingRun"] = [n for n in vars(run) if not n.startswith("_")] + [
        f.name for f in run.__dataclass_fields__.values()
    ]
    kit = conformance.PluginConformance
    names["PluginConformance"] = [n for n in kit.__annotations__] + [
        n for n in vars(kit) if n.startswith("test_")
    ]
    return names


@pytest.mark.skipif(
    not GUIDE.exists(), reason="the guide lives in the repository, not in the sdist"
)
def test_guide_names_every_testing_kit_parameter():
    section = _testing_section()
    missing = [
        f"{owner}: {name}"
        for owner, members in _public_names().items()
        for name in [owner, *members]
        if not re.search(rf"\b{re.escape(name)}\b", section)
    ]
    assert missing == [], "the guide's Testing section does not name these"
