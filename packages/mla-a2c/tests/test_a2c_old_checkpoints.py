"""Checkpoints of 0.1.x named the torch optimizer ``Optimizer:a2c_optimizer`` (mla-dqn and
the scaffold: ``Optimizer:adam``); today it is ``Optimizer:optimizer``. They still resume,
with the optimizer's state."""

from __future__ import annotations

import pytest
import torch
from a2c_testkit import OBS_SIZE, make_trainer
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.testing.builders import vector_behavior_spec

SPEC = vector_behavior_spec(ActionSpec.create_discrete((3,)), OBS_SIZE)


@pytest.mark.parametrize("old_name", ["Optimizer:a2c_optimizer", "Optimizer:adam"])
def test_checkpoint_with_the_old_optimizer_name_resumes_with_its_state(tmp_path, old_name):
    first = make_trainer(SPEC, tmp_path)
    first.optimizer.optimizer.param_groups[0]["lr"] = 0.123
    first.policy.increment_step(200)
    first._step = 200
    first._checkpoint()
    path = tmp_path / "checkpoint.pt"
    saved = torch.load(path, map_location="cpu")
    saved[old_name] = saved.pop("Optimizer:optimizer")
    torch.save(saved, path)

    again = make_trainer(SPEC, tmp_path, load=True)
    assert again.get_step == 200
    assert again.optimizer.optimizer.param_groups[0]["lr"] == pytest.approx(0.123)
    for name, value in first.optimizer.critic.state_dict().items():
        torch.testing.assert_close(again.optimizer.critic.state_dict()[name], value)
