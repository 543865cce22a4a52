"""DQfD: .demo files into the expert replay, the demonstrations setting, learning from them."""

import numpy as np
import pytest
import torch
from demo_files import GOAL, N_POSITIONS, RIGHT, START, write_basic_expert_demo
from dqn_testkit import behavior_spec, demo_trainer, make_optimizer, trainer_settings
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.settings import TrainerSettings

from mla_dqn.demonstrations import load_expert_replay
from mla_dqn.settings import DemonstrationSettings
from mla_plugin_core.replay.transitions import ReplaySample

GAMMA = 0.99  # extrinsic's default


def expert_sample(path, n_step: int = 1) -> ReplaySample:
    """Every transition loaded from ``path`` (a file or folder) for Basic's spec."""
    optimizer = make_optimizer(behavior_spec(N_POSITIONS, (3,)), trainer_settings())
    replay = load_expert_replay(
        str(path), optimizer.policy.behavior_spec, optimizer.reward_signals, n_step
    )
    return replay.all_transitions()


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
    sample = replay.all_transitions()
    positions = sample.obs[0].argmax(axis=1)
    next_positions = sample.next_obs[0].argmax(axis=1)
    assert positions.tolist() == list(range(START, GOAL)) * 2
    # Terminal transitions end at the episode's terminal record, the file's last one
    # included (curiosity and GAIL read these next observations).
    assert next_positions.tolist() == list(range(START + 1, GOAL + 1)) * 2
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
    sample = replay.all_transitions()
    order = np.argsort(sample.obs[0].argmax(axis=1))
    discounts = sample.discounts["extrinsic"][order]
    assert discounts.tolist() == pytest.approx([0.99**3] * 5 + [0.99**2, 0.99])
    assert sample.dones[order].tolist() == [False] * 4 + [True] * 3


def test_a_folder_of_files_ending_mid_episode_is_not_joined(tmp_path):
    # Each file: one episode, then 10, 11, 12 of an episode the recording stopped in.
    for name in ("a.demo", "b.demo"):
        write_basic_expert_demo(tmp_path / name, episodes=1, trailing_to=START + 2)
    sample = expert_sample(tmp_path)
    positions = sample.obs[0].argmax(axis=1)
    next_positions = sample.next_obs[0].argmax(axis=1)
    # Per file 7 + 2 transitions: the last record (12) has no next observation.
    per_file = list(range(START, GOAL)) + [START, START + 1]
    assert sorted(positions.tolist()) == sorted(per_file * 2)
    assert (next_positions == positions + 1).all()  # no jump from one file to the next
    assert positions[sample.dones].tolist() == [GOAL - 1] * 2
    # The recording stopped at 12: bootstrap from it, as for a max-step cut.
    assert positions[sample.truncated].tolist() == [START + 1] * 2


def test_n_step_expert_sums_stay_within_a_file(tmp_path):
    for name in ("a.demo", "b.demo"):
        write_basic_expert_demo(tmp_path / name, episodes=1, trailing_to=START + 2)
    sample = expert_sample(tmp_path, n_step=3)
    positions = sample.obs[0].argmax(axis=1)
    steps = np.rint(np.log(sample.discounts["extrinsic"]) / np.log(GAMMA)).astype(int)
    assert (sample.next_obs[0].argmax(axis=1) == positions + steps).all()
    for position, k, reward in zip(positions, steps, sample.rewards["extrinsic"], strict=True):
        step_rewards = [0.99 if p == GOAL - 1 else -0.01 for p in range(position, position + k)]
        assert reward == pytest.approx(sum(GAMMA**i * r for i, r in enumerate(step_rewards)))
    trailing = np.flatnonzero(positions < START + 2)  # 10 and 11, both episodes per file
    assert sorted(zip(positions[trailing], steps[trailing], strict=True)) == sorted(
        [(10, 3), (11, 3), (10, 2), (11, 1)] * 2
    )


def test_max_step_cuts_are_not_terminals(tmp_path):
    path = write_basic_expert_demo(tmp_path / "expert.demo", episodes=1, cut_at=START + 4)
    sample = expert_sample(path)
    positions = sample.obs[0].argmax(axis=1)
    assert sorted(positions.tolist()) == sorted(list(range(START, GOAL)) + [10, 11, 12, 13])
    assert (sample.next_obs[0].argmax(axis=1) == positions + 1).all()
    assert positions[sample.dones].tolist() == [GOAL - 1]
    assert positions[sample.truncated].tolist() == [START + 3]  # bootstraps from 14


def test_wrong_demo_spec_is_refused_naming_the_file(tmp_path):
    path = write_basic_expert_demo(tmp_path / "expert.demo")
    optimizer = make_optimizer(behavior_spec(N_POSITIONS, (2,)), trainer_settings())
    with pytest.raises(ValueError, match="expert.demo: the actions .* do not match"):
        load_expert_replay(str(path), optimizer.policy.behavior_spec, optimizer.reward_signals, 1)
    # In a folder, the file of another observation size is named, on one line.
    write_basic_expert_demo(tmp_path / "other.demo", size=N_POSITIONS + 1)
    with pytest.raises(ValueError) as error:
        expert_sample(tmp_path)
    message = str(error.value)
    assert message.startswith(str(tmp_path / "other.demo")) and "\n" not in message
    assert "observation 0" in message and "(21,)" in message and "(20,)" in message


def test_missing_or_empty_demo_paths_are_refused_naming_them(tmp_path):
    missing = tmp_path / "missing.demo"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        expert_sample(missing)
    (tmp_path / "notes.txt").write_text("no demonstrations here")
    with pytest.raises(ValueError, match=f"{tmp_path}: no .demo file"):
        expert_sample(tmp_path)
    # Through the trainer: mlagents-learn's one-line configuration error.
    with pytest.raises(TrainerConfigError) as error:
        demo_trainer(tmp_path, DemonstrationSettings(path=str(tmp_path)))
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)


def normalizer_state(network: torch.nn.Module) -> dict[str, np.ndarray]:
    return {
        name.rsplit(".", 1)[1]: buffer.numpy().copy()
        for name, buffer in network.named_buffers()
        if ".normalizer." in name
    }


def test_normalizer_sees_the_demonstrations_once_before_pretraining(tmp_path):
    path = write_basic_expert_demo(tmp_path / "expert.demo")
    demos = DemonstrationSettings(path=str(path), batch_size=4, pretrain_updates=3)
    trainer = demo_trainer(tmp_path, demos, normalize=True)
    online = normalizer_state(trainer.optimizer.q_network)
    # The 14 decisions (not the terminal records), on top of the initial count of 1.
    assert online["normalization_steps"] == 1 + 14
    expert_obs = np.eye(N_POSITIONS)[list(range(START, GOAL)) * 2]
    # mlagents' running mean starts from 0 with a count of 1.
    expected_mean = expert_obs.sum(axis=0) / (1 + 14)
    np.testing.assert_allclose(online["running_mean"], expected_mean, atol=1e-6)
    # Pre-training copied these statistics into the target network: it ran after.
    target = normalizer_state(trainer.optimizer.target_network)
    assert target["normalization_steps"] == 1 + 14
    assert int(trainer.optimizer.updates.count) == 3
    trainer.model_saver.save_checkpoint("Basic", 0)

    # --resume (here of a checkpoint at step 0): neither statistics nor pre-training again.
    resumed = demo_trainer(tmp_path, demos, load=True, normalize=True)
    again = normalizer_state(resumed.optimizer.q_network)
    assert again["normalization_steps"] == 1 + 14
    np.testing.assert_allclose(again["running_mean"], online["running_mean"])
    assert int(resumed.optimizer.updates.count) == 3


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


def test_expert_samples_carry_the_current_learning_rewards(tmp_path):
    """With n_step 1 the learning signals score each agent sample anew (rescore); the
    expert rows kept the values of load time (an untrained curiosity's large bonus)."""
    from mlagents.trainers.settings import CuriositySettings, RewardSignalType

    path = write_basic_expert_demo(tmp_path / "expert.demo")
    demos = DemonstrationSettings(path=str(path), batch_size=14)
    settings = trainer_settings(demonstrations=demos)
    settings.reward_signals[RewardSignalType.CURIOSITY] = CuriositySettings(strength=1.0)
    optimizer = make_optimizer(behavior_spec(N_POSITIONS, (3,)), settings)
    optimizer.expert_replay = load_expert_replay(
        str(path), optimizer.policy.behavior_spec, optimizer.reward_signals, 1
    )
    curiosity = optimizer.reward_signals["curiosity"]
    scored: list[int] = []
    evaluate = curiosity.evaluate
    curiosity.evaluate = lambda buffer: scored.append(buffer.num_experiences) or evaluate(buffer)
    optimizer.expert_loss(14)
    # the expert minibatch's distinct steps, scored once by curiosity as it is now
    assert len(scored) == 1 and 1 <= scored[0] <= 14
