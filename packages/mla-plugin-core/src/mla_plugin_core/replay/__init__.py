"""Layer 1, the data of off-policy training, independent of mlagents' trainers.

- :mod:`.transitions`: the stored fields (:class:`Transitions`, :class:`ReplaySample`);
- :mod:`.buffer`: :class:`ReplayBuffer` and :class:`PrioritizedReplayBuffer` (its save and
  load format, :data:`FORMAT_VERSION`);
- :mod:`.step_replay`: :class:`StepReplay` and :class:`PrioritizedStepReplay`, agents'
  1-step rows linked per episode, n-step transitions made when sampled (the trainers' store);
- :mod:`.nstep`: :class:`NStepAccumulator`, n-step returns per agent at insert time (0.1's
  way, for :class:`ReplayBuffer`);
- :mod:`.sum_tree`: the trees behind prioritized sampling;
- :mod:`.batches`: mlagents' ``AgentBuffer`` and replay samples as torch minibatches.

Imports only :mod:`mla_plugin_core.util`.
"""

from mla_plugin_core.replay import buffer as _buffer
from mla_plugin_core.replay.buffer import *  # noqa: F403
from mla_plugin_core.replay.nstep import NStepAccumulator
from mla_plugin_core.replay.step_replay import PrioritizedStepReplay, StepReplay

__all__ = [*_buffer.__all__, "NStepAccumulator", "PrioritizedStepReplay", "StepReplay"]
