"""set_activation: every Swish of an mlagents network becomes the chosen activation."""

import pytest
import torch
from mlagents.trainers.settings import NetworkSettings
from mlagents.trainers.torch_entities.layers import Swish
from mlagents.trainers.torch_entities.networks import SimpleActor, ValueNetwork
from mlagents_envs.base_env import (
    ActionSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

from mla_plugin_core.networks.activation import set_activation

VECTOR = ObservationSpec((5,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "vector")
SETTINGS = NetworkSettings(hidden_units=16, num_layers=3)


def activations(network: torch.nn.Module, cls: type) -> int:
    return sum(isinstance(module, cls) for module in network.modules())


@pytest.mark.parametrize("name, cls", [("tanh", torch.nn.Tanh), ("relu", torch.nn.ReLU)])
def test_every_swish_is_replaced_and_the_output_changes(name, cls):
    torch.manual_seed(0)
    critic = ValueNetwork(["extrinsic"], [VECTOR], SETTINGS)
    n_swish = activations(critic, Swish)
    assert n_swish == 3  # one per hidden layer of the body
    inputs = [torch.randn(3, 5)]
    before = critic.critic_pass(inputs)[0]["extrinsic"].detach()

    assert set_activation(critic, name) == n_swish
    assert activations(critic, Swish) == 0
    assert activations(critic, cls) == n_swish
    after = critic.critic_pass(inputs)[0]["extrinsic"].detach()
    assert not torch.allclose(before, after)


def test_weights_are_untouched_and_swish_is_a_no_op():
    torch.manual_seed(0)
    actor = SimpleActor([VECTOR], SETTINGS, ActionSpec.create_discrete((3,)))
    weights = {k: v.clone() for k, v in actor.state_dict().items()}
    assert set_activation(actor, "swish") > 0
    assert activations(actor, Swish) > 0
    set_activation(actor, "tanh")
    state = actor.state_dict()
    assert state.keys() == weights.keys()
    assert all(torch.equal(state[k], weights[k]) for k in weights)


def test_unknown_name_is_refused():
    actor = SimpleActor([VECTOR], SETTINGS, ActionSpec.create_discrete((3,)))
    with pytest.raises(ValueError, match="'sigmoid' is not one of"):
        set_activation(actor, "sigmoid")
