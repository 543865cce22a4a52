"""Observation normalisation that does not change what a network computes.

mlagents normalises vector observations with running statistics over every step seen
since the start of training (``Normalizer``: mean and variance of all of them). The
network's first layer sees ``z = (x - m) / s``, so each update of ``m`` and ``s`` changes
the function the network computes, without any gradient step: a policy's response to a
physical state is ``W / s``, and its gain drifts with ``s``. As an agent gets better, the
states it visits narrow, ``s`` keeps shrinking for the rest of the run, and the policy's
gain grows on its own (3DBall: a policy that balances at its own statistics drops the
ball at 0.6x or 1.6x of them; mla-a2c README, "Why A2C collapsed on 3DBall").

:func:`update_normalization` applies Pop-Art's rule (van Hasselt et al. 2016, "Learning
values across many orders of magnitude", https://arxiv.org/abs/1602.07714, which does it
for the outputs) to the inputs: after the statistics move from ``(m, s)`` to ``(m', s')``,
the first linear layer's columns of those inputs become ``W' = W * s' / s`` and its bias
``b' = b + W (m' - m) / s``, so ``W' z' + b' = W z + b`` for every ``x`` (up to the
normaliser's clip at +-5). The statistics still track the data, and so keep the
optimisation well conditioned; only gradient steps change the function.

Supported: every network built on mlagents' ``NetworkBody`` whose first layer is a plain
``LinearEncoder`` (vector and visual observations, memory, actions as inputs). Bodies with
variable-length (attention) or hypernetwork goal inputs are updated as mlagents does.
"""

from __future__ import annotations

from typing import Any

from mlagents.torch_utils import torch
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.torch_entities.encoders import Normalizer, VectorInput
from mlagents.trainers.torch_entities.layers import LinearEncoder
from mlagents.trainers.torch_entities.networks import NetworkBody


def normalized_columns(body: NetworkBody) -> list[tuple[Normalizer, slice]] | None:
    """Each normaliser of ``body`` and the columns of the first linear layer it feeds.

    :return: ``None`` when the body's first layer is not a plain ``LinearEncoder`` fed by
        the processors in order (attention over variable-length inputs, hypernetwork goal
        conditioning): the columns are then not known.
    """
    encoder = body.observation_encoder
    if encoder.rsa is not None or not isinstance(body._body_endoder, LinearEncoder):
        return None
    columns, start = [], 0
    for processor, size in zip(encoder.processors, encoder.embedding_sizes, strict=True):
        if isinstance(processor, VectorInput) and processor.normalizer is not None:
            columns.append((processor.normalizer, slice(start, start + size)))
        start += size
    return columns


def _statistics(normalizer: Normalizer) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` exactly as ``Normalizer.forward`` divides by them."""
    steps = normalizer.normalization_steps
    return normalizer.running_mean.clone(), torch.sqrt(normalizer.running_variance / steps)


def update_normalization(network: Any, buffer: AgentBuffer) -> None:
    """``network.update_normalization(buffer)``, then the first layer rescaled so that the
    network computes the same function as before (module docstring).

    :param network: an mlagents actor or critic with a ``network_body`` (``SimpleActor``,
        ``SharedActorCritic``, ``ValueNetwork``) or a ``NetworkBody`` itself.
    """
    body = network if isinstance(network, NetworkBody) else network.network_body
    columns = normalized_columns(body)
    before = [_statistics(normalizer) for normalizer, _ in columns or []]
    network.update_normalization(buffer)
    if not columns:
        return
    first = body._body_endoder.seq_layers[0]
    with torch.no_grad():
        for (normalizer, cols), (mean, std) in zip(columns, before, strict=True):
            new_mean, new_std = _statistics(normalizer)
            weight = first.weight[:, cols]
            first.bias += weight @ ((new_mean - mean) / std)
            first.weight[:, cols] = weight * (new_std / std)
