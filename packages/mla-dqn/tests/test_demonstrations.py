"""DQfD: .demo files into the expert replay, the demonstrations setting, learning from them."""

import numpy as np
import pytest
import torch
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.settings import TrainerSettings

from mla_dqn.demonstrations import load_expert_replay
from mla_dqn.settings import DemonstrationSettings

from .demo_files import GOAL, N_POSITIONS, RIGHT, START, write_basic_expert_demo
from .dqn_testkit import behavior_spec, make_optimizer, trainer_settings


def test_demonstrations_setting_from_yaml(registered_plugins):
    config = {
        "trainer_type": "dqn",
        "hyperparameters": {"demonstrations": {"path": "x.demo", "large_margin": 0.5}},
    }
    settings = TrainerSettings.structure(config, TrainerSettings)
    demos = settings.hyperparameters.demonstrations
    assert isinstance(demos, DemonstrationSettings)
    assert (demos.path, demos.large_margin, demos.margin_weight) == ("x.demo", 0.5, 1.0)
    config["hyperparameters"]["demonstrations"]["margin"] = 1.0
    with pytest.raises(TrainerConfigError, match="margin"):
        TrainerSettings.structure(config, TrainerSettings)


def test_demo_file_becomes_expert_transitions(tmp_path):
    path = write_basic_expert_demo(tmp_path / "expert.demo", episodes=2)
    optimizer = make_optimizer(behavior_spec(N_POSITIONS, (3,)), trainer_settings())
    replay = load_expert_replay(
        str(path), optimizer.policy.behavior_spec, optimizer.reward_signals, 1
    )
    # 7 decisions per episode; the terminal records (position 17) are not decisions.
    assert len(replay) == 14
    sample = replay._gather(np.arange(14), np.ones(14, np.float32))
    positions = sample.obs[0].argmax(axis=1)
    next_positions = sample.next_obs[0].argmax(axis=1)
    assert positions.tolist() == list(range(START, GOAL)) * 2
    # The file's last decision ends its episode: no next record, no bootstrap needed.
    assert next_positions[:13].tolist() == (list(range(START + 1, GOAL + 1)) * 2)[:13]
    assert (sample.discrete_actions[:, 0] == RIGHT).all()
    assert sample.dones.tolist() == ([False] * 6 + [True]) * 2
    expected_rewards = ([-0.01] * 6 + [0.99]) * 2
    assert sample.rewards["extrinsic"].tolist() == pytest.approx(expected_rewards)
    assert sample.discounts["extrinsic"].tolist() == pytest.approx([0.99] * 14)


def test_n_step_expert_transitions_stop_at_episode_ends(tmp_path):
    path = write_basic_expert_demo(tmp_path / "expert.demo", episodes=1)
    optimizer = make_optimizer(behavior_spec(N_POSITIONS, (3,)), trainer_settings())
    replay = load_expert_replay(
        str(path), optimizer.policy.behavior_spec, optimizer.reward_signals, 3
    )
    sample = replay._gather(np.arange(7), np.ones(7, np.float32))
    order = np.argsort(sample.obs[0].argmax(axis=1))
    discounts = sample.discounts["extrinsic"][order]
    assert discounts.tolist() == pytest.approx([0.99**3] * 5 + [0.99**2, 0.99])
    assert sample.dones[order].tolist() == [False] * 4 + [True] * 3


def test_wrong_demo_spec_is_refused(tmp_path):
    path = write_basic_expert_demo(tmp_path / "expert.demo")
    optimizer = make_optimizer(behavior_spec(N_POSITIONS, (2,)), trainer_settings())
    with pytest.raises(RuntimeError, match="do not match"):
        load_expert_replay(str(path), optimizer.policy.behavior_spec, optimizer.reward_signals, 1)


def test_pretraining_with_the_margin_loss_imitates_the_expert(tmp_path):
    path = write_basic_expert_demo(tmp_path / "expert.demo")
    torch.manual_seed(0)
    demos = DemonstrationSettings(path=str(path), batch_size=14, large_margin=0.8)
    settings = trainer_settings(learning_rate=3e-3, demonstrations=demos)
    optimizer = make_optimizer(behavior_spec(N_POSITIONS, (3,)), settings)
    optimizer.expert_replay = load_expert_replay(
        str(path), optimizer.policy.behavior_spec, optimizer.reward_signals, 1
    )
    stats = optimizer.pretrain(300)
    assert stats["Losses/Margin Loss"] < 0.05
    obs = torch.eye(N_POSITIONS)[START:GOAL]
    assert (optimizer.q_network.greedy_actions([obs]) == RIGHT).all()
