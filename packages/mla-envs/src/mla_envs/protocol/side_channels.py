"""The environment's end of mlagents' side channels.

On the wire, a side-channel blob is a sequence of messages, each
``16-byte channel UUID (little-endian layout) | int32 little-endian length | payload``.
Payloads are read and written with mlagents-envs' own ``IncomingMessage`` and
``OutgoingMessage``, so the encoding of ints, floats and strings matches the trainer's.

Channels handled here (the ones ``mlagents-learn`` opens):

* engine configuration (trainer -> env): time scale, frame rates, screen size;
* environment parameters (trainer -> env): constants and samplers, see
  :mod:`mla_envs.parameters`;
* stats (env -> trainer): ``(key, value, aggregation)`` triples that end up in
  TensorBoard next to the trainer's own statistics.
"""

from __future__ import annotations

import logging
import struct
import uuid
from dataclasses import dataclass

from mlagents_envs.side_channel import (
    DefaultTrainingAnalyticsSideChannel,
    IncomingMessage,
    OutgoingMessage,
)
from mlagents_envs.side_channel.engine_configuration_channel import (
    EngineConfigurationChannel,
)
from mlagents_envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_envs.side_channel.stats_side_channel import (
    StatsAggregationMethod,
    StatsSideChannel,
)

from mla_envs.parameters import (
    EnvironmentParameters,
    gaussian_sampler,
    multirange_uniform_sampler,
    uniform_sampler,
)

logger = logging.getLogger(__name__)

ENGINE_CONFIGURATION_ID = EngineConfigurationChannel().channel_id
ENVIRONMENT_PARAMETERS_ID = EnvironmentParametersChannel().channel_id
STATS_ID = StatsSideChannel().channel_id
#: Sent by mlagents' low-level client even to environments that do not ask for it.
TRAINING_ANALYTICS_ID = DefaultTrainingAnalyticsSideChannel.CHANNEL_ID
_HEADER = struct.Struct("<i")
_UUID_BYTES = 16

_ConfigType = EngineConfigurationChannel.ConfigurationType
_DataType = EnvironmentParametersChannel.EnvironmentDataTypes
_SamplerType = EnvironmentParametersChannel.SamplerTypes


def split_messages(blob: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """Cut a side-channel blob into ``(channel id, payload)`` pairs.

    :raises ValueError: the blob is truncated.
    """
    messages = []
    offset = 0
    while offset < len(blob):
        if offset + _UUID_BYTES + _HEADER.size > len(blob):
            raise ValueError(f"truncated side-channel header at byte {offset}")
        channel_id = uuid.UUID(bytes_le=bytes(blob[offset : offset + _UUID_BYTES]))
        (length,) = _HEADER.unpack_from(blob, offset + _UUID_BYTES)
        start = offset + _UUID_BYTES + _HEADER.size
        if start + length > len(blob):
            raise ValueError(
                f"side-channel message for {channel_id} says {length} bytes, "
                f"only {len(blob) - start} left"
            )
        messages.append((channel_id, bytes(blob[start : start + length])))
        offset = start + length
    return messages


def join_messages(messages: list[tuple[uuid.UUID, bytes]]) -> bytes:
    """The inverse of :func:`split_messages`."""
    return b"".join(
        channel_id.bytes_le + _HEADER.pack(len(payload)) + payload
        for channel_id, payload in messages
    )


@dataclass
class EngineConfiguration:
    """What the trainer's engine-configuration channel last set.

    Only ``time_scale`` changes anything here (see :class:`~mla_envs.protocol.client
    .UnityClient`); the rest is kept for logging. Defaults are Unity's, except
    ``time_scale``: 0 (unpaced) until the trainer sets one (``mlagents-learn`` always
    does: 20 unless ``--time-scale``), as there is no rendering to watch.
    """

    width: int = 80
    height: int = 80
    quality_level: int = 1
    time_scale: float = 0.0
    target_frame_rate: int = -1
    capture_frame_rate: int = 60


class SideChannels:
    """Reads the trainer's side-channel messages and queues the environment's stats.

    :param parameters: the environment parameters to update.
    """

    def __init__(self, parameters: EnvironmentParameters) -> None:
        self.parameters = parameters
        self.engine = EngineConfiguration()
        self._outgoing: list[tuple[uuid.UUID, bytes]] = []
        self._warned: set[uuid.UUID] = set()

    def receive(self, blob: bytes) -> None:
        """Apply every message of a blob from the trainer."""
        for channel_id, payload in split_messages(blob):
            message = IncomingMessage(payload)
            if channel_id == ENGINE_CONFIGURATION_ID:
                self._on_engine_configuration(message)
            elif channel_id == ENVIRONMENT_PARAMETERS_ID:
                self._on_environment_parameter(message)
            elif channel_id == TRAINING_ANALYTICS_ID:
                continue  # usage analytics for Unity's own telemetry: nothing to do
            elif channel_id not in self._warned:
                self._warned.add(channel_id)
                logger.warning("Ignoring messages of unknown side channel %s", channel_id)

    def _on_engine_configuration(self, message: IncomingMessage) -> None:
        kind = message.read_int32()
        engine = self.engine
        if kind == _ConfigType.SCREEN_RESOLUTION:
            engine.width, engine.height = message.read_int32(), message.read_int32()
        elif kind == _ConfigType.QUALITY_LEVEL:
            engine.quality_level = message.read_int32()
        elif kind == _ConfigType.TIME_SCALE:
            engine.time_scale = message.read_float32()
        elif kind == _ConfigType.TARGET_FRAME_RATE:
            engine.target_frame_rate = message.read_int32()
        elif kind == _ConfigType.CAPTURE_FRAME_RATE:
            engine.capture_frame_rate = message.read_int32()
        else:
            logger.warning("Ignoring unknown engine configuration type %d", kind)
            return
        logger.info("Engine configuration: %s", engine)

    def _on_environment_parameter(self, message: IncomingMessage) -> None:
        key = message.read_string()
        kind = message.read_int32()
        if kind == _DataType.FLOAT:
            value = message.read_float32()
            self.parameters.set_float(key, value)
            logger.info("Environment parameter %s = %g", key, value)
            return
        if kind != _DataType.SAMPLER:
            logger.warning("Ignoring parameter %r of unknown data type %d", key, kind)
            return
        seed = message.read_int32()
        sampler_type = message.read_int32()
        if sampler_type == _SamplerType.UNIFORM:
            low, high = message.read_float32(), message.read_float32()
            self.parameters.set_sampler(key, uniform_sampler(low, high, seed))
            detail = f"uniform({low:g}, {high:g})"
        elif sampler_type == _SamplerType.GAUSSIAN:
            mean, std = message.read_float32(), message.read_float32()
            self.parameters.set_sampler(key, gaussian_sampler(mean, std, seed))
            detail = f"gaussian({mean:g}, {std:g})"
        elif sampler_type == _SamplerType.MULTIRANGEUNIFORM:
            intervals = message.read_float32_list()
            self.parameters.set_sampler(key, multirange_uniform_sampler(intervals, seed))
            detail = f"multirange_uniform({intervals})"
        else:
            logger.warning("Ignoring parameter %r: unknown sampler %d", key, sampler_type)
            return
        logger.info("Environment parameter %s ~ %s, seed %d", key, detail, seed)

    def queue_stat(
        self,
        key: str,
        value: float,
        aggregation: StatsAggregationMethod = StatsAggregationMethod.AVERAGE,
    ) -> None:
        """Send ``key = value`` to the trainer's stats reporter with the next reply."""
        message = OutgoingMessage()
        message.write_string(key)
        message.write_float32(value)
        message.write_int32(aggregation.value)
        self._outgoing.append((STATS_ID, bytes(message.buffer)))

    def take_outgoing(self) -> bytes:
        """The queued messages as one blob; empties the queue."""
        blob = join_messages(self._outgoing)
        self._outgoing.clear()
        return blob
