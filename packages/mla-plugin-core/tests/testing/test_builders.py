"""The testing kit's unit-test builders: update_once drives one real update."""

from __future__ import annotations

import pytest
from mlagents.trainers.ppo.trainer import PPOSettings, PPOTrainer
from mlagents.trainers.settings import NetworkSettings
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.testing.builders import (
    make_trainer,
    trainer_settings,
    update_once,
    vector_behavior_spec,
)


@pytest.mark.parametrize(
    "memory", [None, NetworkSettings.MemorySettings(sequence_length=4, memory_size=8)]
)
def test_update_once_feeds_until_ready_then_updates(tmp_path, memory):
    # any mlagents trainer works: here its own PPO, recurrent too
    settings = trainer_settings("ppo", PPOSettings(batch_size=16, buffer_size=64), memory=memory)
    trainer = make_trainer(
        PPOTrainer, settings, vector_behavior_spec(ActionSpec.create_discrete((3,))), tmp_path
    )
    update = update_once(trainer, episode_length=10)
    # fed whole episodes of 10 steps until mlagents' PPO said it was ready: the first
    # multiple of 10 past buffer_size 64 (recurrent: mlagents counts padded sequences)
    assert update.steps == (70 if memory is None else 60)
    assert update.updated
    changed = [name for name in update.before if update.changed(name)]
    assert changed and set(changed) <= set(update.after)
    assert len(trainer.update_buffer[next(iter(trainer.update_buffer.keys()))]) == 0  # used


def test_update_once_refuses_a_trainer_that_is_never_ready(tmp_path):
    settings = trainer_settings("ppo", PPOSettings(batch_size=16, buffer_size=10_000))
    trainer = make_trainer(
        PPOTrainer, settings, vector_behavior_spec(ActionSpec.create_discrete((3,))), tmp_path
    )
    with pytest.raises(AssertionError, match="PPOTrainer made no update in 200 steps"):
        update_once(trainer, max_steps=200, episode_length=10)
