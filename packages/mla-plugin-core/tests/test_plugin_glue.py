"""The glue plugins import from core: typed replay batches, the epsilon-greedy Q policy,
the target update's checkpointed counter, the scaffold's gamma check, ``mla-plugin uv-toml``."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import numpy as np
import pytest
import tomllib
import torch
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.settings import (
    NetworkSettings,
    RewardSignalSettings,
    RewardSignalType,
    TrainerSettings,
)
from mlagents_envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

from mla_plugin_core.cli import main
from mla_plugin_core.cli.scaffold.generate import PluginNames, generate
from mla_plugin_core.networks.q_network import DiscreteQActor, EpsilonGreedyQPolicy
from mla_plugin_core.networks.target_network import TargetUpdate
from mla_plugin_core.replay.batches import ReplayBatch
from mla_plugin_core.replay.transitions import ReplaySample
from mla_plugin_core.trainers.schedules import ScheduledValue

SPEC = BehaviorSpec(
    [ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "obs")],
    ActionSpec(0, (3, 2)),
)


def _sample(discounts: dict[str, list[float]]) -> ReplaySample:
    n = len(next(iter(discounts.values())))
    return ReplaySample(
        obs=[np.zeros((n, 2), np.float32)],
        continuous_actions=np.zeros((n, 0), np.float32),
        discrete_actions=np.zeros((n, 2), np.int32),
        action_masks=np.ones((n, 5), bool),
        rewards={name: np.full(n, i + 1.0, np.float32) for i, name in enumerate(discounts)},
        dones=np.array([True] + [False] * (n - 1)),
        truncated=np.zeros(n, bool),
        next_obs=[np.ones((n, 2), np.float32)],
        next_action_masks=np.ones((n, 5), bool),
        discounts={name: np.asarray(d, np.float32) for name, d in discounts.items()},
        indices=np.arange(n),
        weights=np.ones(n, np.float32),
    )


def test_replay_batch_has_one_discount_column_per_signal_in_the_order_asked():
    sample = _sample({"extrinsic": [0.99, 0.9801], "curiosity": [0.9, 0.81]})
    batch = ReplayBatch.from_sample(sample, ["curiosity", "extrinsic"])
    assert batch.signal_names == ("curiosity", "extrinsic")
    torch.testing.assert_close(batch.discounts, torch.tensor([[0.9, 0.99], [0.81, 0.9801]]))
    torch.testing.assert_close(batch.rewards, torch.tensor([[2.0, 1.0], [2.0, 1.0]]))
    assert batch.batch_size == 2
    assert batch.discrete_actions.dtype == torch.long
    assert batch.action_masks.dtype == torch.bool
    assert batch.dones.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match=r"\['gail'\] not in the replay sample"):
        ReplayBatch.from_sample(sample, ["gail"])


def test_epsilon_greedy_policy_follows_its_schedule_and_explores_every_branch():
    epsilon = ScheduledValue("linear", 1.0, 0.0, 100)
    policy = EpsilonGreedyQPolicy(0, SPEC, NetworkSettings(hidden_units=8), epsilon)
    assert policy.epsilon == 1.0
    policy.increment_step(50)
    assert policy.epsilon == pytest.approx(0.5)
    policy.actor.exploration_epsilon = 1.0
    masks = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0]] * 400)  # branch 0: {0, 2}; branch 1: {1}
    action, _, _ = policy.actor.get_action_and_stats([torch.zeros(400, 2)], masks)
    first, second = (a.flatten() for a in action.discrete_list)
    assert set(first.tolist()) == {0, 2} and set(second.tolist()) == {1}
    assert EpsilonGreedyQPolicy(0, SPEC, NetworkSettings(), epsilon, greedy=True).epsilon == 0.0


class _QuantileActor(DiscreteQActor):
    """A Q-network with an argument of its own, as a plugin's QR-DQN head has."""

    def __init__(self, *args: Any, num_quantiles: int, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, seed=seed, **kwargs)
        self.num_quantiles, self.seed_given = num_quantiles, seed


def test_actor_kwargs_are_added_to_the_policy_seed():
    # the bug this catches: actor_kwargs replaced {"seed": seed}, so an actor with an
    # argument of its own silently explored with seed 0 whatever the run's seed
    epsilon = ScheduledValue("constant", 0.1, 0.1, 1)
    policy = EpsilonGreedyQPolicy(7, SPEC, NetworkSettings(hidden_units=8), epsilon,
                                  actor_cls=_QuantileActor, actor_kwargs={"num_quantiles": 4})  # fmt: skip
    assert policy.actor.num_quantiles == 4 and policy.actor.seed_given == 7


def test_target_update_counts_in_its_state_dict_and_loads_the_old_counter():
    online, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    update = TargetUpdate(interval=3)
    assert [update.step(target, online) for _ in range(4)] == [False, False, True, False]
    saved = update.state_dict()
    assert list(saved) == ["count"] and int(saved["count"]) == 4
    resumed = TargetUpdate(interval=3)
    resumed.load_state_dict({"count": torch.tensor(5)})  # mla-dqn 0.1.0's UpdateCounter
    assert resumed.step(target, online) and resumed.updates == 6
    soft = TargetUpdate(tau=0.5)
    assert soft.step(target, online) and soft.updates == 1
    with pytest.raises(ValueError, match="tau"):
        TargetUpdate(tau=0.0)


def test_scaffolded_off_policy_trainer_refuses_signals_with_different_gammas(tmp_path):
    """The summed-reward Q-network has one discount; the template used to take the first
    signal's and train silently on a wrong target."""
    generate(PluginNames.from_name("gamma_check"), "off-policy", tmp_path)
    sys.path.insert(0, str(tmp_path / "mla-gamma-check" / "src"))
    try:
        trainer_module = importlib.import_module("mla_gamma_check.trainer")
        settings_module = importlib.import_module("mla_gamma_check.settings")
    finally:
        sys.path.pop(0)
    hyperparameters = settings_module.GammaCheckSettings()
    settings = TrainerSettings(
        trainer_type="gamma_check",
        hyperparameters=hyperparameters,
        reward_signals={
            RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=0.99),
            RewardSignalType.CURIOSITY: RewardSignalSettings(gamma=0.9),
        },
    )
    fake = types.SimpleNamespace(trainer_settings=settings, hyperparameters=hyperparameters, seed=0)
    behavior = types.SimpleNamespace(brain_name="Basic")
    create_policy = trainer_module.GammaCheckTrainer.create_policy
    with pytest.raises(TrainerConfigError, match="Basic: reward signals need one gamma"):
        create_policy(fake, behavior, BehaviorSpec(SPEC.observation_specs, ActionSpec(0, (3,))))


def test_uv_toml_command_prints_the_metadata_of_every_supported_release(capsys):
    assert main(["uv-toml"]) == 0
    metadata = tomllib.loads(capsys.readouterr().out)["dependency-metadata"]
    versions = {(entry["name"], entry["version"]) for entry in metadata}
    for release in ("0.30.0", "1.0.0", "1.1.0"):
        assert {("mlagents", release), ("mlagents-envs", release)} <= versions


def test_uv_toml_needs_only_the_standard_library():
    """README's index install runs ``mla-plugin uv-toml`` where core was installed with
    ``--no-deps``: the command must not import yaml, packaging or anything else."""
    import subprocess

    code = (
        "import sys, mla_plugin_core.cli as cli\n"
        "cli.main(['uv-toml'])\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))\n"
        "print('THIRD-PARTY', loaded, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "[[dependency-metadata]]" in result.stdout
    loaded = set(
        result.stderr.strip().splitlines()[-1].removeprefix("THIRD-PARTY ")[2:-2].split("', '")
    )
    # Besides core: what .pth files load at startup (mla-protobuf's hook, setuptools').
    assert loaded <= {"mla_plugin_core", "mla_protobuf", "_distutils_hack", "__main__"}, loaded
