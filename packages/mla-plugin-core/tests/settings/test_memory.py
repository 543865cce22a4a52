"""mla_plugin_core.settings.memory: the size of a replay buffer, and refusing one that
cannot fit."""

import pytest

from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.settings import memory
from mla_plugin_core.settings.errors import (
    HyperparameterError,
)


def test_format_bytes():
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(1536) == "1.5 KiB"
    assert memory.format_bytes(80 * 10**12) == "72.8 TiB"


@pytest.mark.parametrize("prioritized", [False, True])
def test_replay_bytes_is_what_the_buffer_allocates(prioritized):
    shapes, continuous, branches, signals = [(20,), (3, 4)], 2, [3, 2], ["extrinsic", "gail"]
    cls = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    buffer = cls(100, shapes, continuous, branches, signals)
    allocated = sum(a.nbytes for a in buffer._storage.values())
    if prioritized:
        allocated += buffer._sum_tree.nodes.nbytes + buffer._min_tree.nodes.nbytes
    assert memory.replay_bytes(100, shapes, continuous, branches, signals, prioritized) == (
        allocated
    )
    # The bound before the environment starts is below it, whatever the observations.
    assert memory.lower_bound_bytes(100, signals, prioritized) <= allocated


@pytest.mark.parametrize("prioritized", [False, True])
def test_step_replay_bytes_is_what_the_replay_allocates(prioritized):
    from mla_plugin_core.replay import PrioritizedStepReplay, StepReplay

    shapes, continuous, branches = [(20,), (3, 4)], 2, [3, 2]
    gammas = {"extrinsic": 0.99, "gail": 0.9}
    cls = PrioritizedStepReplay if prioritized else StepReplay
    replay = cls(100, shapes, continuous, branches, gammas, memory_size=6)
    allocated = sum(a.nbytes for a in replay._arrays().values())
    if prioritized:
        allocated += replay._sum_tree.nodes.nbytes + replay._min_tree.nodes.nbytes
    needed = memory.step_replay_bytes(
        100, shapes, continuous, branches, list(gammas), prioritized, 6
    )
    assert needed == allocated
    assert memory.lower_bound_bytes(100, list(gammas), prioritized) <= allocated


def test_refuse_if_too_big_names_the_size_and_the_memory():
    memory.refuse_if_too_big(100, 7, "the replay buffer", available=100)
    with pytest.raises(HyperparameterError) as error:
        memory.refuse_if_too_big(
            3 * 2**40, 7, "the replay buffer", detail="10 B per transition", available=2**30
        )
    assert str(error.value) == (
        "hyperparameters.buffer_size = 7 is not allowed: the replay buffer would take "
        "3.0 TiB (10 B per transition), more than this machine's memory (1.0 GiB)"
    )
