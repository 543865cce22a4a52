"""ML-Agents ``.demo`` files as n-step expert transitions for DQfD.

The files are read with mlagents' own loader (``demo_loader.demo_to_buffer``), which gives
per recorded decision ``t``: the observations, the expert's action, ``DONE[t]`` (the next
record ends an episode) and ``ENVIRONMENT_REWARDS[t]`` (the reward that followed the
action). From it:

- ``next_obs[t] = obs[t + 1]``;
- a record that follows a ``DONE`` holds the episode's terminal observation, not a
  decision: it is dropped;
- the file's last decision has no next observation: it is dropped unless it ends its
  episode (no bootstrap is needed then);
- episode ends count as terminals (mlagents' loader does not keep ``max_step_reached``);
- masks are all-allowed (the format does not record them);
- every reward signal of the trainer is evaluated on the transitions once, at load time.
"""

from __future__ import annotations

import numpy as np
from mlagents.trainers.buffer import AgentBuffer, BufferKey
from mlagents.trainers.demo_loader import demo_to_buffer
from mlagents.trainers.trajectory import ObsUtil
from mlagents_envs.base_env import BehaviorSpec

from mla_plugin_core.replay import NStepAccumulator, ReplayBuffer, Transitions

#: Agent id of the demonstrations in the n-step accumulator.
EXPERT_ID = "expert"


def load_expert_replay(
    path: str,
    behavior_spec: BehaviorSpec,
    reward_signals: dict,
    n_step: int,
    seed: int | None = None,
) -> ReplayBuffer:
    """Read ``.demo`` file(s) into a replay buffer holding exactly their transitions.

    :param path: a ``.demo`` file or a folder of them.
    :param behavior_spec: the trainer's spec; the files must match it (mlagents checks).
    :param reward_signals: the optimizer's reward providers, name -> provider (each has
        ``evaluate``, ``strength`` and ``gamma``).
    :param n_step: rewards summed before bootstrapping, as for the agent's own data.
    :raises RuntimeError, ValueError, FileNotFoundError: from mlagents' loader, or when
        the files hold no usable transition.
    """
    _, demo = demo_to_buffer(path, 1, behavior_spec)
    n_obs = len(behavior_spec.observation_specs)
    length = demo.num_experiences
    obs = [np.asarray(o, np.float32) for o in ObsUtil.from_buffer(demo, n_obs)]
    dones = np.asarray(demo[BufferKey.DONE].get_batch(), bool).reshape(length)
    env_rewards = np.asarray(demo[BufferKey.ENVIRONMENT_REWARDS].get_batch(), np.float32)
    n_branches = len(behavior_spec.action_spec.discrete_branches)
    actions = np.asarray(demo[BufferKey.DISCRETE_ACTION].get_batch(), np.float32)
    actions = np.rint(actions).astype(np.int32).reshape(length, n_branches)

    # Row t is a decision unless the record before it ended an episode.
    is_decision = np.ones(length, bool)
    is_decision[1:] = ~dones[:-1]
    has_next = np.ones(length, bool)
    has_next[-1] = bool(dones[-1])
    keep = np.flatnonzero(is_decision & has_next)
    if len(keep) == 0:
        raise ValueError(f"{path}: no transition (a decision with its next observation)")
    next_index = np.minimum(keep + 1, length - 1)

    n_mask = int(sum(behavior_spec.action_spec.discrete_branches))
    masks = np.ones((len(keep), n_mask), bool)
    buffer = AgentBuffer()
    for i in range(n_obs):
        buffer[ObsUtil.get_name_at(i)].set(list(obs[i][keep]))
        buffer[ObsUtil.get_name_at_next(i)].set(list(obs[i][next_index]))
    buffer[BufferKey.DISCRETE_ACTION].set(list(actions[keep]))
    buffer[BufferKey.CONTINUOUS_ACTION].set(list(np.zeros((len(keep), 0), np.float32)))
    buffer[BufferKey.ACTION_MASK].set(list(masks.astype(np.float32)))
    buffer[BufferKey.DONE].set(list(dones[keep].astype(np.float32)))
    buffer[BufferKey.ENVIRONMENT_REWARDS].set(list(env_rewards[keep]))
    rewards = {
        name: np.asarray(signal.evaluate(buffer), np.float32) * signal.strength
        for name, signal in reward_signals.items()
    }

    steps = Transitions(
        obs=[o[keep] for o in obs],
        continuous_actions=np.zeros((len(keep), 0), np.float32),
        discrete_actions=actions[keep],
        action_masks=masks,
        rewards=rewards,
        dones=dones[keep],
        truncated=np.zeros(len(keep), bool),
        next_obs=[o[next_index] for o in obs],
        next_action_masks=masks,
    )
    accumulator = NStepAccumulator(n_step, {k: s.gamma for k, s in reward_signals.items()})
    ready = accumulator.add([EXPERT_ID] * len(keep), steps)
    pending = accumulator.flush()
    replay = ReplayBuffer(
        capacity=len(keep),
        obs_shapes=[o.shape for o in behavior_spec.observation_specs],
        continuous_size=0,
        discrete_branches=behavior_spec.action_spec.discrete_branches,
        reward_signals=list(reward_signals),
        seed=seed,
    )
    replay.add(ready)
    if len(pending.dones):
        replay.add(pending)
    return replay
