import numpy as np
from mlagents.trainers.buffer import BufferKey
from replay_kit import BRANCHES, OBS_SHAPES, SIGNALS, SPEC, transitions

from mla_plugin_core.replay import ReplayBuffer
from mla_plugin_core.replay.transitions import (
    Transitions,
)


def test_every_field_is_declared_once() -> None:
    # The buffer's storage, the sample and the AgentBuffer view follow FIELDS alone.
    from mla_plugin_core.replay.transitions import FIELDS, layout, to_agent_buffer

    assert [f.name for f in FIELDS] == list(Transitions._fields)
    buffer = ReplayBuffer(8, **SPEC)
    assert list(buffer._layout) == list(layout(OBS_SHAPES, 2, BRANCHES, SIGNALS))
    buffer.add(transitions(np.arange(5)))
    sample = buffer.sample(4)
    for field, value in zip(FIELDS, sample, strict=False):
        arrays = value.values() if isinstance(value, dict) else value
        for array in arrays if field.kind != "array" else [value]:
            assert array.dtype == field.dtype, field.name
    view = to_agent_buffer(sample)
    assert view.num_experiences == 4
    np.testing.assert_array_equal(view[BufferKey.DONE].get_batch(), sample.dones)
    np.testing.assert_array_equal(view[BufferKey.ACTION_MASK].get_batch(), sample.action_masks)
    np.testing.assert_array_equal(
        view[BufferKey.ENVIRONMENT_REWARDS].get_batch(), sample.rewards["extrinsic"]
    )
