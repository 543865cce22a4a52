"""README's Install > From a checkout runs as written: in a copy of the repository, as a
user's shell, it creates the venv, builds the wheels with ``nox -s build`` and installs the
four of them with the CPU torch; the venv then trains DQN on Basic and exports ONNX."""

import pytest
from conftest import Venv
from install_kit import (
    assert_user_install,
    copy_checkout,
    install_block,
    run_block,
    user_environment,
)

CHECKOUT = "From a checkout (Python 3.11)"


def test_checkout_block_installs_the_four_wheels():
    block = install_block(CHECKOUT)
    for wheel in ("mla_protobuf", "mla_plugin_core", "mla_dqn", "mla_envs"):
        assert f"dist/{wheel}-*.whl" in block
    assert '"torch==2.13.0+cpu" --find-links "${TORCH_CPU_WHEELS:-' in block


@pytest.mark.latest_only
def test_readme_install_from_a_checkout(tmp_path):
    checkout = copy_checkout(tmp_path / "mla-plugins")
    output = run_block(install_block(CHECKOUT), cwd=checkout, env=user_environment(), timeout=900)
    assert "usage: mlagents-learn" in output, output[-3000:]
    venv = Venv(checkout / ".venv")
    installed = venv.python("import mla_dqn, mla_envs; print(mla_dqn.__file__, mla_envs.__file__)")
    assert str(checkout / ".venv") in installed.stdout, installed.stdout + installed.stderr
    assert_user_install(venv, tmp_path)
