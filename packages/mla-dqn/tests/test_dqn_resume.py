"""``--resume`` of DQN with a configuration that does not fit the checkpoint: refused in
one line, no file changed, and the original configuration still resumes."""

from __future__ import annotations

import pytest
import torch
from dqn_testkit import behavior_spec, trainer_settings
from mlagents.trainers.settings import NetworkSettings

from mla_dqn.trainer import DQNTrainer
from mla_plugin_core.host.config_errors import ResumeError
from mla_plugin_core.testing import add_policy_like_mlagents

ADVICE = "resume with the settings it was saved with"


def dqn_trainer(tmp_path, load: bool, hidden_units=16, **hyperparameters) -> DQNTrainer:
    """A DQN trainer added its policy as mlagents' TrainerController does it: whatever
    happens in ``add_policy``, the end-of-run ``save_model`` follows (its ``finally``)."""
    settings = trainer_settings(
        **{"save_replay_buffer": True, "buffer_size": 1000, **hyperparameters}
    )
    settings.network_settings = NetworkSettings(hidden_units=hidden_units, num_layers=1)
    trainer = DQNTrainer("Basic", 10, settings, True, load, 0, str(tmp_path))
    return add_policy_like_mlagents(trainer, behavior_spec())


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "change, message",
    [
        # another hidden_units: the conformance kit's test_refuses_a_resume_with_another_network
        (dict(dueling=True), "checkpoint.pt: Policy: network layers differ (only in this"),
        (dict(buffer_size=2000), "replay_buffer.npz: saved replay has capacity=1000"),
    ],
)
def test_resume_with_another_network_or_buffer_is_refused_and_changes_nothing(
    tmp_path, change, message
):
    first = dqn_trainer(tmp_path, load=False)
    first.policy.increment_step(300)
    first._step = 300
    first._checkpoint()
    before = files(tmp_path)
    with pytest.raises(ResumeError) as refused:
        dqn_trainer(tmp_path, load=True, **change)
    assert files(tmp_path) == before
    text = str(refused.value)
    assert text.startswith(f"cannot resume {tmp_path}/") and message in text, text
    assert ADVICE in text and "\n" not in text
    # The original configuration resumes the same network, at the same step.
    again = dqn_trainer(tmp_path, load=True)
    assert again.get_step == 300
    for name, value in first.policy.actor.state_dict().items():
        torch.testing.assert_close(again.policy.actor.state_dict()[name], value)


def test_a_resumed_run_keeps_its_update_pace(tmp_path):
    """The update loop counts from buffer_init_steps; mlagents' resume counted from 0, so a
    run resumed at step 101,000 made no update until 102,000 (250 updates lost)."""
    pace = dict(buffer_init_steps=1000, steps_per_update=4, reward_signal_steps_per_update=2)
    first = dqn_trainer(tmp_path, load=False, **pace)
    first._step = 101_000
    first.policy.set_step(101_000)
    first.save_model()
    resumed = dqn_trainer(tmp_path, load=True, **pace)
    assert resumed.get_step == 101_000
    # as a run that never stopped: (101,000 - 1,000) / 4 updates and / 2 signal updates
    assert resumed.update_steps == 25_000
    assert resumed.reward_signal_update_steps == 50_000
