"""``.demo`` files written as Unity's ``DemonstrationWriter`` writes them, while a player plays.

The byte layout (com.unity.ml-agents, ``Runtime/Demonstrations/DemonstrationWriter.cs``):

1. at byte 0, a length-delimited ``DemonstrationMetaProto``: at the start a placeholder
   (``api_version`` 1 and the name, no counts); Unity keeps ``MetaDataBytes = 32`` bytes
   for it, so the metadata with its final counts must fit in 33 bytes with its length;
2. at byte 33 (mlagents' ``INITIAL_POS``), a length-delimited ``BrainParametersProto`` of
   the behavior, ``is_training`` false;
3. then one length-delimited ``AgentInfoActionPairProto`` per recorded step, each written
   (and here flushed) as it is played: a file that is still being recorded can be read up
   to its last complete record;
4. at the close: the final metadata (``number_steps`` records, ``number_episodes``,
   ``mean_reward`` per episode) once more, undelimited, after the last record, then
   delimited at byte 0 again. Readers stop after ``number_steps`` records, so the copy at
   the end is never read as a record.

Nothing here decides what a record holds (which action goes with which observation): that
is the player's (see :mod:`mla_envs.players`); this module only keeps Unity's layout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from google.protobuf.internal.encoder import _VarintBytes
from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_envs.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto

from mla_envs.envs.base import BehaviorSpec
from mla_envs.protocol.messages import brain_parameters

#: Bytes Unity keeps for the metadata at the start of a file (``MetaDataBytes``).
META_BYTES = 32
#: Where the brain parameters start: after the metadata and one byte of its length.
BRAIN_AT = META_BYTES + 1
#: ``DemonstrationMetaData.ApiVersion`` of the files Unity writes (mlagents reads 0 and 1).
API_VERSION = 1
#: Records a file may count; the metadata with this count and the longest name fits.
MAX_RECORDS = 2**28 - 1
#: The longest name (UTF-8 bytes) whose final metadata fits in its 33 bytes.
MAX_NAME_BYTES = 13


def _delimited(message) -> bytes:
    body = message.SerializeToString()
    return _VarintBytes(len(body)) + body


class DemoWriter:
    """One ``.demo`` file, recorded step by step.

    :param path: the file to create; an existing file is never replaced (``FileExistsError``).
    :param spec: the behavior recorded (its action spec goes into the brain parameters).
    :param name: the demonstration's name in the metadata (default: the file's stem);
        at most :data:`MAX_NAME_BYTES` bytes, so that the final metadata fits where Unity
        keeps it.
    """

    def __init__(
        self, path: str | os.PathLike, spec: BehaviorSpec, name: str | None = None
    ) -> None:
        self.path = Path(path)
        self.name = self.path.stem if name is None else name
        if len(self.name.encode()) > MAX_NAME_BYTES:
            raise ValueError(
                f"name: {self.name!r} is longer than {MAX_NAME_BYTES} bytes, the most the "
                f"{META_BYTES} bytes Unity keeps for a demonstration's metadata can hold"
            )
        self.spec = spec
        self.steps = 0
        self.episodes = 0
        self._cumulative_reward = 0.0
        placeholder = DemonstrationMetaProto(api_version=API_VERSION, demonstration_name=self.name)
        brain = brain_parameters(spec)
        brain.is_training = False
        self._file = open(self.path, "xb")  # never replaces a recording
        self._file.write(_delimited(placeholder))
        self._file.seek(BRAIN_AT)
        self._file.write(_delimited(brain))
        self._file.flush()

    def record(
        self,
        observations: Sequence[np.ndarray],
        reward: float,
        *,
        discrete_actions: Sequence[int] = (),
        continuous_actions: Sequence[float] = (),
        done: bool = False,
        max_step_reached: bool = False,
        action_mask: Sequence[bool] | None = None,
        agent_id: int = 0,
    ) -> None:
        """Append one record: one agent's observations at a decision (or at its episode's
        end, ``done``), the reward since its previous record, and the actions stored with
        it. Written and flushed at once."""
        if self._file is None:
            raise ValueError(f"{self.path}: the recording is closed")
        if self.steps >= MAX_RECORDS:
            raise ValueError(f"{self.path}: more than {MAX_RECORDS} records")
        shapes = [tuple(np.shape(o)) for o in observations]
        if shapes != [tuple(s) for s in self.spec.observation_shapes]:
            raise ValueError(
                f"observations: expected shapes {list(self.spec.observation_shapes)}, got {shapes}"
            )
        pair = AgentInfoActionPairProto()
        info = pair.agent_info
        info.id = int(agent_id)
        info.reward = float(reward)
        info.done = bool(done)
        info.max_step_reached = bool(max_step_reached and done)
        for obs, shape in zip(observations, shapes, strict=True):
            proto = info.observations.add()
            proto.shape.extend(shape)
            proto.float_data.data.extend(np.asarray(obs, np.float32).ravel().tolist())
        if action_mask is not None:
            info.action_mask.extend(bool(m) for m in action_mask)
        pair.action_info.discrete_actions.extend(int(a) for a in discrete_actions)
        pair.action_info.continuous_actions.extend(float(a) for a in continuous_actions)
        self._file.write(_delimited(pair))
        self._file.flush()
        self.steps += 1
        self._cumulative_reward += float(reward)
        if done:
            self.episodes += 1

    def close(self) -> None:
        """Finish the file as Unity does: the episode in progress counts as one, and the
        final metadata goes after the last record and, delimited, to byte 0."""
        if self._file is None:
            return
        episodes = self.episodes + 1  # Unity's Close() ends the episode in progress
        meta = DemonstrationMetaProto(
            api_version=API_VERSION,
            demonstration_name=self.name,
            number_steps=self.steps,
            number_episodes=episodes,
            mean_reward=self._cumulative_reward / episodes,
        )
        head = _delimited(meta)
        assert len(head) <= BRAIN_AT, head  # MAX_NAME_BYTES and MAX_RECORDS keep it there
        self._file.write(meta.SerializeToString())
        self._file.seek(0)
        self._file.write(head)
        self._file.close()
        self._file = None

    def __enter__(self) -> DemoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
