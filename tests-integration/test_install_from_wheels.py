"""Installing one algorithm's wheel makes its trainer_type available, and nothing else."""

import pytest

REGISTERED = (
    "from mlagents.plugins.trainer_type import register_trainer_plugins\n"
    "import importlib.util\n"
    "types, settings = register_trainer_plugins()\n"
    "print(sorted(types))\n"
    "print([m for m in ('mla_dqn', 'mla_a2c') if importlib.util.find_spec(m)])\n"
)


@pytest.mark.parametrize(
    "distribution, trainer_type, absent", [("mla-dqn", "dqn", "a2c"), ("mla-a2c", "a2c", "dqn")]
)
def test_one_wheel_one_trainer(make_venv, mlagents_version, distribution, trainer_type, absent):
    venv = make_venv(distribution)
    result = venv.python(REGISTERED)
    assert result.returncode == 0, result.stderr
    registered, importable = result.stdout.splitlines()[-2:]
    assert trainer_type in registered and absent not in registered
    assert importable == f"['mla_{trainer_type}']"
    assert "Error initializing Trainer plugins" not in result.stderr
    version = venv.python(
        "import importlib.metadata as m; print(m.version('mlagents'), m.version('mla-plugin-core'))"
    )
    assert version.stdout.split()[0] == mlagents_version
