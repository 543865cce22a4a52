"""Mistakes in a YAML stop mlagents-learn with one clear line and a non-zero exit."""

import pytest
import yaml

from mla_plugin_core.testing.learn import free_base_port


@pytest.fixture(scope="module")
def dqn_venv(make_venv):
    return make_venv("mla-dqn", "mla-envs")


# case -> (behavior settings, behavior (environment), what the error line must say)
CASES = {
    "typo in a hyperparameter": (
        {"trainer_type": "dqn", "hyperparameters": {"learning_rat": 1.0e-3}},
        "Basic",
        "learning_rat",
    ),
    "value out of range": (
        {"trainer_type": "dqn", "hyperparameters": {"batch_size": -4}},
        "Basic",
        "hyperparameters.batch_size = -4 is not allowed",
    ),
    "unknown trainer_type": ({"trainer_type": "dqnn"}, "Basic", "dqnn"),
    "continuous actions for DQN": ({"trainer_type": "dqn"}, "3DBall", "discrete"),
}
ENV_SCRIPTS = {"Basic": "mla-env-basic", "3DBall": "mla-env-3dball"}


@pytest.mark.parametrize("case", list(CASES))
def test_one_clear_line(dqn_venv, tmp_path, case):
    settings, behavior, expected = CASES[case]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"behaviors": {behavior: {**settings, "max_steps": 1000}}}))
    result = dqn_venv.run(
        "mlagents-learn", str(config), "--run-id", "bad", "--results-dir", str(tmp_path / "results"),
        "--env", str(dqn_venv.bin / ENV_SCRIPTS[behavior]), "--no-graphics",
        "--base-port", str(free_base_port()), cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert expected in errors[0]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
