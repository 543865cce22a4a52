"""The Memory corridor: the cue shows once, the cued end pays, the first action is ignored."""

import numpy as np

from mla_envs.envs import Actions, MemoryEnv, make
from mla_envs.envs.memory import LENGTH, MAX_STEPS, OPTIMAL_RETURN, START


def act(env: MemoryEnv, actions) -> Actions:
    return Actions(None, np.asarray(actions, np.int32).reshape(-1, 1))


def test_the_cue_shows_at_the_first_step_only_and_the_cue_step_does_not_move():
    env = MemoryEnv(num_agents=4)
    env.seed(3)
    first = env.reset().observations[0]
    cues = first[:, LENGTH:].argmax(axis=1)
    assert (first[:, LENGTH:].sum(axis=1) == 1).all() and (first[:, START] == 1).all()
    _, decision = env.step(act(env, [2, 2, 1, 1]))  # the cue step: nobody moves
    obs = decision.observations[0]
    assert (obs[:, START] == 1).all() and not obs[:, LENGTH:].any()
    assert (decision.rewards == np.float32(-0.01)).all()
    np.testing.assert_array_equal(env.cue, cues)


def test_walking_to_the_cued_end_earns_the_optimum_and_the_other_end_costs():
    env = MemoryEnv(num_agents=2)
    env.seed(0)
    env.reset()
    env.cue[:] = [0, 1]  # agent 0 must go left, agent 1 right; both walk right
    total = np.zeros(2)
    env.step(act(env, [0, 0]))
    total += -0.01
    for _ in range(5):
        terminal, decision = env.step(act(env, [2, 2]))
        total += np.where(np.isin(env.agent_ids, terminal.agent_ids), 0, decision.rewards)
    assert sorted(terminal.agent_ids.tolist()) == [0, 1]
    total += terminal.rewards
    np.testing.assert_allclose(total, [-1.06, OPTIMAL_RETURN], atol=1e-6)
    assert not terminal.interrupted.any()
    # the next episode shows a new cue
    assert decision.observations[0][:, LENGTH:].sum() == 2


def test_episodes_are_cut_at_the_step_limit_as_interrupted():
    env = make("Memory", num_agents=1)
    env.reset()
    for step in range(MAX_STEPS):
        terminal, _ = env.step(act(env, [0]))
        assert len(terminal.agent_ids) == (1 if step == MAX_STEPS - 1 else 0)
    assert terminal.interrupted.tolist() == [True]
