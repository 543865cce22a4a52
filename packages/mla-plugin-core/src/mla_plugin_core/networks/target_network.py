"""Target networks (Mnih et al. 2015; Lillicrap et al. 2016, https://arxiv.org/abs/1509.02971).

Two ways to make a target network trail its online network:

- hard copy every ``interval`` updates: :func:`hard_update`;
- Polyak averaging after every update, ``target <- tau * online + (1 - tau) * target``:
  :func:`soft_update`.

:class:`TargetUpdate` does either after each gradient step and counts the steps in its
checkpointed state.
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


class TargetUpdate(torch.nn.Module):
    """Make a target network trail its online network, counting gradient updates.

    Hard copies every ``interval`` updates when ``interval > 0``, otherwise a Polyak
    update with ``tau`` after every update. The count is a buffer (``count``, int64), so a
    module registered in the optimizer's checkpointed modules keeps hard copies in phase
    across ``--resume``.

    :param interval: gradient updates between hard copies, >= 0; 0 for soft updates.
    :param tau: Polyak factor of soft updates, in (0, 1] (unused when ``interval > 0``).
    """

    count: torch.Tensor

    def __init__(self, interval: int = 0, tau: float = 1.0):
        super().__init__()
        if interval < 0:
            raise ValueError(f"interval must be >= 0, got {interval}")
        if interval == 0 and not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        self.interval = int(interval)
        self.tau = float(tau)
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @property
    def updates(self) -> int:
        """Gradient updates counted so far."""
        return int(self.count)

    def step(self, target: torch.nn.Module, online: torch.nn.Module) -> bool:
        """Count one gradient update, then update ``target`` from ``online`` as configured.

        :return: whether ``target`` changed (always with soft updates).
        """
        self.count += 1
        if self.interval == 0:
            soft_update(target, online, self.tau)
            return True
        if self.updates % self.interval == 0:
            hard_update(target, online)
            return True
        return False


class HardTargetUpdate(TargetUpdate):
    """A :class:`TargetUpdate` that copies every ``interval`` updates only.

    :param interval: number of gradient updates between copies, >= 1.
    """

    def __init__(self, interval: int):
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        super().__init__(interval=interval)
