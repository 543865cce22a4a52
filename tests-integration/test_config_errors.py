"""Mistakes in a YAML stop mlagents-learn with one clear line and a non-zero exit."""

import textwrap

import pytest

from mla_plugin_core.testing.learn import free_base_port


@pytest.fixture(scope="module")
def dqn_venv(make_venv):
    return make_venv("mla-dqn", "mla-envs")


CASES = {
    "typo in a hyperparameter": (
        "trainer_type: dqn\n    hyperparameters:\n      learning_rat: 1.0e-3",
        "Basic",
        "learning_rat",
    ),
    "value out of range": (
        "trainer_type: dqn\n    hyperparameters:\n      batch_size: -4",
        "Basic",
        "hyperparameters.batch_size = -4 is not allowed",
    ),
    "unknown trainer_type": ("trainer_type: dqnn", "Basic", "dqnn"),
    "continuous actions for DQN": ("trainer_type: dqn", "3DBall", "discrete"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_clear_line(dqn_venv, tmp_path, case):
    behavior_yaml, behavior, expected = CASES[case]
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        behaviors:
          {behavior}:
            {behavior_yaml}
            max_steps: 1000
        """)
    )
    env_script = {"Basic": "mla-env-basic", "3DBall": "mla-env-3dball"}[behavior]
    result = dqn_venv.run(
        "mlagents-learn", str(config), "--run-id", "bad", "--results-dir", str(tmp_path / "results"),
        "--env", str(dqn_venv.bin / env_script), "--no-graphics", "--base-port", str(free_base_port()),
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert expected in errors[0]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
