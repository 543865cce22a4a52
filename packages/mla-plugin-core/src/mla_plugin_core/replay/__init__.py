"""Layer 1, the data of off-policy training, independent of mlagents' trainers.

- :mod:`.transitions`: the stored fields (:class:`Transitions`, :class:`ReplaySample`);
- :mod:`.buffer`: :class:`ReplayBuffer` and :class:`PrioritizedReplayBuffer` (its save and
  load format, :data:`FORMAT_VERSION`);
- :mod:`.nstep`: :class:`NStepAccumulator`, n-step returns per agent;
- :mod:`.sum_tree`: the trees behind prioritized sampling;
- :mod:`.batches`: mlagents' ``AgentBuffer`` and replay samples as torch minibatches.

Imports only :mod:`mla_plugin_core.util`.
"""

from mla_plugin_core.replay import buffer as _buffer
from mla_plugin_core.replay.buffer import *  # noqa: F403
from mla_plugin_core.replay.nstep import NStepAccumulator

__all__ = [*_buffer.__all__, "NStepAccumulator"]
