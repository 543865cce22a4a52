"""Choose the hidden-layer activation of mlagents' networks.

mlagents builds the fully connected layers of every network body (actors, value networks)
and its ResNet visual encoder with Swish, ``x * sigmoid(x)``, and offers no setting to change
it (its small convolutional encoders use LeakyReLU and are left alone here). Swish works well for PPO,
which takes many small clipped steps per sample; an algorithm that takes one unclipped step
per sample, like A2C, can be far less stable with it: on CartPole-v1, A2C with
mlagents' Swish networks often collapses to a near-deterministic bad policy, while the same
networks with tanh (the activation of Mnih et al. 2016 and of Stable-Baselines3) learn the
task reliably (numbers in mla-a2c's README).

:func:`set_activation` swaps the activation modules of an already-built network in place.
Activations have no parameters, so the swap changes neither the initial weights, nor the
checkpoint format, nor the ONNX inputs and outputs Unity reads.
"""

from __future__ import annotations

import torch
from mlagents.trainers.torch_entities.layers import Swish

#: YAML name -> activation module class.
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "swish": Swish,
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
}


def set_activation(network: torch.nn.Module, name: str) -> int:
    """Replace every Swish inside ``network`` by the activation called ``name``.

    :param network: an mlagents actor, critic or any module built from mlagents' layers.
    :param name: a key of :data:`ACTIVATIONS`.
    :return: how many activation modules now use ``name`` (0 if the network has none).
    :raises ValueError: for a name that is not a key of :data:`ACTIVATIONS`.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {sorted(ACTIVATIONS)}")
    activation_cls = ACTIVATIONS[name]
    replaced = 0
    for parent in list(network.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Swish):
                if activation_cls is not Swish:
                    setattr(parent, child_name, activation_cls())
                replaced += 1
    return replaced
