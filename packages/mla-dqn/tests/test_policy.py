"""Epsilon-greedy acting, exploration schedule, refused specs, ONNX export."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from dqn_testkit import behavior_spec, trainer_settings
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.settings import (
    CuriositySettings,
    GAILSettings,
    NetworkSettings,
    RewardSignalType,
    RNDSettings,
)
from mlagents.trainers.torch_entities.model_serialization import ModelSerializer

from mla_dqn.networks import QNetwork
from mla_dqn.settings import DQNSettings
from mla_dqn.trainer import DQNPolicy, DQNTrainer, exploration_epsilon
from mla_plugin_core.io.onnx_export import use_legacy_exporter

BRANCHES = (3, 4)


def q_network(seed: int = 0, **kwargs) -> QNetwork:
    torch.manual_seed(seed)
    spec = behavior_spec(5, BRANCHES)
    return QNetwork(
        spec.observation_specs,
        NetworkSettings(hidden_units=16, num_layers=1),
        spec.action_spec,
        seed=seed,
        **kwargs,
    )


def act(network: QNetwork, obs: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    action, _, _ = network.get_action_and_stats([obs], masks=masks)
    return action.discrete_tensor.squeeze(1).numpy()  # [B, n_branches]


# Branch 0 allows actions 0 and 2; branch 1 allows only action 3.
MASK = torch.tensor([[1, 0, 1, 0, 0, 0, 1]], dtype=torch.float32)


@pytest.mark.parametrize("dueling", [False, True])
def test_random_and_greedy_actions_respect_masks(dueling):
    network = q_network(dueling=dueling)
    obs = torch.randn(4000, 5)
    masks = MASK.repeat(4000, 1)
    for epsilon in (0.0, 1.0):
        network.exploration_epsilon = epsilon
        actions = act(network, obs, masks)
        assert set(actions[:, 0]) <= {0, 2}
        assert set(actions[:, 1]) == {3}
    # Random actions are uniform over the allowed ones: 0 and 2 each about half the time.
    network.exploration_epsilon = 1.0
    share = np.mean(act(network, obs, masks)[:, 0] == 0)
    assert 0.45 < share < 0.55


def test_each_agent_explores_independently():
    network = q_network()
    obs = torch.zeros(4000, 5)  # identical agents: the greedy action is the same for all
    masks = torch.ones(4000, sum(BRANCHES))
    network.exploration_epsilon = 0.0
    greedy = act(network, obs, masks)
    assert (greedy == greedy[0]).all()
    network.exploration_epsilon = 0.5
    actions = act(network, obs, masks)
    differs = (actions != greedy[0]).any(axis=1)
    # A row explores with p = 0.5 and then differs from greedy with p = 1 - 1/12.
    assert 0.5 * 11 / 12 - 0.04 < differs.mean() < 0.5 * 11 / 12 + 0.04


def test_exploration_schedules():
    settings = DQNSettings(
        exploration_initial_eps=1.0, exploration_final_eps=0.1, exploration_steps=1000
    )
    assert exploration_epsilon(settings, 0) == pytest.approx(1.0)
    assert exploration_epsilon(settings, 500) == pytest.approx(0.55)
    assert exploration_epsilon(settings, 5000) == pytest.approx(0.1)
    settings.exploration_schedule = settings.exploration_schedule.EXPONENTIAL
    assert exploration_epsilon(settings, 500) == pytest.approx(0.1**0.5)


def test_policy_epsilon_follows_its_step():
    spec = behavior_spec(5, BRANCHES)
    settings = trainer_settings(exploration_steps=100, exploration_final_eps=0.0)
    policy = DQNPolicy(0, spec, settings.network_settings, settings.hyperparameters, ["extrinsic"])
    assert policy.epsilon == pytest.approx(1.0)
    policy.set_step(50)
    assert policy.epsilon == pytest.approx(0.5)
    policy.greedy = True
    assert policy.epsilon == 0.0


def test_self_play_copies_explore_as_training_advances(tmp_path):
    """mlagents' GhostTrainer acts with policies it creates next to the trainer's own; they
    get the trainer's weights but never a step, and used to explore at epsilon 1 forever."""
    from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
    from mlagents.trainers.ghost.controller import GhostController
    from mlagents.trainers.ghost.trainer import GhostTrainer
    from mlagents.trainers.settings import SelfPlaySettings

    settings = trainer_settings(exploration_steps=100, exploration_final_eps=0.0)
    settings.self_play = SelfPlaySettings()
    dqn = DQNTrainer("Soccer", 10, settings, True, False, 0, str(tmp_path))
    ghost = GhostTrainer(dqn, "Soccer", GhostController(), 10, settings, True, str(tmp_path))
    spec = behavior_spec(5, BRANCHES)
    acting = [
        ghost.create_policy(BehaviorIdentifiers.from_name_behavior_id(f"Soccer?team={team}"), spec)
        for team in (0, 1)
    ]
    learner = dqn.get_policy("Soccer?team=0")
    assert all(policy is not learner for policy in acting)
    dqn._increment_step(75, "Soccer?team=0")  # as the trainer does per trajectory
    assert learner.epsilon == pytest.approx(0.25)
    assert [policy.epsilon for policy in acting] == pytest.approx([0.25, 0.25])


def _trainer(settings) -> DQNTrainer:
    return DQNTrainer("Walker", 10, settings, True, False, 0, "/nonexistent")


def test_continuous_actions_are_refused_naming_the_behavior():
    with pytest.raises(
        TrainerConfigError,
        match="^Walker: trainer_type = 'dqn' is not allowed: .*DQN needs discrete actions",
    ):
        _trainer(trainer_settings()).create_policy(None, behavior_spec(5, (), continuous=2))
    with pytest.raises(TrainerConfigError, match="DQN needs discrete actions"):
        _trainer(trainer_settings()).create_policy(None, behavior_spec(5, (3,), continuous=1))


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        (
            {"burn_in": 64},
            r"hyperparameters.burn_in = 64 is not allowed: must be < network_settings.memory.sequence_length \(64\)",
        ),
        (
            {"sequence_overlap": 64},
            r"hyperparameters.sequence_overlap = 64 is not allowed: must be < ",
        ),
        (
            {"demonstrations": {"path": "x.demo"}},
            r"hyperparameters.demonstrations = .* is not allowed: demonstrations are not supported with network_settings.memory",
        ),
    ],
)
def test_recurrent_settings_that_cannot_work_are_refused_in_one_line(hyperparameters, message):
    """Recurrent DQN (R2D2) is accepted; a burn-in or an overlap as long as the sequences,
    or demonstrations (whose replay holds transitions), are refused naming the key."""
    from mla_dqn.settings import DemonstrationSettings

    settings = trainer_settings()
    settings.network_settings.memory = NetworkSettings.MemorySettings()  # sequences of 64
    _trainer(settings).create_policy(None, behavior_spec(5, (3,)))  # accepted
    if "demonstrations" in hyperparameters:
        hyperparameters = {"demonstrations": DemonstrationSettings(path="x.demo")}
    bad = trainer_settings(**hyperparameters)
    bad.network_settings = settings.network_settings
    with pytest.raises(TrainerConfigError, match=f"^Walker: {message}"):
        _trainer(bad).create_policy(None, behavior_spec(5, (3,)))


@pytest.mark.parametrize(
    ("kind", "signal"),
    [
        (RewardSignalType.CURIOSITY, CuriositySettings()),
        (RewardSignalType.GAIL, GAILSettings(demo_path="x.demo", use_actions=True)),
        (RewardSignalType.GAIL, GAILSettings(demo_path="x.demo")),
        (RewardSignalType.RND, RNDSettings()),
    ],
)
def test_every_reward_signal_is_accepted_at_any_n_step(kind, signal):
    """0.1 refused curiosity and GAIL with use_actions at n_step > 1; since the replay keeps
    1-step rows, they learn from those whatever n_step is."""
    settings = trainer_settings(n_step=3)
    settings.reward_signals[kind] = signal
    _trainer(settings)._refuse_unsupported(behavior_spec(5, (3,)))


def test_onnx_export_has_unity_names_and_matches_torch_greedy_actions(tmp_path):
    spec = behavior_spec(5, BRANCHES)
    settings = trainer_settings(dueling=True)
    torch.manual_seed(0)
    policy = DQNPolicy(
        0, spec, settings.network_settings, settings.hyperparameters, ["extrinsic", "curiosity"]
    )
    policy.actor.exploration_epsilon = 1.0  # the export must still be greedy
    use_legacy_exporter()  # what the entry point does for mlagents-learn on current torch
    ModelSerializer(policy).export_policy_model(str(tmp_path / "model"))
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    inputs = {i.name for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    assert {"obs_0", "action_masks"} <= inputs
    assert outputs == [
        "version_number",
        "memory_size",
        "discrete_actions",
        "discrete_action_output_shape",
        "deterministic_discrete_actions",
    ]
    obs = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    masks = np.ones((64, sum(BRANCHES)), np.float32)
    masks[::2] = MASK.numpy()
    feed = {"obs_0": obs, "action_masks": masks}
    feed = {k: v for k, v in feed.items() if k in inputs}
    result = dict(zip(outputs, session.run(None, feed), strict=True))
    expected = policy.actor.greedy_actions([torch.as_tensor(obs)], torch.as_tensor(masks))
    np.testing.assert_array_equal(result["deterministic_discrete_actions"], expected.numpy())
    np.testing.assert_array_equal(result["discrete_actions"], expected.numpy())
    assert result["version_number"].tolist() == [3.0]
    assert result["memory_size"].tolist() == [0.0]
    assert result["discrete_action_output_shape"].tolist() == [list(map(float, BRANCHES))]
