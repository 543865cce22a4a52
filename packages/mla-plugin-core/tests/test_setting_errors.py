"""The one error format of a refused setting: its pieces, and mlagents' structuring with it."""

import math

import pytest
from mlagents.plugins.trainer_type import register_trainer_plugins
from mlagents.trainers.settings import RunOptions, ScheduleType

from mla_plugin_core.host import config_errors
from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.settings import StrictBool, memory
from mla_plugin_core.settings.errors import (
    HyperparameterError,
    Refused,
    SettingError,
    UnknownSettingError,
    check_type,
    did_you_mean,
    structuring,
    unknown_key_message,
)


def test_did_you_mean_picks_the_closest_key_or_none():
    keys = ["batch_size", "buffer_size", "learning_rate", "learning_rate_schedule"]
    assert did_you_mean("learning_rat", keys) == "learning_rate"
    assert did_you_mean("bufer_size", keys) == "buffer_size"
    assert did_you_mean("zzz", keys) is None


def test_unknown_key_message_lists_the_allowed_keys_sorted():
    assert unknown_key_message("gama", ["strength", "gamma"]) == (
        "did you mean gamma? allowed: gamma, strength"
    )
    assert unknown_key_message("zzz", ["b", "a"]) == "allowed: a, b"


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


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        (64, int, 64),
        (64.0, int, 64),
        ("1e6", int, 1_000_000),  # PyYAML leaves 1e6 a string; an integral number is fine
        ("3e-4", float, 3e-4),  # as mlagents reads it
        (1, float, 1.0),
        (True, bool, True),
        (False, StrictBool, False),
        ("linear", ScheduleType, "linear"),
        (None, int | None, None),
        ("x", str, "x"),
        (123, str, "123"),  # `checkpoint_settings: {run_id: 123}`, as cattrs makes it
    ],
)
def test_check_type_accepts_what_mlagents_reads(value, type_, expected):
    assert check_type(value, type_) == expected


@pytest.mark.parametrize(
    ("value", "type_", "allowed"),
    [
        (64.5, int, "must be an integer"),
        ("three", int, "must be an integer"),
        (True, int, "must be an integer"),
        (math.inf, int, "must be an integer"),
        (math.inf, float, "must be a finite number"),
        (math.nan, float, "must be a finite number"),
        ("nan", float, "must be a finite number"),
        ("false", bool, "must be true or false"),
        (2, StrictBool, "must be true or false"),
        ("maybe", bool, "must be true or false"),
        ([5], str, "must be a string"),
        ("linearr", ScheduleType, "must be one of 'constant', 'linear' (did you mean 'linear'?)"),
    ],
)
def test_check_type_refuses_what_cattrs_would_bend(value, type_, allowed):
    with pytest.raises(Refused) as refused:
        check_type(value, type_)
    assert str(refused.value) == allowed


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


def test_format_bytes():
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(1536) == "1.5 KiB"
    assert memory.format_bytes(80 * 10**12) == "72.8 TiB"


@pytest.mark.parametrize("prioritized", [False, True])
def test_replay_bytes_is_what_the_buffer_allocates(prioritized):
    shapes, continuous, branches, signals = [(20,), (3, 4)], 2, [3, 2], ["extrinsic", "gail"]
    cls = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    buffer = cls(100, shapes, continuous, branches, signals)
    allocated = sum(a.nbytes for a in buffer._storage.values())
    if prioritized:
        allocated += buffer._sum_tree.nodes.nbytes + buffer._min_tree.nodes.nbytes
    assert memory.replay_bytes(100, shapes, continuous, branches, signals, prioritized) == (
        allocated
    )
    # The bound before the environment starts is below it, whatever the observations.
    assert memory.lower_bound_bytes(100, signals, prioritized) <= allocated


def test_refuse_if_too_big_names_the_size_and_the_memory():
    memory.refuse_if_too_big(100, 7, "the replay buffer", available=100)
    with pytest.raises(HyperparameterError) as error:
        memory.refuse_if_too_big(
            3 * 2**40, 7, "the replay buffer", detail="10 B per transition", available=2**30
        )
    assert str(error.value) == (
        "hyperparameters.buffer_size = 7 is not allowed: the replay buffer would take "
        "3.0 TiB (10 B per transition), more than this machine's memory (1.0 GiB)"
    )


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
