"""Target networks (Mnih et al. 2015; Lillicrap et al. 2016, https://arxiv.org/abs/1509.02971).

Two ways to make a target network trail its online network:

- hard copy every ``interval`` updates: :class:`HardTargetUpdate`;
- Polyak averaging after every update, ``target <- tau * online + (1 - tau) * target``:
  :func:`soft_update`.
"""

from __future__ import annotations

import copy

import torch


def make_target(online: torch.nn.Module) -> torch.nn.Module:
    """A frozen deep copy of ``online``: same weights, ``requires_grad`` off, eval mode."""
    target = copy.deepcopy(online)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
    return target.eval()


@torch.no_grad()
def hard_update(target: torch.nn.Module, online: torch.nn.Module) -> None:
    """Copy every parameter and buffer of ``online`` into ``target``, in place."""
    target.load_state_dict(online.state_dict())


@torch.no_grad()
def soft_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """Polyak update in place: ``target = tau * online + (1 - tau) * target``.

    :param tau: interpolation factor in (0, 1]; ``tau = 1`` is a hard copy.
    Buffers (e.g. normalisation statistics) are copied, not averaged.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}")
    target_params: list[torch.Tensor] = list(target.parameters())
    online_params: list[torch.Tensor] = list(online.parameters())
    torch._foreach_mul_(target_params, 1.0 - tau)
    torch._foreach_add_(target_params, online_params, alpha=tau)
    for target_buffer, online_buffer in zip(target.buffers(), online.buffers(), strict=True):
        target_buffer.copy_(online_buffer)


class HardTargetUpdate:
    """Copy the online network into the target every ``interval`` calls of :meth:`step`.

    :param interval: number of gradient updates between copies, >= 1.
    """

    def __init__(self, interval: int):
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self.updates = 0

    def step(self, target: torch.nn.Module, online: torch.nn.Module) -> bool:
        """Count one gradient update; copy when the count reaches a multiple of ``interval``.

        :return: whether a copy happened.
        """
        self.updates += 1
        if self.updates % self.interval == 0:
            hard_update(target, online)
            return True
        return False
