"""Mistakes in a YAML stop the real mlagents-learn with one line in one format, and a
non-zero exit, without a traceback; all but the last two before the environment starts:

    mlagents-learn: configuration error: <behavior>: <YAML path> = <value> is not allowed: <what is>
"""

import os

import pytest
import yaml

from mla_plugin_core.testing.learn import free_base_port

ENV_SCRIPTS = {"Basic": "mla-env-basic", "3DBall": "mla-env-3dball"}

#: A DQN replay buffer on Basic (20 observations, 3 actions: ~180 B per transition) that
#: passes the check before the environment starts (10 B per transition) but not the one
#: with the real shapes: five times this machine's memory at 180 B.
REAL_SHAPES_BUFFER = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 36

ALLOWED_DQN = (
    "allowed: batch_size, buffer_init_steps, buffer_size, burn_in, demonstrations, double_dqn,"
)


def case(case_id, settings, expected, *, venv="dqn", env="Basic", every_release=False):
    """One row: behavior settings -> the fragment the error line must contain."""
    marks = () if every_release else (pytest.mark.latest_only,)
    return pytest.param(settings, expected, venv, env, id=case_id, marks=marks)


def dqn(**hyperparameters):
    return {"trainer_type": "dqn", "hyperparameters": hyperparameters}


def a2c(**hyperparameters):
    return {"trainer_type": "a2c", "hyperparameters": hyperparameters}


CASES = [
    # unknown keys: a did-you-mean and the allowed keys
    case("typo in a hyperparameter", dqn(learning_rat=1.0e-3),
         "Basic: hyperparameters.learning_rat is not a setting of dqn: did you mean "
         f"learning_rate? {ALLOWED_DQN}", every_release=True),
    case("typo in network_settings", {"trainer_type": "ppo", "network_settings": {"hidden_unit": 8}},
         "Basic: network_settings.hidden_unit is not a setting of network_settings: did you "
         "mean hidden_units? allowed: deterministic, goal_conditioning_type, hidden_units,"),
    case("typo in a reward signal", {"trainer_type": "dqn", "reward_signals": {"extrinsic": {"gama": 0.9}}},
         "Basic: reward_signals.extrinsic.gama is not a setting of reward_signals.extrinsic: "
         "did you mean gamma? allowed: gamma, network_settings, strength"),
    case("unknown reward signal", {"trainer_type": "dqn", "reward_signals": {"extrinsik": {}}},
         "Basic: reward_signals.extrinsik is not a reward signal: did you mean extrinsic? "
         "allowed: curiosity, extrinsic, gail, rnd"),
    case("typo at the behavior's top level", {"trainer_type": "dqn", "max_step": 100},
         "Basic: max_step is not a setting of a behavior: did you mean max_steps? allowed: "
         "behavioral_cloning, checkpoint_interval,"),
    # types: integers, finite numbers, strict booleans
    case("out of range", dqn(batch_size=-4),
         "Basic: hyperparameters.batch_size = -4 is not allowed: must be an integer >= 1"),
    case("string for an integer", dqn(n_step="three"),
         "Basic: hyperparameters.n_step = 'three' is not allowed: must be an integer >= 1 and <= 100"),
    case("fraction for an integer", dqn(batch_size=64.5),
         "Basic: hyperparameters.batch_size = 64.5 is not allowed: must be an integer >= 1",
         every_release=True),
    case("infinite learning rate", dqn(learning_rate=float("inf")),
         "Basic: hyperparameters.learning_rate = inf is not allowed: must be a finite number > 0.0"),
    case("NaN learning rate (A2C)", a2c(learning_rate=float("nan")),
         "Basic: hyperparameters.learning_rate = nan is not allowed: must be a finite number > 0.0",
         venv="all"),
    case("string 'false'", dqn(dueling="false"),
         "Basic: hyperparameters.dueling = 'false' is not allowed: must be true or false"),
    case("2 for a boolean", dqn(dueling=2),
         "Basic: hyperparameters.dueling = 2 is not allowed: must be true or false"),
    case("maybe for a boolean", dqn(double_dqn="maybe"),
         "Basic: hyperparameters.double_dqn = 'maybe' is not allowed: must be true or false"),
    case("'yes' for a boolean (A2C)", a2c(normalize_advantage="yes"),
         "Basic: hyperparameters.normalize_advantage = 'yes' is not allowed: must be true or false",
         venv="all"),
    # mlagents' own settings that cannot work, for every trainer
    case("no hidden units (PPO)", {"trainer_type": "ppo", "network_settings": {"hidden_units": 0}},
         "Basic: network_settings.hidden_units = 0 is not allowed: must be an integer >= 1",
         every_release=True),
    case("negative layers", {"trainer_type": "dqn", "network_settings": {"num_layers": -1}},
         "Basic: network_settings.num_layers = -1 is not allowed: must be an integer >= 1"),
    case("memory size 0 (PPO)",
         {"trainer_type": "ppo", "network_settings": {"memory": {"memory_size": 0}}},
         "Basic: network_settings.memory.memory_size = 0 is not allowed: must be an even integer >= 2"),
    case("gamma above 1", {"trainer_type": "dqn", "reward_signals": {"extrinsic": {"gamma": 1.5}}},
         "Basic: reward_signals.extrinsic.gamma = 1.5 is not allowed: must be a number > 0.0 and <= 1.0"),
    case("gamma above 1 (A2C)", {"trainer_type": "a2c", "reward_signals": {"extrinsic": {"gamma": 1.5}}},
         "Basic: reward_signals.extrinsic.gamma = 1.5 is not allowed: must be a number > 0.0 and <= 1.0",
         venv="all"),
    case("infinite strength", {"trainer_type": "dqn", "reward_signals": {"extrinsic": {"strength": float("inf")}}},
         "Basic: reward_signals.extrinsic.strength = inf is not allowed: must be a finite number"),
    # buffers that cannot fit or never fill
    case("replay buffer of 1e12", dqn(buffer_size=1e12),
         "Basic: hyperparameters.buffer_size = 1000000000000 is not allowed: the replay buffer "
         "would take at least 9.1 TiB (10 B per transition before its observations and "
         "actions), more than this machine's memory"),
    case("A2C buffer of 1e12", a2c(buffer_size=1e12, batch_size=64),
         "Basic: hyperparameters.buffer_size = 1000000000000 is not allowed: must be <= "
         "max_steps (1000): an update waits for buffer_size experiences, so this run would "
         "never update", venv="all"),
    case("A2C batch larger than the buffer", a2c(buffer_size=32, batch_size=64),
         "Basic: hyperparameters.buffer_size = 32 is not allowed: must be >= batch_size (64)",
         venv="all"),
    # trainer types
    case("unknown trainer_type", {"trainer_type": "dqnn"},
         "Basic: trainer_type = 'dqnn' is not allowed: did you mean dqn? installed: dqn, poca, ppo, sac",
         every_release=True),
    case("trainer_type of a distribution not installed", {"trainer_type": "a2c"},
         "Basic: trainer_type = 'a2c' is not allowed: did you mean sac? installed: dqn, poca, "
         "ppo, sac; if a2c is a plugin's trainer type, install its package (mla-plugins name "
         "theirs mla-<trainer_type>: pip install mla-a2c)"),
    # after the environment started: what only its specs tell
    case("replay buffer too big for Basic's observations", dqn(buffer_size=REAL_SHAPES_BUFFER),
         f"Basic: hyperparameters.buffer_size = {REAL_SHAPES_BUFFER} is not allowed: the "
         "replay buffer would take "),
    case("continuous actions for DQN", {"trainer_type": "dqn"}, "discrete", env="3DBall",
         every_release=True),
]  # fmt: skip

#: The cases whose error comes from the behavior specs, after the environment started.
AFTER_START = {"replay buffer too big for Basic's observations", "continuous actions for DQN"}


@pytest.fixture(scope="module")
def venvs(make_venv):
    """Venvs made when first asked for: ``dqn`` (mla-dqn alone, shared with other modules
    that only run commands) and ``all`` (mla-dqn and mla-a2c)."""
    made = {}

    def get(name):
        if name not in made:
            extra = ("mla-a2c",) if name == "all" else ()
            made[name] = make_venv("mla-dqn", *extra, "mla-envs", shared_venv=True)
        return made[name]

    return get


@pytest.mark.parametrize(("settings", "expected", "venv_name", "env"), CASES)
def test_one_clear_line(venvs, tmp_path, request, settings, expected, venv_name, env):
    venv = venvs(venv_name)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"behaviors": {env: {"max_steps": 1000, **settings}}}))
    results = tmp_path / "results"
    result = venv.run(
        "mlagents-learn", str(config), "--run-id", "bad", "--results-dir", str(results),
        "--env", str(venv.bin / ENV_SCRIPTS[env]), "--no-graphics",
        "--base-port", str(free_base_port()), cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith("mlagents-learn: configuration error: "), errors[0]
    assert expected in errors[0], errors[0]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    started = (results / "bad" / "run_logs" / "Player-0.log").exists()
    assert started == (request.node.callspec.id in AFTER_START), result.stderr[-3000:]
