"""README's Install > From a checkout runs as written: in a copy of the repository, as a
user's shell, it creates the venv, builds the wheels with ``nox -s build`` and installs the
four of them with the CPU torch; the venv then trains DQN on Basic and exports ONNX. In the
same shell, README's "Many seeds and searches" block installs mla-sweep, runs its sweep
(four real mlagents-learn trials on embedded Ray) and writes the report."""

import csv
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, Venv
from install_kit import (
    FENCED_BASH,
    assert_user_install,
    copy_checkout,
    install_block,
    run_block,
    user_environment,
)

from mla_plugin_core.testing.learn import free_base_port

CHECKOUT = "From a checkout (Python 3.11)"


def test_checkout_block_installs_the_four_wheels():
    block = install_block(CHECKOUT)
    for wheel in ("mla_protobuf", "mla_plugin_core", "mla_dqn", "mla_envs"):
        assert f"dist/{wheel}-*.whl" in block
    assert '"torch==2.13.0+cpu" --find-links "${TORCH_CPU_WHEELS:-' in block


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> tuple[Path, str]:
    """A copy of the repository where README's checkout block has run; and its output."""
    folder = copy_checkout(tmp_path_factory.mktemp("user") / "mla-plugins")
    output = run_block(install_block(CHECKOUT), cwd=folder, env=user_environment(), timeout=900)
    return folder, output


@pytest.mark.latest_only
def test_readme_install_from_a_checkout(checkout, tmp_path):
    checkout, output = checkout
    assert "usage: mlagents-learn" in output, output[-3000:]
    venv = Venv(checkout / ".venv")
    installed = venv.python("import mla_dqn, mla_envs; print(mla_dqn.__file__, mla_envs.__file__)")
    assert str(checkout / ".venv") in installed.stdout, installed.stdout + installed.stderr
    assert_user_install(venv, tmp_path)


def section_block(title: str) -> str:
    """The bash block of README's ``## <title>`` (exactly one)."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = FENCED_BASH.findall(section)
    assert len(blocks) == 1, f"README's {title} has {len(blocks)} bash blocks"
    return blocks[0]


def sweep_block() -> str:
    return section_block("Many seeds and searches")


@pytest.mark.latest_only
def test_readme_sweep_runs_in_the_checkout_shell(checkout):
    checkout, _ = checkout
    # The user's shell after the install block: in the checkout, its venv active.
    run_block(". .venv/bin/activate\n" + sweep_block(), cwd=checkout, env=user_environment(),
              timeout=900)  # fmt: skip
    report = checkout / "sweeps" / "sweep"
    with open(report / "report.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2, rows  # n_step 1 and 3
    for row in rows:
        assert sorted(row["seeds"].split()) == ["1", "2"] and row["failed"] == "0", row
        assert all(float(steps) >= 2000 * 0.9 for steps in row["final_steps"].split()), row
    assert (report / "curves.png").stat().st_size > 1000


MORE_MACHINES = "My environment is slow / I have more machines"


@pytest.mark.latest_only
def test_readme_more_machines_runs_in_the_checkout_shell(checkout):
    """README's mla-learn block as written, but for its two ports: the environments' base
    port and the Ray head's (other runs on this machine may hold the defaults). It trains on
    four worker processes, then starts a two-node Ray cluster on this machine (as a head
    and another node would) and trains with the workers spread over both nodes."""
    checkout, _ = checkout
    block = section_block(MORE_MACHINES)
    head_port = free_base_port(1)
    for written, free in (
        ("HEAD=127.0.0.1:6379", f"HEAD=127.0.0.1:{head_port}"),
        ("--base-port 6100", f"--base-port {free_base_port(4)}"),
    ):
        assert block.count(written) == 1, written
        block = block.replace(written, free)
    ray = checkout / ".venv" / "bin" / "ray"
    # A user's shell has no nox $TMPDIR: under it (.nox/<session>/tmp of a deep checkout) Ray's
    # socket paths pass the 107 bytes of AF_UNIX, and `ray start` refuses (README says so).
    # A short folder under /tmp, as README's note gives one, made unique to this test.
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    try:
        output = run_block(". .venv/bin/activate\n" + block, cwd=checkout,
                           env=user_environment(RAY_TMPDIR=ray_tmp), timeout=900)  # fmt: skip
    finally:  # the block's own `ray stop` is its last line; stop the nodes if it failed
        if ray.exists():
            subprocess.run([str(ray), "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert "4 environment workers on 1 node(s)" in output, output[-3000:]
    assert "4 environment workers on 2 node(s)" in output, output[-3000:]
    for run_id in ("four-workers", "cluster"):
        run_dir = checkout / "results" / run_id
        status = json.loads((run_dir / "run_logs" / "training_status.json").read_text())
        assert max(c["steps"] for c in status["Basic"]["checkpoints"]) >= 3000, status
        assert (run_dir / "Basic.onnx").is_file()
