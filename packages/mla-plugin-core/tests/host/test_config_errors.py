"""mla_plugin_core.host.config_errors: one-line configuration errors in mlagents-learn
(where a refusal is, an unknown trainer type, the buffer that cannot fit)."""

import pytest
from mlagents.plugins.trainer_type import register_trainer_plugins
from mlagents.trainers.settings import RunOptions

from mla_plugin_core.host import config_errors
from mla_plugin_core.settings.errors import (
    HyperparameterError,
    SettingError,
    UnknownSettingError,
    structuring,
)


def test_errors_take_behavior_and_path_from_the_structuring():
    assert str(HyperparameterError("n_step", 0, "must be an integer >= 1")) == (
        "hyperparameters.n_step = 0 is not allowed: must be an integer >= 1"
    )
    with structuring(behavior="Basic"), structuring("hyperparameters", "demonstrations"):
        nested = HyperparameterError("batch_size", 0, "must be an integer >= 1")
        unknown = UnknownSettingError(
            ("hyperparameters", "demonstrations", "batchsize"), "demonstrations", ["batch_size"]
        )
    assert str(nested) == (
        "Basic: hyperparameters.demonstrations.batch_size = 0 is not allowed: "
        "must be an integer >= 1"
    )
    assert nested.key == "batch_size" and nested.behavior == "Basic"
    assert str(unknown) == (
        "Basic: hyperparameters.demonstrations.batchsize is not a setting of demonstrations: "
        "did you mean batch_size? allowed: batch_size"
    )
    later = SettingError(("hyperparameters", "buffer_size"), 9, "too big", behavior="Walker")
    assert str(later) == "Walker: hyperparameters.buffer_size = 9 is not allowed: too big"


def test_trainer_type_message_names_the_distribution_of_a_missing_type():
    installed = ["poca", "ppo", "sac"]
    assert config_errors.trainer_type_message("dqn", installed) == (
        "dqn is not installed; installed: poca, ppo, sac; a trainer type comes with its "
        "plugin package, which mla-plugins name mla-<trainer_type> (pip install mla-dqn)"
    )
    assert "(pip install mla-my-algo)" in config_errors.trainer_type_message("my_algo", installed)
    # a close installed type may be a typo's or only look like a plugin's (a2c, sac): both
    assert config_errors.trainer_type_message("a2c", installed) == (
        "did you mean sac? installed: poca, ppo, sac; if a2c is a plugin's trainer type, "
        "install its package (mla-plugins name theirs mla-<trainer_type>: pip install mla-a2c)"
    )
    assert config_errors.trainer_type_message(3, installed) == "installed: poca, ppo, sac"


def test_core_names_no_plugin_of_its_own():
    """The trainer types of mla-plugins are not written into core: the message for one that
    is missing follows the naming rule that ``mla-plugin new`` uses too."""
    from mla_plugin_core.cli.scaffold.generate import PluginNames

    names = PluginNames.from_name("my_algo")
    assert names.distribution == config_errors.distribution_name("my_algo") == "mla-my-algo"
    assert not hasattr(config_errors, "DISTRIBUTIONS")


def test_structuring_names_behavior_path_and_the_buffer_that_cannot_fit(tiny_plugin_path):
    register_trainer_plugins()
    config_errors.install()

    def refusal(behavior):
        with pytest.raises(config_errors.TrainerConfigError) as error:
            RunOptions.from_dict({"behaviors": {"Basic": behavior}})
        return str(error.value)

    tiny = {"trainer_type": "tiny_ppo", "max_steps": 10**16}
    assert refusal({**tiny, "hyperparameters": {"buffer_size": "1e15"}}).startswith(
        "Basic: hyperparameters.buffer_size = 1000000000000000 is not allowed: the update "
        "buffer would take at least "
    )
    assert refusal({**tiny, "hyperparameters": {"buffer_size": 4096}, "max_steps": 1000}) == (
        "Basic: hyperparameters.buffer_size = 4096 is not allowed: must be <= max_steps (1000): "
        "an update waits for buffer_size experiences, so this run would never update"
    )
    assert refusal(5) == (  # the behavior named once
        "Basic: 5 is not allowed: must be a mapping of settings (trainer_type, hyperparameters, ...)"
    )
    assert refusal({"trainer_type": "ppo", "network_settings": {"memory": {"memory_size": 3}}}) == (
        "Basic: network_settings.memory.memory_size = 3 is not allowed: "
        "must be an even integer >= 2"
    )


def test_numbers_outside_behaviors_become_text_as_in_mlagents():
    """The type check covers every section mlagents structures; a number where a string
    goes (a numeric run id) is its text, as plain mlagents reads it."""
    config_errors.install()
    options = RunOptions.from_dict({"checkpoint_settings": {"run_id": 123}})
    assert options.checkpoint_settings.run_id == "123"
