"""Hyperparameters of ``trainer_type: dqn`` (the ``hyperparameters:`` block of the YAML).

Every value is validated when the YAML is read; a bad one stops ``mlagents-learn`` with
one line naming the behavior and the key, e.g.::

    mlagents-learn: configuration error: Basic: hyperparameters.exploration_final_eps = 1.5
    is not allowed: must be a number >= 0.0 and <= 1.0

The discount factor is not here: as for every mlagents trainer it is set per reward
signal (``reward_signals.<name>.gamma``), and each signal has its own Q head.

No ``from __future__ import annotations`` in this module: cattrs needs real types.
"""

from typing import Optional

import attr
import cattr
from mlagents.trainers.settings import strict_to_cls

from mla_plugin_core.settings import (
    HyperparameterError,
    OffPolicySettings,
    StrictBool,
    boolean,
    hyperparameter,
)
from mla_plugin_core.trainers.schedules import Schedule


@attr.s(auto_attribs=True)
class DemonstrationSettings:
    """Learning from demonstrations: DQfD (Hester et al. 2018, https://arxiv.org/abs/1704.03732).

    The transitions of ML-Agents ``.demo`` files go to a separate expert replay buffer that
    is never overwritten. Each gradient step adds ``batch_size`` expert transitions to the
    agent's minibatch; they get the same n-step TD loss and, weighted by
    ``margin_weight``, the large-margin supervised loss

        ``J_E = max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E)``, ``l(a_E, a) = large_margin``
        for ``a != a_E`` and ``0`` for ``a = a_E``,

    which pushes the expert's action ``large_margin`` above every other action.
    """

    #: A ``.demo`` file or a folder of them (as for mlagents' GAIL and behavioral
    #: cloning); each file gives its own transitions. Relative paths are relative to the
    #: working directory.
    path: str
    #: Expert transitions added to each gradient step's minibatch, >= 1. DQfD's best runs
    #: used about a quarter of a minibatch of demonstrations.
    batch_size: int = hyperparameter(32, ge=1)
    #: The margin ``l`` (in units of return) by which the expert's action must beat every
    #: other action, >= 0. DQfD: 0.8.
    large_margin: float = hyperparameter(0.8, ge=0.0)
    #: Weight ``lambda_2`` of ``J_E`` in the loss, >= 0 (0 keeps the demonstrations as
    #: plain replay data). DQfD: 1.0.
    margin_weight: float = hyperparameter(1.0, ge=0.0)
    #: Gradient steps on demonstrations alone before the first environment step (DQfD's
    #: pre-training phase), >= 0. With ``network_settings.normalize`` the normaliser first
    #: sees the demonstrations' observations. Both skipped on ``--resume``.
    pretrain_updates: int = hyperparameter(0, ge=0)
    #: Stream demonstrations while training: ``path`` is a folder watched for ``.demo``
    #: files that appear or grow (Unity's ``DemonstrationRecorder`` writing as people play,
    #: ``mla-envs record``); each episode joins the expert replay once its last step is
    #: written. The folder may be empty or not exist yet at start. false: the files
    #: present at start, read once.
    watch: StrictBool = boolean(False)
    #: With ``watch``: seconds between two looks at the folder, > 0 (a thread of its own
    #: reads the files; the trainer only takes the episodes it has read).
    watch_interval: float = hyperparameter(2.0, gt=0.0)
    #: With ``watch``: expert transitions kept, >= 1; the oldest make room for new ones.
    buffer_size: int = hyperparameter(100000, ge=1)


# Strict like mlagents' own nested settings: an unknown key is an error, not ignored.
cattr.register_structure_hook(DemonstrationSettings, strict_to_cls)


@attr.s(auto_attribs=True)
class DQNSettings(OffPolicySettings):
    """Hyperparameters of DQN (Mnih et al. 2015, https://doi.org/10.1038/nature14236) with
    double Q-learning, dueling heads, n-step returns, prioritized replay and demonstrations.

    Inherited from :class:`~mla_plugin_core.settings.OffPolicySettings` (same meanings):
    ``batch_size``, ``buffer_size``, ``buffer_init_steps``, ``steps_per_update``,
    ``save_replay_buffer``, ``reward_signal_steps_per_update``, ``n_step``,
    ``prioritized_replay`` (+ ``_alpha``, ``_beta``, ``_beta_steps``), ``learning_rate``
    and ``learning_rate_schedule``. Each field is documented by the ``#:`` comment above it.

    Steps are environment steps of all agents of the behavior, as mlagents counts them.
    """

    #: Adam step size, > 0. 2.5e-4 .. 1e-3 work for small vector tasks.
    learning_rate: float = hyperparameter(5.0e-4, gt=0.0)
    #: Transitions per gradient step, >= 1.
    batch_size: int = hyperparameter(64, ge=1)
    #: Replay capacity in transitions, >= batch_size.
    buffer_size: int = hyperparameter(100000, ge=1)
    #: Environment steps collected (with exploration) before the first gradient step, >= 0.
    buffer_init_steps: int = hyperparameter(1000, ge=0)
    #: Environment steps per gradient step, > 0; with many agents raise it (e.g. 8 agents:
    #: 2..8), as one environment step then adds several transitions.
    steps_per_update: float = hyperparameter(4.0, gt=0.0)
    #: Polyak factor of the soft target update after every gradient step,
    #: ``target = tau * online + (1 - tau) * target``, in (0, 1]. Ignored when
    #: ``target_update_interval > 0``.
    tau: float = hyperparameter(0.01, gt=0.0, le=1.0)
    #: Gradient steps between hard copies of the online network into the target network,
    #: >= 0; ``0`` uses the soft update with ``tau`` instead (Mnih et al. 2015 used 10,000
    #: hard-update steps on Atari). Not SB3's ``target_update_interval``, which counts
    #: environment steps and is checked only between training phases: RL Zoo's CartPole
    #: value 10 (with ``gradient_steps: 128``) means one copy per 128 gradient steps.
    target_update_interval: int = hyperparameter(0, ge=0)
    #: How epsilon moves from ``exploration_initial_eps`` to ``exploration_final_eps`` over
    #: ``exploration_steps``: ``linear``, ``exponential`` (geometric, needs a final value
    #: > 0) or ``constant`` (stays at the initial value).
    exploration_schedule: Schedule = hyperparameter(Schedule.LINEAR, choices=tuple(Schedule))
    #: Probability of a uniformly random (allowed) action at step 0, in [0, 1].
    exploration_initial_eps: float = hyperparameter(1.0, ge=0.0, le=1.0)
    #: Probability of a random action after ``exploration_steps``, in [0, 1].
    exploration_final_eps: float = hyperparameter(0.05, ge=0.0, le=1.0)
    #: Environment steps over which epsilon decays, >= 1.
    exploration_steps: int = hyperparameter(10000, ge=1)
    #: Double DQN targets (van Hasselt et al. 2016, https://arxiv.org/abs/1509.06461): the
    #: online network picks the next action, the target network evaluates it. Off: the
    #: target network's own max, which overestimates.
    double_dqn: StrictBool = boolean(True)
    #: Dueling heads (Wang et al. 2016, https://arxiv.org/abs/1511.06581):
    #: ``Q = V + A - mean_a A``, one state value shared by all action branches.
    dueling: StrictBool = boolean(False)
    #: Gradients are clipped to this global L2 norm, > 0 (SB3's DQN: 10).
    max_grad_norm: float = hyperparameter(10.0, gt=0.0)
    #: With ``network_settings.memory`` (R2D2): the first steps of each replayed sequence
    #: of ``memory.sequence_length`` that only warm up the recurrent state from the one
    #: stored, without a loss, >= 0 and < sequence_length (R2D2: 40 of 80).
    burn_in: int = hyperparameter(0, ge=0)
    #: With memory: steps two consecutive replayed sequences of an episode share, >= 0 and
    #: < sequence_length; ``-1``: half of it (R2D2: 40 of 80).
    sequence_overlap: int = hyperparameter(-1, ge=-1)
    #: With memory and prioritized replay: a sequence's priority is
    #: ``eta * max |delta| + (1 - eta) * mean |delta|`` over its steps, in [0, 1] (R2D2: 0.9).
    priority_eta: float = hyperparameter(0.9, ge=0.0, le=1.0)
    #: With memory: R2D2's value rescaling ``h(x) = sign(x)(sqrt(|x| + 1) - 1) + 1e-3 x``: the
    #: network learns ``h(Q)``, targets are ``h(r + gamma^n h^-1(Q'))``; for large returns.
    value_rescaling: StrictBool = boolean(False)
    #: Learning from ``.demo`` files (DQfD), keys of :class:`DemonstrationSettings`;
    #: none by default.
    demonstrations: Optional[DemonstrationSettings] = None  # noqa: UP045 (old cattrs)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.exploration_schedule is Schedule.EXPONENTIAL and not (
            self.exploration_initial_eps > 0 and self.exploration_final_eps > 0
        ):
            raise HyperparameterError(
                "exploration_final_eps",
                self.exploration_final_eps,
                "must be > 0 (and exploration_initial_eps > 0) for an exponential schedule",
            )
