"""Every console script of every package, installed from its wheel, answers ``--version``
with ``<script> <version of its package>`` and ``--help`` with a description and a help text
for every option and subcommand (subcommands' own ``--help`` too).

The scripts are read from the packages' ``[project.scripts]``, so a new one is covered.
"""

import re

import pytest
import tomllib
from conftest import ROOT


def pyprojects() -> dict[str, dict]:
    return {
        path.parent.name: tomllib.loads(path.read_text())
        for path in sorted(ROOT.glob("packages/*/pyproject.toml"))
    }


SCRIPTS = [
    (package, script)
    for package, pyproject in pyprojects().items()
    for script in pyproject["project"].get("scripts", {})
]


def package_version(package: str) -> str:
    """``__version__`` of the file ``[tool.hatch.version] path`` names."""
    path = ROOT / "packages" / package / pyprojects()[package]["tool"]["hatch"]["version"]["path"]
    match = re.search(r'^__version__ = "([^"]+)"$', path.read_text(), re.MULTILINE)
    assert match, path
    return match[1]


def help_problems(text: str) -> tuple[list[str], list[str]]:
    """What argparse ``--help`` output ``text`` lacks, and the subcommands it lists.

    :return: ``(problems, subcommands)``: "no description" when no paragraph follows the
        usage; each option, argument or subcommand printed without a help text.
    """
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    problems = []
    if len(paragraphs) < 2 or paragraphs[1].splitlines()[0].endswith(":"):  # a section
        problems.append("no description")
    lines = text.splitlines()
    subcommands: list[str] = []
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        entry = line.strip()
        if not entry or not 2 <= indent <= 6:
            continue  # blank, the usage, a section title or a wrapped line
        if entry.startswith("{"):  # the subcommands, each with its own line below
            subcommands = entry.strip("{}").split(",")
            continue
        wrapped = i + 1 < len(lines) and len(lines[i + 1]) - len(lines[i + 1].lstrip()) > 8
        if not re.search(r"\S {2,}\S", entry) and not wrapped:
            problems.append(f"no help text: {entry}")
    return problems, subcommands


def test_the_problems_of_a_help_text_are_found():
    text = (
        "usage: tool [-h] {a,b} ...\n\n"
        "positional arguments:\n  {a,b}\n    a         does a\n    b\n\n"
        "options:\n  -h, --help  show this help message and exit\n  --quiet\n"
        "  --long-option-name LONG_OPTION_NAME\n                        wrapped help\n"
    )
    assert help_problems(text) == (
        ["no description", "no help text: b", "no help text: --quiet"],
        ["a", "b"],
    )


@pytest.fixture(scope="module")
def user_venv(make_venv):
    return make_venv(*sorted({package for package, _ in SCRIPTS}))


@pytest.mark.latest_only
@pytest.mark.parametrize("package, script", SCRIPTS, ids=[script for _, script in SCRIPTS])
def test_version_and_help(user_venv, package, script):
    version = user_venv.run(script, "--version", timeout=120)
    assert (version.returncode, version.stdout) == (0, f"{script} {package_version(package)}\n")
    usage = user_venv.run(script, "--help", timeout=120)
    assert usage.returncode == 0, usage.stderr
    problems, subcommands = help_problems(usage.stdout)
    for subcommand in subcommands:
        sub_usage = user_venv.run(script, subcommand, "--help", timeout=120)
        assert sub_usage.returncode == 0, sub_usage.stderr
        problems += [f"{subcommand}: {p}" for p in help_problems(sub_usage.stdout)[0]]
    assert problems == [], usage.stdout
