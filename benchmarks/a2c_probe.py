"""A fast probe of mla-a2c's maths on Gymnasium's CartPole-v1, outside ``mlagents-learn``.

``benchmarks/a2c.py`` measures the real thing (mlagents-learn, gRPC, the Gymnasium bridge)
at a few hundred steps per second: an hour per 500k-step run. This probe runs the same
pieces in one process at thousands of steps per second, so that choices can be compared
over several seeds in minutes:

- mlagents' own networks (``SimpleActor``, ``ValueNetwork``) with the hidden activation
  set by :func:`mla_plugin_core.networks.activation.set_activation`;
- mla-plugin-core's ``generalized_advantages`` (0 after a terminal, ``V(final_obs)`` after a
  truncation or the end of the rollout) and mla-a2c's ``a2c_loss``;
- Stable-Baselines3's rl-zoo A2C settings for CartPole-v1: 8 environments, 5 steps each
  per update (one gradient step on 40 experiences), RMSprop lr 7e-4, no entropy bonus,
  lambda 1, value coefficient 0.5, gradient norm 0.5, 64x64 networks.

    python benchmarks/a2c_probe.py --activation swish tanh --seeds 1 2 3

prints, per activation and seed, the mean return of the last 100 training episodes at
100k, 200k and 500k steps (sampled actions), and the first step at which it reached 475
(CartPole-v1's "solved" threshold).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from mlagents.trainers.settings import NetworkSettings
from mlagents.trainers.torch_entities.agent_action import AgentAction
from mlagents.trainers.torch_entities.networks import SimpleActor, ValueNetwork
from mlagents_envs.base_env import (
    ActionSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

from mla_a2c.optimizer import a2c_loss
from mla_plugin_core.networks.activation import ACTIVATIONS, set_activation
from mla_plugin_core.trainers.on_policy import generalized_advantages

N_ENVS, N_STEPS = 8, 5
GAMMA, LAMBD, LEARNING_RATE = 0.99, 1.0, 7.0e-4
VALUE_LOSS_COEF, MAX_GRAD_NORM, BETA = 0.5, 0.5, 0.0
CHECKPOINTS = (100_000, 200_000, 500_000)
SOLVED = 475.0


def train(activation: str, seed: int, total_steps: int) -> dict[str, float | None]:
    """One A2C run; returns the mean of the last 100 episode returns at each checkpoint."""
    torch.manual_seed(seed)
    obs_spec = ObservationSpec((4,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "obs")
    network = NetworkSettings(normalize=False, hidden_units=64, num_layers=2)
    actor = SimpleActor([obs_spec], network, ActionSpec.create_discrete((2,)))
    critic = ValueNetwork(["extrinsic"], [obs_spec], network)
    set_activation(actor, activation)
    set_activation(critic, activation)
    params = list(actor.parameters()) + list(critic.parameters())
    optimizer = torch.optim.RMSprop(params, lr=LEARNING_RATE, alpha=0.99, eps=1e-5)
    masks = torch.ones(N_ENVS * N_STEPS, 2)

    def value(observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return critic.critic_pass([torch.as_tensor(observations)])[0]["extrinsic"].numpy()

    envs = [gym.make("CartPole-v1") for _ in range(N_ENVS)]
    obs = np.stack([env.reset(seed=seed * 1000 + i)[0] for i, env in enumerate(envs)])
    obs = obs.astype(np.float32)
    episode_return = np.zeros(N_ENVS)
    returns: list[float] = []
    results: dict[str, float | None] = {"solved_at": None}
    step = 0
    while step < total_steps:
        rollout_obs = np.zeros((N_STEPS, N_ENVS, 4), np.float32)
        rollout_actions = np.zeros((N_STEPS, N_ENVS), np.int64)
        rewards = np.zeros((N_STEPS, N_ENVS), np.float32)
        bootstrap = np.zeros((N_STEPS, N_ENVS), np.float32)  # V(s') where an episode ended
        ended = np.zeros((N_STEPS, N_ENVS), bool)
        for t in range(N_STEPS):
            with torch.no_grad():
                action, _, _ = actor.get_action_and_stats([torch.as_tensor(obs)], masks[:N_ENVS])
            rollout_obs[t], rollout_actions[t] = obs, action.discrete_list[0].reshape(-1).numpy()
            for i, env in enumerate(envs):
                next_obs, reward, terminated, truncated, _ = env.step(int(rollout_actions[t, i]))
                rewards[t, i] = reward
                episode_return[i] += reward
                if terminated or truncated:
                    ended[t, i] = True
                    if truncated and not terminated:
                        bootstrap[t, i] = value(next_obs[None].astype(np.float32))[0]
                    returns.append(episode_return[i])
                    episode_return[i] = 0.0
                    next_obs, _ = env.reset()
                obs[i] = next_obs
        step += N_ENVS * N_STEPS

        values = value(rollout_obs.reshape(-1, 4)).reshape(N_STEPS, N_ENVS)
        last_values = value(obs)
        advantages = np.zeros_like(rewards)
        for i in range(N_ENVS):  # one GAE per trajectory piece, cut at episode ends
            start = 0
            for t in [*np.flatnonzero(ended[:, i]), N_STEPS - 1]:
                if t < start:
                    continue
                value_next = bootstrap[t, i] if ended[t, i] else last_values[i]
                advantages[start : t + 1, i] = generalized_advantages(
                    rewards[start : t + 1, i], values[start : t + 1, i], value_next, GAMMA, LAMBD
                )
                start = t + 1

        stats = actor.get_stats(
            [torch.as_tensor(rollout_obs.reshape(-1, 4))],
            AgentAction(torch.empty(0), [torch.as_tensor(rollout_actions.reshape(-1))]),
            masks=masks,
        )
        new_values = critic.critic_pass([torch.as_tensor(rollout_obs.reshape(-1, 4))])[0]
        loss = a2c_loss(
            stats["log_probs"].flatten(),
            stats["entropy"],
            torch.as_tensor(advantages.reshape(-1)),
            new_values,
            {"extrinsic": torch.as_tensor((advantages + values).reshape(-1))},
            torch.ones(N_ENVS * N_STEPS, dtype=torch.bool),
            VALUE_LOSS_COEF,
            BETA,
        )
        optimizer.zero_grad()
        loss.total.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        optimizer.step()

        mean_return = float(np.mean(returns[-100:])) if returns else 0.0
        if results["solved_at"] is None and len(returns) >= 100 and mean_return >= SOLVED:
            results["solved_at"] = step
        for checkpoint in CHECKPOINTS:
            if step - N_ENVS * N_STEPS < checkpoint <= step:
                results[f"{checkpoint // 1000}k"] = mean_return
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activation", nargs="+", choices=sorted(ACTIVATIONS), default=["tanh"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=500_000, help="steps per run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    columns = [f"{c // 1000}k" for c in CHECKPOINTS if c <= args.steps]
    print(f"{'activation':<10} {'seed':>4} " + " ".join(f"{c:>7}" for c in columns) + "  solved")
    for activation in args.activation:
        for seed in args.seeds:
            start = time.monotonic()
            result = train(activation, seed, args.steps)
            cells = " ".join(f"{result.get(c, float('nan')):7.1f}" for c in columns)
            solved = result["solved_at"]
            print(
                f"{activation:<10} {seed:>4} {cells}  {solved if solved else 'no':>6}"
                f"  ({time.monotonic() - start:.0f} s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
