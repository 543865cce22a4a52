"""Side channels: what mlagents' own channel classes write, we read, and back."""

from __future__ import annotations

import numpy as np
import pytest
from mlagents_envs.side_channel.engine_configuration_channel import (
    EngineConfigurationChannel,
)
from mlagents_envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_envs.side_channel.side_channel_manager import SideChannelManager
from mlagents_envs.side_channel.stats_side_channel import (
    StatsAggregationMethod,
    StatsSideChannel,
)

from mla_envs.parameters import EnvironmentParameters
from mla_envs.protocol.side_channels import SideChannels, split_messages


def trainer_blob(*channels) -> bytes:
    return bytes(SideChannelManager(list(channels)).generate_side_channel_messages())


def test_engine_configuration():
    engine = EngineConfigurationChannel()
    engine.set_configuration_parameters(
        width=84, height=42, quality_level=5, time_scale=20.0, target_frame_rate=-1
    )
    ours = SideChannels(EnvironmentParameters())
    assert ours.engine.time_scale == 0.0  # unpaced until told
    ours.receive(trainer_blob(engine))
    assert (ours.engine.width, ours.engine.height) == (84, 42)
    assert ours.engine.quality_level == 5 and ours.engine.time_scale == 20.0


def test_environment_parameters_constants_and_samplers():
    channel = EnvironmentParametersChannel()
    channel.set_float_parameter("scale", 2.5)
    channel.set_uniform_sampler_parameters("mass", 1.0, 2.0, seed=3)
    channel.set_gaussian_sampler_parameters("g", 10.0, 0.1, seed=3)
    channel.set_multirangeuniform_sampler_parameters("m", [(0, 1), (10, 12)], seed=3)
    parameters = EnvironmentParameters()
    SideChannels(parameters).receive(trainer_blob(channel))
    assert parameters.keys() == ["g", "m", "mass", "scale"]
    np.testing.assert_array_equal(parameters.sample("scale", 1.0, 3), 2.5)
    mass = parameters.sample("mass", 1.0, 1000)
    assert 1.0 <= mass.min() and mass.max() < 2.0 and mass.std() > 0.2
    assert parameters.sample("g", 0.0, 1000).mean() == pytest.approx(10.0, abs=0.05)
    m = parameters.sample("m", 0.0, 1000)
    assert ((m <= 1) | ((m >= 10) & (m <= 12))).all() and (m > 10).mean() > 0.5
    assert parameters.get("unset", 7.0) == 7.0
    # A constant replaces a sampler.
    channel.set_float_parameter("mass", 4.0)
    SideChannels(parameters).receive(trainer_blob(channel))
    np.testing.assert_array_equal(parameters.sample("mass", 1.0, 2), 4.0)


def test_samplers_are_reproducible_from_their_seed():
    def draws():
        channel = EnvironmentParametersChannel()
        channel.set_uniform_sampler_parameters("mass", 0.0, 1.0, seed=9)
        parameters = EnvironmentParameters()
        SideChannels(parameters).receive(trainer_blob(channel))
        return parameters.sample("mass", 1.0, 5)

    np.testing.assert_array_equal(draws(), draws())


def test_stats_reach_mlagents_stats_channel():
    ours = SideChannels(EnvironmentParameters())
    ours.queue_stat("3DBall/Ball Mass", 1.5)
    ours.queue_stat("Count", 3.0, StatsAggregationMethod.SUM)
    stats = StatsSideChannel()
    SideChannelManager([stats]).process_side_channel_message(ours.take_outgoing())
    assert stats.get_and_reset_stats() == {
        "3DBall/Ball Mass": [(1.5, StatsAggregationMethod.AVERAGE)],
        "Count": [(3.0, StatsAggregationMethod.SUM)],
    }
    assert ours.take_outgoing() == b""


def test_unknown_channels_are_skipped_and_truncation_is_an_error():
    engine = EngineConfigurationChannel()
    engine.set_configuration_parameters(time_scale=5.0)
    blob = trainer_blob(engine)
    unknown = bytes(16) + (3).to_bytes(4, "little") + b"abc"
    ours = SideChannels(EnvironmentParameters())
    ours.receive(unknown + blob)
    assert ours.engine.time_scale == 5.0
    with pytest.raises(ValueError, match="only"):
        split_messages(blob[:-1])
