"""The contracts a plugin trainer inherits from core's base trainers, as checks on a real
trainer (no ``mlagents-learn``, seconds each).

:class:`~mla_plugin_core.testing.conformance.PluginConformance` runs them on every plugin;
a plugin's own tests may call them too. Each raises ``AssertionError`` naming what broke:

- :func:`resumes_where_it_stopped`: a run killed after a checkpoint resumes from it, with
  the step and the parameters it had, and trains on;
- :func:`refuses_another_network`: a ``--resume`` whose network does not fit the checkpoint
  stops with a :class:`~mla_plugin_core.io.resume.ResumeError`, nothing changed on disk;
- :func:`stops_at_a_non_finite_loss`: a NaN in the network stops training with a
  :class:`~mla_plugin_core.util.finite.NonFiniteError`, and no checkpoint is written;
- :func:`bootstraps_at_time_outs_only` (on-policy): the last step's value target is its
  reward after a terminal, ``r + gamma V(s')`` after a time-out;
- :func:`stores_what_it_was_given` (off-policy): the replay buffer holds the trajectory's
  steps as 1-step transitions, and saves and loads them unchanged.

A :class:`TrainerRecipe` builds the trainer of each check (a new folder each).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import attr
import numpy as np
import pytest
import torch
from mlagents.trainers.buffer import RewardSignalUtil
from mlagents.trainers.settings import RewardSignalType
from mlagents_envs.base_env import BehaviorSpec

from mla_plugin_core.io.resume import ResumeError
from mla_plugin_core.testing.builders import (
    make_trainer,
    random_trajectory,
    trainer_settings,
    update_once,
)
from mla_plugin_core.util.finite import NonFiniteError

__all__ = [
    "TrainerRecipe",
    "bootstraps_at_time_outs_only",
    "refuses_another_network",
    "resumes_where_it_stopped",
    "stops_at_a_non_finite_loss",
    "stores_what_it_was_given",
]


@dataclass(frozen=True)
class TrainerRecipe:
    """How to build the trainer a contract checks.

    :param trainer_cls: the plugin's trainer class.
    :param trainer_type: its ``trainer_type``.
    :param hyperparameters: an instance of its settings class.
    :param spec: the behavior it trains.
    :param hidden_units: of its network (a resume check changes it).
    """

    trainer_cls: type
    trainer_type: str
    hyperparameters: Any
    spec: BehaviorSpec
    hidden_units: int = 32

    def make(self, folder: Path, *, load: bool = False) -> Any:
        """A trainer in ``folder`` with its policy added (``load``: as ``--resume``)."""
        settings = trainer_settings(
            self.trainer_type, self.hyperparameters, hidden_units=self.hidden_units
        )
        return make_trainer(self.trainer_cls, settings, self.spec, folder, load=load)


def _policy_state(trainer: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.policy.actor.state_dict().items()}


def _files(folder: Path) -> dict[str, str]:
    """Every file under ``folder``: relative path -> sha256."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def resumes_where_it_stopped(recipe: TrainerRecipe, folder: Path) -> None:
    """Train, checkpoint (as mlagents does every ``checkpoint_interval``), train on, then
    stop without the end-of-run save (a kill): the resumed trainer has the checkpoint's step
    and policy, and updates again."""
    trainer = recipe.make(folder)
    update_once(trainer, seed=1)
    trainer._checkpoint()
    step, policy = trainer.get_step, _policy_state(trainer)
    update_once(trainer, seed=2)  # lost with the kill
    del trainer
    resumed = recipe.make(folder, load=True)
    assert resumed.get_step == step, f"resumed at step {resumed.get_step}, checkpoint at {step}"
    now = _policy_state(resumed)
    differ = [name for name in policy if not torch.equal(policy[name], now[name])]
    assert not differ, f"resumed policy differs from the checkpoint's in {differ[:3]}"
    assert update_once(resumed, seed=3).updated, "the resumed trainer made no update"


def refuses_another_network(recipe: TrainerRecipe, folder: Path) -> None:
    """A ``--resume`` with twice the hidden units raises ResumeError before anything is
    written: every file of the run is as it was."""
    trainer = recipe.make(folder)
    update_once(trainer, seed=1)
    trainer._checkpoint()
    del trainer
    before = _files(folder)
    wider = replace(recipe, hidden_units=recipe.hidden_units * 2)
    with pytest.raises(ResumeError, match="cannot resume"):
        wider.make(folder, load=True)
    assert _files(folder) == before, "a refused --resume changed the run's files"


def stops_at_a_non_finite_loss(recipe: TrainerRecipe, folder: Path) -> None:
    """With a NaN in the policy's first layer, the next update raises NonFiniteError, and
    the end-of-run save that follows writes no checkpoint of the broken network."""
    trainer = recipe.make(folder)
    first = next(p for p in trainer.policy.actor.parameters() if p.requires_grad)
    with torch.no_grad():
        first.fill_(float("nan"))
    with pytest.raises(NonFiniteError):
        update_once(trainer, seed=1)
    before = _files(folder)
    trainer.save_model()  # what mlagents does on the way out
    written = sorted(set(_files(folder)) - set(before))
    assert not [name for name in written if name.endswith((".pt", ".onnx"))], written


def _extrinsic_gamma(trainer: Any) -> float:
    return float(trainer.trainer_settings.reward_signals[RewardSignalType.EXTRINSIC].gamma)


def bootstraps_at_time_outs_only(recipe: TrainerRecipe, folder: Path) -> None:
    """The same episode ends in a terminal, then in a time-out (max-step interruption).
    After the terminal the last step's value target is its reward (nothing after it); after
    the time-out, ``r_T + gamma V(s_{T+1})``, the critic's value of the next observation."""
    trainer = recipe.make(folder)
    rewards = [0.5, -0.25, 1.0]
    key = RewardSignalUtil.returns_key("extrinsic")
    targets = {}
    for interrupted in (False, True):
        trajectory = random_trajectory(
            recipe.spec, rewards, done=True, interrupted=interrupted, seed=7
        )
        trainer._process_trajectory(trajectory)
        targets[interrupted] = float(trainer.update_buffer[key].get_batch()[-1])
        if interrupted:
            _, next_value, _ = trainer.optimizer.get_trajectory_value_estimates(
                trajectory.to_agentbuffer(), trajectory.next_obs, False
            )
            bootstrap = rewards[-1] + _extrinsic_gamma(trainer) * float(next_value["extrinsic"])
    assert targets[False] == pytest.approx(rewards[-1], abs=1e-5), (
        f"after a terminal the last value target is {targets[False]}, not its reward "
        f"{rewards[-1]} (a value bootstrapped past the end of the episode)"
    )
    assert targets[True] == pytest.approx(bootstrap, rel=1e-4, abs=1e-5), (
        f"after a time-out the last value target is {targets[True]}, not r + gamma V(s') = "
        f"{bootstrap} (a time-out treated as a terminal, or another bootstrap)"
    )


def stores_what_it_was_given(recipe: TrainerRecipe, folder: Path) -> None:
    """One episode of 6 steps, ending in a terminal, with ``n_step: 1``: the replay buffer
    holds 6 transitions with the trajectory's observations, actions and rewards, each
    next observation the following step's (the last: the trajectory's ``next_obs``), done
    on the last only; saved and loaded into a new buffer, they are the same."""
    hyperparameters = recipe.hyperparameters
    if any(f.name == "n_step" for f in attr.fields(type(hyperparameters))):
        hyperparameters = attr.evolve(hyperparameters, n_step=1)
    trainer = replace(recipe, hyperparameters=hyperparameters).make(folder)
    rewards = [0.5, -0.25, 1.0, 0.0, 2.0, -1.0]
    trajectory = random_trajectory(recipe.spec, rewards, done=True, seed=11)
    trainer._process_trajectory(trajectory)
    replay = trainer.replay
    assert len(replay) == len(rewards), f"{len(replay)} transitions stored, {len(rewards)} given"
    every = np.ones(len(rewards), np.float32)
    stored = replay.transitions(replay.complete_slots(), every)
    obs = np.stack([step.obs[0] for step in trajectory.steps])
    next_obs = np.concatenate([obs[1:], trajectory.next_obs[0][None]])
    np.testing.assert_allclose(stored.obs[0], obs, err_msg="observations")
    np.testing.assert_allclose(stored.next_obs[0], next_obs, err_msg="next observations")
    np.testing.assert_allclose(stored.rewards["extrinsic"], rewards, err_msg="rewards")
    if recipe.spec.action_spec.discrete_size:
        actions = np.stack([step.action.discrete for step in trajectory.steps])
        np.testing.assert_array_equal(stored.discrete_actions, actions, err_msg="actions")
    assert stored.dones.tolist() == [False] * (len(rewards) - 1) + [True], stored.dones
    path = folder / "round_trip.npz"
    replay.save(path)
    loaded = replace(recipe, hyperparameters=hyperparameters).make(folder / "loaded").replay
    loaded.load(path)
    again = loaded.transitions(loaded.complete_slots(), every)
    for name, before, after in zip(stored._fields, stored, again, strict=True):
        if isinstance(before, dict):
            for signal in before:
                np.testing.assert_array_equal(before[signal], after[signal], err_msg=name)
        elif isinstance(before, list):
            for i, (b, a) in enumerate(zip(before, after, strict=True)):
                np.testing.assert_array_equal(b, a, err_msg=f"{name}[{i}]")
        else:
            np.testing.assert_array_equal(before, after, err_msg=name)
