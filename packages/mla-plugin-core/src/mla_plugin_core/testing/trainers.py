"""Build a trainer in a unit test the way ``mlagents-learn`` does."""

from __future__ import annotations

from typing import Any

from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents_envs.base_env import BehaviorSpec


def add_policy_like_mlagents(
    trainer: Any, behavior_spec: BehaviorSpec, name_behavior_id: str | None = None
) -> Any:
    """Create the trainer's policy and add it as mlagents' ``TrainerController`` does.

    The controller's ``start_learning`` saves every trainer in a ``finally``: if
    ``add_policy`` raises (a refused ``--resume``, a bad configuration), ``save_model``
    still runs before the error leaves. This does the same, so a test sees what that save
    would write.

    :param name_behavior_id: defaults to ``<brain name>?team=0``.
    :return: ``trainer``, its policy added.
    """
    behavior_id = BehaviorIdentifiers.from_name_behavior_id(
        name_behavior_id or f"{trainer.brain_name}?team=0"
    )
    policy = trainer.create_policy(behavior_id, behavior_spec)
    try:
        trainer.add_policy(behavior_id, policy)
    except BaseException:
        trainer.save_model()
        raise
    return trainer
