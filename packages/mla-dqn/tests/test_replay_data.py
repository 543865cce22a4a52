"""What ``DQNTrainer`` stores from mlagents trajectories: CartPole-like episodes (reward 1
per step, a real terminal or a 500-step cut) must reach replay with the right ``dones``."""

import numpy as np
import pytest
from dqn_testkit import GAMMA, make_trainer, trajectory

from mla_dqn.trainer import DQNTrainer


def stored(trainer: DQNTrainer) -> dict[str, np.ndarray]:
    """Every transition in replay, sorted by the step ``t`` of its observation."""
    replay = trainer.replay
    assert replay is not None
    everything = replay.all_transitions()
    order = np.argsort(everything.obs[0][:, 0])
    return {
        "t": everything.obs[0][order, 0],
        "next_t": everything.next_obs[0][order, 0],
        "dones": everything.dones[order],
        "truncated": everything.truncated[order],
        "rewards": everything.rewards["extrinsic"][order],
        "discounts": everything.discounts["extrinsic"][order],
    }


@pytest.mark.parametrize("n_step", [1, 3])
def test_terminal_after_a_time_horizon_cut_reaches_replay_as_done(tmp_path, n_step):
    trainer = make_trainer(tmp_path, n_step=n_step)
    # A 10-step episode in two fragments (time_horizon 6), ending in a real terminal.
    trainer._process_trajectory(trajectory("agent-0", 0, 5))
    trainer._process_trajectory(trajectory("agent-0", 6, 9, done=True))
    rows = stored(trainer)
    assert rows["t"].tolist() == list(range(10))
    assert rows["next_t"].tolist() == [min(t + n_step, 10) for t in range(10)]
    # Only transitions whose n-step window reaches the terminal are done.
    assert rows["dones"].tolist() == [t + n_step >= 10 for t in range(10)]
    assert not rows["truncated"].any()
    k = np.minimum(n_step, 10 - np.arange(10))  # rewards summed per transition
    np.testing.assert_allclose(rows["rewards"], (1 - GAMMA**k) / (1 - GAMMA), rtol=1e-5)
    np.testing.assert_allclose(rows["discounts"], GAMMA**k, rtol=1e-5)
    assert trainer.replay is not None and trainer.replay.waiting("agent-0") == 0


def test_max_step_cut_is_truncated_not_done(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer._process_trajectory(trajectory("agent-0", 0, 4, done=True, interrupted=True))
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 2, 3, 4]
    assert not rows["dones"].any()
    assert rows["truncated"].tolist() == [False] * 4 + [True]


def test_episodes_of_interleaved_agents_keep_their_own_terminals(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer._process_trajectory(trajectory("agent-0", 0, 2))
    trainer._process_trajectory(trajectory("agent-1", 100, 104, done=True))
    trainer._process_trajectory(trajectory("agent-0", 3, 3, done=True))
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 2, 3, 100, 101, 102, 103, 104]
    assert rows["dones"].tolist() == [False, False, False, True] + [False] * 4 + [True]


def test_a_forced_reset_waits_for_the_trajectory_being_stored(tmp_path):
    """`threaded: true`: mlagents' main thread calls end_episode (lesson change, self-play
    swap) while the trainer's thread stores a trajectory; both write the ring and the
    running episodes, so the reset must wait until the store is done."""
    import threading

    trainer = make_trainer(tmp_path, n_step=3)
    trainer._process_trajectory(trajectory("agent-0", 0, 5))  # a held step, queued steps
    storing, release = threading.Event(), threading.Event()
    store = trainer.replay.add_many

    def slow_store(*args, **kwargs):
        if threading.current_thread() is worker:  # the trainer's thread, mid-store
            storing.set()
            release.wait(10)
        store(*args, **kwargs)

    trainer.replay.add_many = slow_store
    worker = threading.Thread(target=trainer._process_trajectory,
                              args=(trajectory("agent-0", 6, 9),))  # fmt: skip
    worker.start()
    assert storing.wait(10)
    reset = threading.Thread(target=trainer.end_episode)
    reset.start()
    reset.join(0.5)
    assert reset.is_alive()  # waits for the store in progress
    release.set()
    worker.join(10)
    reset.join(10)
    assert not reset.is_alive() and not worker.is_alive()
    rows = stored(trainer)  # the episode as one run, its last steps truncated by the reset
    assert rows["t"].tolist() == list(range(10))
    assert rows["truncated"].tolist() == [t + 3 >= 10 for t in range(10)]


def test_the_trajectories_an_advance_drains_are_stored_together_before_its_update(tmp_path):
    """mlagents' advance() drains the trajectory queue, then asks _is_ready_update: the
    drained trajectories go to the replay in one add_many, in queue order, before the
    update, and hold what one _process_trajectory after the other holds."""
    from mlagents.trainers.agent_processor import AgentManagerQueue

    one_by_one = make_trainer(tmp_path / "one", n_step=3)
    trainer = make_trainer(tmp_path / "batch", n_step=3, buffer_init_steps=0)
    queue: AgentManagerQueue = AgentManagerQueue("CartPole-v1")
    trainer.subscribe_trajectory_queue(queue)
    pieces = [("agent-0", 0, 5, {}), ("agent-1", 100, 103, {"done": True}),
              ("agent-0", 6, 9, {}), ("agent-1", 104, 106, {})]  # fmt: skip
    for agent, first, last, end in pieces:
        queue.put(trajectory(agent, first, last, **end))
        one_by_one._process_trajectory(trajectory(agent, first, last, **end))
    batches = []
    add_many = trainer.replay.add_many
    trainer.replay.add_many = lambda batch: (
        batches.append([a for a, _, _ in batch]) or add_many(batch)
    )
    updates = []
    trainer._update_policy = lambda: updates.append(trainer.replay.rows_held) or False
    trainer.advance()
    assert batches == [["agent-0", "agent-1", "agent-0", "agent-1"]]
    assert updates == [6 + 4 + 4 + 3]  # the update came, after the store
    for rows, want in zip(stored(trainer).values(), stored(one_by_one).values(), strict=True):
        np.testing.assert_array_equal(rows, want)
    assert trainer.replay.waiting("agent-0") == one_by_one.replay.waiting("agent-0") == 3
