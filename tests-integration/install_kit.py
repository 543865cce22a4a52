"""What the install tests share: README's install commands run as a user's shell would run
them, and a few hundred steps of DQN on Basic through a venv's own ``mlagents-learn`` (the
proof that an install trains, checkpoints and exports)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Venv, torch_pin

from mla_plugin_core.testing.learn import free_base_port

DQN_BASIC = ROOT / "packages" / "mla-dqn" / "src" / "mla_dqn" / "configs" / "dqn_basic.yaml"
#: Long enough for updates (after ``buffer_init_steps``), a summary and the final checkpoint.
STEPS = 300


def train_dqn_briefly(venv: Venv, folder: Path, run_id: str = "tiny") -> Path:
    """Run the shipped ``dqn_basic.yaml``, shortened to ``STEPS``, with ``venv``'s
    ``mlagents-learn`` against its ``mla-env-basic`` on a free port; assert that it exited 0
    with a DQN run folder holding a checkpoint and an ``.onnx`` model. The run folder."""
    config = yaml.safe_load(DQN_BASIC.read_text())
    behavior = config["behaviors"]["Basic"]
    behavior.update(max_steps=STEPS, summary_freq=100, checkpoint_interval=STEPS)
    behavior["hyperparameters"]["buffer_init_steps"] = 64
    config_file = folder / f"{run_id}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    results = folder / "results"
    run = venv.run(
        "mlagents-learn", str(config_file), "--run-id", run_id, "--results-dir", str(results),
        "--env", str(venv.bin / "mla-env-basic"), "--base-port", str(free_base_port()),
        "--no-graphics", timeout=300, cwd=folder,
    )  # fmt: skip
    log = run.stdout[-3000:] + run.stderr[-3000:]
    assert run.returncode == 0, log
    run_dir = results / run_id
    used = yaml.safe_load((run_dir / "configuration.yaml").read_text())
    assert used["behaviors"]["Basic"]["trainer_type"] == "dqn", log
    assert list(run_dir.rglob("*.pt")), log
    assert list(run_dir.glob("Basic*.onnx")), log
    return run_dir


FENCED_BASH = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def install_block(heading: str) -> str:
    """The bash block of README's ``## Install`` under ``### <heading>`` (exactly one)."""
    install = (ROOT / "README.md").read_text().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    part = install.split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0]
    blocks = FENCED_BASH.findall(part)
    assert len(blocks) == 1, f"README's Install > {heading} has {len(blocks)} bash blocks"
    return blocks[0]


def user_environment(**variables: str) -> dict[str, str]:
    """The environment of a user's shell: this test session's venv (and nox's variables) out
    of it, ``TORCH_CPU_WHEELS`` naming the folder of the CPU torch wheel, plus ``variables``."""
    if not torch_pin():
        pytest.skip("PIP_FIND_LINKS holds no CPU torch wheel (PyTorch's page is unreachable)")
    session_bin = str(Path(sys.prefix) / "bin")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("VIRTUAL_ENV", "UV_PYTHON", "PYTHONPATH") and not name.startswith("NOX_")
    }
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != session_bin)
    env["TORCH_CPU_WHEELS"] = os.environ["PIP_FIND_LINKS"]
    return {**env, **variables}


def run_block(block: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    """Run README's ``block`` as one bash script (stopping at the first failing command) in
    ``cwd``; assert it succeeded; its output."""
    run = subprocess.run(
        ["bash", "-e", "-c", block], cwd=cwd, env=env, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert run.returncode == 0, f"exit {run.returncode}:\n{run.stdout[-5000:]}"
    return run.stdout


def copy_checkout(destination: Path) -> Path:
    """The repository's files as a fresh clone would have them (tracked, plus new files not
    ignored yet), copied to ``destination``; symlinks stay symlinks."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return destination


#: Prints the trainer types mlagents registers from its plugins, one line.
REGISTERED_TYPES = (
    "from mlagents.plugins.trainer_type import register_trainer_plugins\n"
    "print(' '.join(sorted(register_trainer_plugins()[0])))\n"
)


def assert_user_install(venv: Venv, folder: Path) -> None:
    """``venv`` is a working install: ``mlagents-learn --help``, ``dqn`` registered, CPU
    torch, ``mla-plugin doctor`` finds no problem, and a tiny DQN run that exports ONNX."""
    help_ = venv.run("mlagents-learn", "--help")
    assert help_.returncode == 0 and "usage: mlagents-learn" in help_.stdout, help_.stderr
    types = venv.python(REGISTERED_TYPES)
    assert types.returncode == 0 and "dqn" in types.stdout.split(), types.stdout + types.stderr
    assert "Error initializing Trainer plugins" not in types.stderr, types.stderr
    torch = venv.python("import torch; print(torch.__version__)")
    assert torch.stdout.strip().endswith("+cpu"), torch.stdout + torch.stderr
    doctor = venv.run("mla-plugin", "doctor", "--base-port", str(free_base_port()))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    train_dqn_briefly(venv, folder)
