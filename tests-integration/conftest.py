"""Fixtures of the end-to-end tests: built wheels, fresh virtual environments.

The ``integration`` nox session builds every package's wheel into ``MLA_WHEELS`` and names
the mlagents release under test in ``MLA_MLAGENTS``; each test then creates its own fresh
virtual environment with uv, installs from those wheels (the README recipe: ``uv.toml``
corrects mlagents' metadata on Python 3.11), and runs the real commands in it.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run these tests through `nox -s integration`", 2)
    return value


@dataclass
class Venv:
    """A fresh virtual environment with mlagents and some of our wheels installed."""

    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def run(self, *args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
        """Run ``args[0]`` from this venv's ``bin`` (stdout and stderr captured, as text)."""
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(self.path),
        }
        env.pop("PYTHONPATH", None)
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True, text=True, timeout=timeout, env=env, **kwargs,
        )  # fmt: skip

    def python(self, code: str) -> subprocess.CompletedProcess:
        return self.run("python", "-c", code)


def torch_pin() -> list[str]:
    """The CPU torch wheel of ``TORCH_CPU_WHEELS``, else ``PIP_FIND_LINKS``, when there is one
    (as the noxfile does)."""
    folder = os.environ.get("TORCH_CPU_WHEELS") or os.environ.get("PIP_FIND_LINKS", "")
    wheels = sorted(glob.glob(os.path.join(folder, "torch-*.whl"))) if folder else []
    if not wheels:
        return []
    return ["--find-links", folder, f"torch=={Path(wheels[-1]).name.split('-')[1]}"]


@pytest.fixture(scope="session")
def wheels() -> Path:
    return Path(_required_env("MLA_WHEELS"))


@pytest.fixture(scope="session")
def mlagents_version() -> str:
    return _required_env("MLA_MLAGENTS")


#: Our distributions keep their version between changes, so uv must not reuse a wheel it
#: cached from an earlier build (it did: a stale mla-plugin-core without a new module).
REFRESH = [
    arg
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml"))
    for arg in ("--refresh-package", pyproject.parent.name)
]


@pytest.fixture(scope="session")
def make_venv(tmp_path_factory, wheels, mlagents_version):
    """``make_venv("mla-dqn", "mla-envs")``: a fresh venv with those distributions installed
    from the built wheels (their dependencies on each other resolve to the wheels too).

    ``shared_venv=True``: the same venv for every test module that asks for the same
    distributions this way (tests that only run commands in it; one install instead of one
    per module). A test that installs or removes anything makes its own. ``config=``: another
    uv configuration in place of the repository's ``uv.toml`` (never shared).
    """
    shared: dict[tuple[str, ...], Venv] = {}  # sorted distributions -> venv

    def make(
        *distributions: str, shared_venv: bool = False, config: Path = ROOT / "uv.toml"
    ) -> Venv:
        key = tuple(sorted(distributions))
        shareable = shared_venv and config == ROOT / "uv.toml"
        if shareable and key in shared:
            return shared[key]
        venv = create(*distributions, config=config)
        if shareable:
            shared[key] = venv
        return venv

    def create(*distributions: str, config: Path) -> Venv:
        path = tmp_path_factory.mktemp("venv")
        subprocess.run(["uv", "venv", "-q", "-p", sys.executable, str(path)], check=True)
        result = subprocess.run(
            [
                "uv", "pip", "install", "-q", "--config-file", str(config),
                "--python", str(path / "bin" / "python"), "--find-links", str(wheels),
                *REFRESH, f"mlagents=={mlagents_version}", *torch_pin(), *distributions,
            ],
            capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return Venv(path)

    return make
