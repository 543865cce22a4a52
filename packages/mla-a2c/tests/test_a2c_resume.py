"""``--resume`` of A2C with other ``hidden_units``: refused in one line before anything is
written (mlagents logged "Failed to load for module Policy", crashed at the first
gradient step on Adam's saved state, and its end-of-run save replaced the checkpoint)."""

from __future__ import annotations

import pytest
import torch
from a2c_testkit import make_trainer
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.host.config_errors import ResumeError
from mla_plugin_core.testing.builders import vector_behavior_spec

SPEC = vector_behavior_spec(ActionSpec.create_discrete((3,)))


def test_resume_with_other_hidden_units_is_refused_and_nothing_is_saved(tmp_path):
    first = make_trainer(SPEC, tmp_path)
    first.policy.increment_step(200)
    first._step = 200
    first._checkpoint()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    with pytest.raises(ResumeError) as refused:
        make_trainer(SPEC, tmp_path, hidden_units=32, load=True)
    assert str(refused.value).startswith(
        f"cannot resume {tmp_path / 'checkpoint.pt'}: Policy: network shape differs ("
    )
    assert "[16, 4] saved, [32, 4] now" in str(refused.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    again = make_trainer(SPEC, tmp_path, load=True)
    assert again.get_step == 200
    for name, value in first.policy.actor.state_dict().items():
        torch.testing.assert_close(again.policy.actor.state_dict()[name], value)
