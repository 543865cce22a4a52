"""Observation normalisation that keeps the network's function (mla_plugin_core.networks.normalization)."""

from __future__ import annotations

import numpy as np
import pytest
from mlagents.torch_utils import torch
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.settings import NetworkSettings
from mlagents.trainers.torch_entities.networks import SimpleActor, ValueNetwork
from mlagents.trainers.trajectory import ObsUtil
from mlagents_envs.base_env import ActionSpec, ObservationSpec, ObservationType
from mlagents_envs.base_env import DimensionProperty as Dim

from mla_plugin_core.networks.normalization import normalized_columns, update_normalization


def vector_spec(size: int) -> ObservationSpec:
    return ObservationSpec(
        shape=(size,),
        dimension_property=(Dim.NONE,),
        observation_type=ObservationType.DEFAULT,
        name=f"vector{size}",
    )


SPECS = [vector_spec(3), vector_spec(5)]


def buffer_of(observations: list[np.ndarray]) -> AgentBuffer:
    buffer = AgentBuffer()
    for index, obs in enumerate(observations):
        buffer[ObsUtil.get_name_at(index)].set(list(obs.astype(np.float32)))
    return buffer


def observations(rng: np.random.Generator, n: int, scale: float, shift: float) -> list[np.ndarray]:
    return [shift + scale * rng.standard_normal((n, spec.shape[0])) for spec in SPECS]


def actor(normalize: bool = True) -> SimpleActor:
    torch.manual_seed(0)
    settings = NetworkSettings(hidden_units=16, num_layers=2, normalize=normalize)
    return SimpleActor(SPECS, settings, ActionSpec.create_continuous(2))


def means(network: SimpleActor, obs: list[np.ndarray]) -> torch.Tensor:
    with torch.no_grad():
        encoding, _ = network.network_body([torch.as_tensor(o, dtype=torch.float32) for o in obs])
        return network.action_model._continuous_distribution(encoding).mean


def test_columns_of_each_normalizer_in_the_first_layer() -> None:
    columns = normalized_columns(actor().network_body)
    assert columns is not None
    assert [cols for _, cols in columns] == [slice(0, 3), slice(3, 8)]


def test_the_policy_is_unchanged_by_new_statistics() -> None:
    rng = np.random.default_rng(0)
    network = actor()
    update_normalization(network, buffer_of(observations(rng, 200, 1.0, 0.0)))
    probe = observations(rng, 64, 0.25, 0.2)  # inside the normaliser's clip at +-5
    before = means(network, probe)
    # The data narrows and moves (an agent that got better): mlagents' update alone
    # changes the policy's answer to the same states.
    narrow = buffer_of(observations(rng, 2000, 0.1, 0.3))
    plain = actor()
    plain.load_state_dict(network.state_dict())
    plain.update_normalization(narrow)
    assert (means(plain, probe) - before).abs().max() > 0.05
    update_normalization(network, narrow)
    torch.testing.assert_close(means(network, probe), before, rtol=1e-4, atol=1e-5)
    # ... while the statistics themselves moved exactly as mlagents moves them
    for (ours, _), (theirs, _) in zip(
        normalized_columns(network.network_body),
        normalized_columns(plain.network_body),
        strict=True,
    ):
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_variance, theirs.running_variance)


def test_a_critic_keeps_its_values() -> None:
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    critic = ValueNetwork(["extrinsic"], SPECS, NetworkSettings(hidden_units=16, normalize=True))
    probe = [torch.as_tensor(o, dtype=torch.float32) for o in observations(rng, 32, 1.0, 0.0)]
    with torch.no_grad():
        before = critic.critic_pass(probe)[0]["extrinsic"]
        update_normalization(critic, buffer_of(observations(rng, 500, 3.0, -1.0)))
        after = critic.critic_pass(probe)[0]["extrinsic"]
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("normalize", [False, True])
def test_without_normalizers_or_with_them_the_update_is_mlagents(normalize: bool) -> None:
    rng = np.random.default_rng(2)
    network = actor(normalize)
    reference = actor(normalize)
    reference.load_state_dict(network.state_dict())
    data = buffer_of(observations(rng, 100, 2.0, 1.0))
    update_normalization(network, data)
    reference.update_normalization(data)
    ours, theirs = network.state_dict(), reference.state_dict()
    changed = {k for k in ours if not torch.equal(ours[k], theirs[k])}
    # only the first layer differs, and only when there is something to rescale
    first = {
        "network_body._body_endoder.seq_layers.0.weight",
        "network_body._body_endoder.seq_layers.0.bias",
    }
    assert changed == (first if normalize else set())
