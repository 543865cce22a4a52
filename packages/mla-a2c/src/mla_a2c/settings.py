"""Hyperparameters of A2C: the ``hyperparameters:`` block of a ``trainer_type: a2c`` YAML.

A2C (Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning",
https://arxiv.org/abs/1602.01783, in its synchronous form) collects ``buffer_size``
experiences with the current policy from every agent of the behavior, makes one pass of
gradient steps on them, and throws them away. In mlagents' terms:

- the agents of a scene (and of ``--num-envs`` copies) are A2C's parallel actors;
- ``time_horizon`` is A2C's ``n_steps``: a trajectory is cut after that many steps and its
  last value bootstrapped from ``V(next_obs)``;
- ``buffer_size`` is ``n_envs * n_steps``, the experiences of one update;
- ``batch_size`` is the size of each gradient step. Its default, ``batch_size =
  buffer_size``, is the classic algorithm: one synchronous gradient step on everything
  collected. A smaller ``batch_size`` makes ``buffer_size // batch_size`` steps, each on
  different samples, each sample used once (the later steps are slightly off-policy).

mlagents appends whole trajectories, so the buffer can hold more than ``buffer_size``
experiences when an update starts (at most one ``time_horizon`` per agent more). Every
experience is used once: the last minibatch takes the remainder (mlagents' PPO drops it).
"""

# No `from __future__ import annotations` here: mlagents structures the YAML with cattrs,
# which needs the field types as real classes, not strings.
from typing import Any

import attr
from mlagents.trainers.settings import ScheduleType

from mla_plugin_core.networks.activation import ACTIVATIONS
from mla_plugin_core.settings import (
    HyperparameterError,
    OnPolicySettings,
    StrictBool,
    boolean,
    hyperparameter,
)

OPTIMIZERS = ("rmsprop", "adam")


def _single_epoch(instance: Any, attribute: attr.Attribute, value: Any) -> None:
    """attrs validator: A2C makes exactly one pass over each buffer."""
    if value != 1:
        raise HyperparameterError(
            attribute.name,
            value,
            "A2C makes one pass over each buffer (num_epoch: 1). It is on-policy: more "
            "epochs reuse samples from an older policy without PPO's clipped ratio, which "
            "is unstable. Use trainer_type: ppo for several epochs.",
        )


@attr.s(auto_attribs=True)
class A2CSettings(OnPolicySettings):
    """Validated A2C hyperparameters, each documented by the ``#:`` comment above it.

    Defaults follow Stable-Baselines3's A2C (lr 7e-4, RMSprop, lambd 1, value_loss_coef
    0.5, max_grad_norm 0.5), except ``beta`` and the schedules, which follow mlagents' PPO.
    """

    #: Experiences collected from all agents before an update (A2C's ``n_envs * n_steps``),
    #: >= 1.
    buffer_size: int = hyperparameter(2048, ge=1)
    #: Experiences per gradient step, 1 <= batch_size <= buffer_size. Default:
    #: ``buffer_size`` (classic A2C, one gradient step per update).
    batch_size: int = hyperparameter(
        attr.Factory(lambda self: self.buffer_size, takes_self=True), ge=1
    )
    #: Passes over each buffer; must be 1: A2C is on-policy, more epochs reuse stale
    #: samples without PPO's clipping (unstable). Use ``trainer_type: ppo`` for more.
    num_epoch: int = attr.ib(default=1, validator=_single_epoch)
    #: Initial step size of the optimizer, > 0 (SB3's default).
    learning_rate: float = hyperparameter(7.0e-4, gt=0.0)
    #: ``constant``, or ``linear`` (decays to ~0 at ``max_steps``, as mlagents' PPO).
    learning_rate_schedule: ScheduleType = ScheduleType.LINEAR
    #: Entropy coefficient (the ``beta`` of Mnih et al. 2016), >= 0.
    beta: float = hyperparameter(5.0e-3, ge=0.0)
    #: ``constant``, or ``linear`` (decays to 1e-5 at ``max_steps``).
    beta_schedule: ScheduleType = ScheduleType.LINEAR
    #: GAE lambda in [0, 1] (Schulman et al. 2016, https://arxiv.org/abs/1506.02438).
    #: 1.0 gives A2C's n-step returns ``sum_k gamma^k r_{t+k} + gamma^n V(s_{t+n})`` up to
    #: the end of the trajectory piece, without GAE's exponential weighting; lower values
    #: trade variance for bias.
    lambd: float = hyperparameter(1.0, ge=0.0, le=1.0)
    #: Weight of the value loss in the total loss (``c_1`` in Schulman et al. 2017), > 0.
    value_loss_coef: float = hyperparameter(0.5, gt=0.0)
    #: Global L2 norm the gradient is clipped to before each step, > 0.
    max_grad_norm: float = hyperparameter(0.5, gt=0.0)
    #: Standardise advantages over each update buffer (mean 0, std 1). Off by default, as
    #: in the original A2C.
    normalize_advantage: StrictBool = boolean(False)
    #: Continuous actions only: weight of a penalty on the Gaussian's means beyond the
    #: [-3, 3] that mlagents clips actions to, ``max(|mu| - 3, 0)^2`` (rl_games' bounds
    #: loss), >= 0. Zero inside the clip. Beyond it every sampled action is clipped to the
    #: same bound and the policy gradient has nothing that brings the mean back: one large
    #: update can leave it there for good (3DBall, mla-a2c README). 0 turns it off.
    action_bound_coef: float = hyperparameter(1.0, ge=0.0)
    #: With ``network_settings.normalize``: after each update of the running observation
    #: statistics, rescale the first layer so that the actor and the critic compute the
    #: same function as before (Pop-Art's rule applied to the inputs; mla-plugin-core
    #: ``normalization``). Otherwise every change of the statistics changes the policy's
    #: gain without a gradient step, and as an agent improves its statistics narrow for
    #: the rest of the run (3DBall, mla-a2c README). false: mlagents' normalisation.
    stable_normalization: StrictBool = boolean(True)
    #: ``rmsprop`` (as in the paper) or ``adam``.
    optimizer: str = hyperparameter("rmsprop", choices=OPTIMIZERS)
    #: RMSprop's decay of the squared-gradient average, in (0, 1).
    rmsprop_alpha: float = hyperparameter(0.99, gt=0.0, lt=1.0)
    #: Epsilon added to the denominator of RMSprop / Adam, > 0. torch's RMSprop adds it
    #: outside the square root (TensorFlow's inside), so it acts slightly differently from
    #: the paper's implementation.
    optimizer_eps: float = hyperparameter(1.0e-5, gt=0.0)
    #: One network body for the policy and the value heads (true) or a separate value
    #: network (false).
    shared_critic: StrictBool = boolean(False)
    #: Activation of the hidden layers of the actor and the critic: ``swish`` (mlagents'
    #: own networks), ``tanh`` (the paper's and SB3's) or ``relu``. With one unclipped
    #: gradient step per sample, Swish networks can collapse to a near-deterministic poor
    #: policy for a long time where tanh ones learn steadily: on CartPole-v1 tanh reached a
    #: mean return of 475 after 72k-155k steps over three seeds, Swish after 202k-457k
    #: (``benchmarks/a2c_probe.py``, README).
    activation: str = hyperparameter("swish", choices=tuple(ACTIVATIONS))
    #: Continuous actions only: the Gaussian's standard deviation is an output of the
    #: network (true) or a learned state-independent parameter (false, as in the paper).
    conditional_sigma: StrictBool = boolean(False)
    #: Continuous actions only: the log standard deviation the Gaussian starts from
    #: (Stable-Baselines3's ``log_std_init``), in [-5, 2]; with ``conditional_sigma`` the
    #: bias of its output. mlagents starts at 0: sigma 1, a third of the action range (actions
    #: are clipped to [-3, 3] and divided by 3). A2C's one gradient step per sample hardly
    #: shrinks it (3DBall: sigma 1.0 to 0.9 in 500k steps), so its training episodes stay
    #: noisy; RL Zoo's continuous-control A2C settings start at -2.
    log_sigma_init: float = hyperparameter(0.0, ge=-5.0, le=2.0)
