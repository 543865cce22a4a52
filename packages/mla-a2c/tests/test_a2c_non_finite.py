"""A NaN/inf in A2C stops the update with one line, before mlagents samples from it."""

import math
import os

import numpy as np
import pytest
import torch
from a2c_testkit import make_trainer
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.testing.builders import random_trajectory, vector_behavior_spec
from mla_plugin_core.util.finite import NonFiniteError


def filled_trainer(tmp_path, action_spec, **hyperparameters):
    trainer = make_trainer(
        vector_behavior_spec(action_spec), tmp_path, buffer_size=32, **hyperparameters
    )
    for i in range(4):
        rewards = list(np.linspace(-1, 1, 8))
        trainer._process_trajectory(
            random_trajectory(trainer.policy.behavior_spec, rewards, done=i % 2 == 0, seed=i)
        )
    trainer._step = 32
    return trainer


def test_a_nan_parameter_stops_the_update_and_saves_nothing(tmp_path):
    trainer = filled_trainer(tmp_path, ActionSpec.create_discrete((3,)))
    weight = next(p for p in trainer.policy.actor.parameters() if p.requires_grad and p.dim() == 2)
    with torch.no_grad():
        weight[0, 0] = math.nan
    with pytest.raises(NonFiniteError) as raised:
        trainer._update_policy()
    message = str(raised.value)
    assert message.startswith("Test: Losses/"), message
    assert "at step 32; lower hyperparameters.learning_rate (now 0.0007)" in message
    before = sorted(os.listdir(tmp_path))
    trainer.save_model()  # mlagents' end-of-run save
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize(
    "action_spec",
    [ActionSpec.create_discrete((3,)), ActionSpec.create_continuous(2)],
    ids=["discrete", "continuous"],
)
def test_a_huge_learning_rate_stops_after_the_update_that_broke_the_policy(tmp_path, action_spec):
    # One RMSprop step of 1e30 leaves finite weights whose forward pass overflows: without
    # the check, mlagents' next action sampling fails inside torch.
    trainer = filled_trainer(tmp_path, action_spec, learning_rate=1e30)
    with pytest.raises(NonFiniteError, match=r"at step 32; lower hyperparameters.learning_rate"):
        trainer._update_policy()
