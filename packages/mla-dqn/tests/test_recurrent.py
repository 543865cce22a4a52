"""Recurrent DQN (R2D2): the sequence maths, the recurrent Q-network, one update, export."""

import numpy as np
import pytest
import torch
from dqn_testkit import behavior_spec, make_optimizer
from mlagents.trainers.settings import NetworkSettings, TrainerSettings

from mla_dqn import recurrent
from mla_dqn.settings import DQNSettings
from mla_plugin_core.replay.transitions import SequenceSample


def memory_settings(**hyperparameters) -> TrainerSettings:
    return TrainerSettings(
        trainer_type="dqn",
        hyperparameters=DQNSettings(**hyperparameters),
        network_settings=NetworkSettings(
            hidden_units=16,
            num_layers=1,
            memory=NetworkSettings.MemorySettings(sequence_length=6, memory_size=8),
        ),
    )


def test_value_rescaling_is_inverted_exactly():
    x = torch.linspace(-1000.0, 1000.0, 2001, dtype=torch.float64)
    torch.testing.assert_close(recurrent.unrescale(recurrent.rescale(x)), x, rtol=1e-9, atol=1e-9)
    assert recurrent.rescale(torch.tensor(0.0)) == 0.0


def brute_force_windows(valid, dones, rewards, gammas, n):
    b, length, s = rewards.shape
    k = np.zeros((b, length), int)
    returns = np.zeros((b, length, s))
    for i in range(b):
        last = max(j for j in range(length) if valid[i, j]) if valid[i].any() else -1
        for t in range(length):
            if not valid[i, t]:
                continue
            for step in range(n):
                u = t + step
                if u >= length:
                    break
                returns[i, t] += gammas**step * rewards[i, u]
                k[i, t] += 1
                if u == last or dones[i, u]:
                    break
    return k, returns


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_step_windows_match_a_loop_over_each_step(n):
    rng = np.random.default_rng(n)
    length = 7
    ends = rng.integers(1, length + 1, size=6)  # each sequence's valid steps
    valid = np.arange(length)[None, :] < ends[:, None]
    dones = np.zeros((6, length), bool)
    dones[np.arange(6), ends - 1] = rng.random(6) < 0.5  # a terminal at some ends
    rewards = rng.standard_normal((6, length, 2))
    gammas = np.array([0.9, 0.5])
    k, returns, discounts = recurrent.n_step_windows(
        torch.as_tensor(valid), torch.as_tensor(dones, dtype=torch.float32),
        torch.as_tensor(rewards), torch.as_tensor(gammas), n,
    )  # fmt: skip
    want_k, want_returns = brute_force_windows(valid, dones, rewards, gammas, n)
    np.testing.assert_array_equal(k.numpy() * valid, want_k)
    np.testing.assert_allclose(returns.numpy() * valid[..., None], want_returns, atol=1e-12)
    np.testing.assert_allclose(discounts.numpy(), gammas ** k.numpy()[..., None])


def test_unroll_inputs_put_the_next_observation_after_the_episode():
    obs = torch.arange(4.0).reshape(1, 4, 1)  # steps 0 1 2 3, the episode ends at step 1
    next_obs = torch.tensor([[[10.0], [11.0], [11.0], [11.0]]])  # padding repeats step 1
    valid = torch.tensor([[True, True, False, False]])
    u = recurrent.unroll_inputs(obs, next_obs, valid)
    assert u[0, :, 0].tolist() == [0.0, 1.0, 11.0, 11.0, 11.0]


def test_a_sequence_unrolled_at_once_equals_acting_step_by_step():
    """The replayed unroll and acting (one step at a time, the policy's memory carried)
    compute the same Q-values: what the learner trains is what the agent does."""
    torch.manual_seed(0)
    optimizer = make_optimizer(behavior_spec(4, (3, 2)), memory_settings())
    network = optimizer.q_network
    assert network.memory_size == 8
    obs = torch.randn(2, 5, 4)  # 2 sequences of 5 steps
    start = torch.randn(1, 2, 8)
    outputs, after = network.unroll([obs.reshape(10, 4)], start, 5)
    memories = start
    for step in range(5):
        one, memories = network.unroll([obs[:, step]], memories, 1)
        for d in range(2):
            torch.testing.assert_close(one[d], outputs[d].reshape(2, 5, *one[d].shape[1:])[:, step])
    torch.testing.assert_close(memories, after)
    # acting carries the memory: the same observation after another history acts on new state
    action, _, new_memories = network.get_action_and_stats([obs[:, 0]], memories=start)
    assert new_memories.shape == (1, 2, 8) and not torch.equal(new_memories, start)


def sequences(batch: int, length: int, rng: np.random.Generator, memory: int = 8) -> SequenceSample:
    valid = np.ones((batch, length), bool)
    valid[0, 3:] = False  # the first sequence's episode ends at step 2
    dones = np.zeros((batch, length), bool)
    dones[0, 2] = True
    rewards = rng.standard_normal((batch, length)).astype(np.float32)
    return SequenceSample(
        obs=[rng.standard_normal((batch, length, 4)).astype(np.float32)],
        continuous_actions=np.zeros((batch, length, 0), np.float32),
        discrete_actions=rng.integers(0, 3, (batch, length, 1)).astype(np.int32),
        action_masks=np.ones((batch, length, 3), bool),
        rewards={"extrinsic": rewards * valid},
        dones=dones,
        truncated=np.zeros((batch, length), bool),
        next_obs=[rng.standard_normal((batch, length, 4)).astype(np.float32)],
        next_action_masks=np.ones((batch, length, 3), bool),
        valid=valid,
        memories=rng.standard_normal((batch, memory)).astype(np.float32) * 0.1,
        indices=np.arange(batch),
        weights=np.ones(batch, np.float32),
    )


@pytest.mark.parametrize("rescaling", [False, True])
def test_updates_on_sequences_fit_them_and_give_eta_mixed_priorities(rescaling):
    torch.manual_seed(0)
    settings = memory_settings(
        n_step=2,
        burn_in=2,
        learning_rate=3e-3,
        target_update_interval=100000,
        value_rescaling=rescaling,
    )
    optimizer = make_optimizer(behavior_spec(4, (3,)), settings)
    sample = sequences(4, 6, np.random.default_rng(0))
    first = optimizer.update_from_replay(sample)
    assert first.td_errors.shape == (4,) and np.isfinite(first.td_errors).all()
    assert (first.td_errors >= 0).all()
    for _ in range(150):
        last = optimizer.update_from_replay(sample)
    assert last.stats["Losses/Q Loss"] < 0.3 * first.stats["Losses/Q Loss"]
    # the first sequence's episode ends at step 2: one learning step after the burn-in
    assert np.isfinite(last.td_errors).all()


def test_the_exported_recurrent_model_runs_and_passes_unitys_checks(tmp_path):
    import onnxruntime as ort
    from mlagents.trainers.torch_entities.model_serialization import ModelSerializer

    from mla_plugin_core.io.model_check import Expected, check_model
    from mla_plugin_core.io.onnx_export import use_legacy_exporter

    torch.manual_seed(0)
    optimizer = make_optimizer(behavior_spec(4, (3,)), memory_settings())
    policy = optimizer.policy
    path = tmp_path / "Memory"
    use_legacy_exporter()  # what the entry point does for mlagents-learn on current torch
    ModelSerializer(policy).export_policy_model(str(path))
    violations = check_model(
        str(path) + ".onnx", Expected(observation_shapes=[(4,)], discrete_branches=[3])
    )
    assert violations == [], violations
    session = ort.InferenceSession(str(path) + ".onnx")
    names = {i.name for i in session.get_inputs()}
    assert "recurrent_in" in names
    outputs = {o.name for o in session.get_outputs()}
    assert "recurrent_out" in outputs and "memory_size" in outputs
    feed = {"obs_0": np.zeros((1, 4), np.float32), "recurrent_in": np.zeros((1, 1, 8), np.float32)}
    if "action_masks" in names:
        feed["action_masks"] = np.ones((1, 3), np.float32)
    memory_size, state = session.run(["memory_size", "recurrent_out"], feed)
    assert int(np.ravel(memory_size)[0]) == 8 and state.shape[-1] == 8


def test_the_trainer_stores_each_steps_memory_and_replays_sequences(tmp_path):
    """With network_settings.memory the trainer keeps the policy's state of every step,
    samples batch_size // sequence_length sequences and steps the optimizer on them."""
    from dqn_testkit import CARTPOLE, experience
    from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
    from mlagents.trainers.trajectory import Trajectory

    from mla_dqn.trainer import DQNTrainer

    settings = memory_settings(
        batch_size=12, buffer_init_steps=0, steps_per_update=1.0, prioritized_replay=True
    )
    trainer = DQNTrainer("CartPole-v1", 100, settings, True, False, 0, str(tmp_path))
    identifiers = BehaviorIdentifiers.from_name_behavior_id(CARTPOLE)
    trainer.add_policy(identifiers, trainer.create_policy(identifiers, behavior_spec(4, (2,))))
    replay = trainer.replay
    assert (replay.sequence_length, replay.sequence_period, replay.memory_size) == (6, 3, 8)
    steps = [experience(t, done=t == 9) for t in range(10)]
    steps = [s._replace(memory=np.full(8, t, np.float32)) for t, s in enumerate(steps)]
    trainer._process_trajectory(Trajectory(steps, [np.zeros(4, np.float32)], [], "a", CARTPOLE))
    # sequences start at steps 0, 3, 6, 9 of the episode, with the memory of their first step
    every = replay.sequences(replay.complete_slots(), np.ones(len(replay), np.float32))
    assert every.obs[0][:, 0, 0].tolist() == [0.0, 3.0, 6.0, 9.0]
    np.testing.assert_array_equal(every.memories[:, 0], [0, 3, 6, 9])
    assert every.valid.sum(axis=1).tolist() == [6, 6, 4, 1]
    assert trainer.samples_per_update == 2
    trainer._step = 4
    assert trainer._is_ready_update() and trainer._update_policy()
    assert np.isfinite(trainer.replay.priorities(replay.complete_slots())).all()
