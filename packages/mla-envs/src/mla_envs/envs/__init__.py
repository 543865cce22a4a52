"""The environments, by name.

``make("Basic")``, ``make("3DBall")``, ``make("Memory")`` and ``make("gym:CartPole-v1")`` (any registered
Gymnasium id after ``gym:``) build a :class:`~mla_envs.envs.base.VectorEnv`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mla_envs.envs.ball3d import Ball3DEnv
from mla_envs.envs.base import Actions, AgentBatch, BehaviorSpec, VectorEnv
from mla_envs.envs.basic import BasicEnv
from mla_envs.envs.memory import MemoryEnv
from mla_envs.parameters import EnvironmentParameters

#: Prefix that selects the Gymnasium bridge: ``gym:<registered id>``.
GYM_PREFIX = "gym:"

#: Built-in environments: name -> class. Names are also the behavior names.
BUILTIN: dict[str, Callable[..., VectorEnv]] = {
    "Basic": BasicEnv,
    "3DBall": Ball3DEnv,
    "Memory": MemoryEnv,
}


class UnsupportedSpaceError(ValueError):
    """A Gymnasium space the bridge cannot express as ML-Agents observations/actions."""


class UnknownEnvironmentError(ValueError):
    """No environment of that name; the message lists the available ones."""


class MissingDependencyError(ValueError):
    """A registered Gymnasium id whose extra is not installed; the message says which."""


class GymnasiumKwargError(ValueError):
    """A keyword the Gymnasium environment's constructor refuses; the message names it."""


def available() -> list[str]:
    """Names :func:`make` accepts (Gymnasium ids abbreviated as ``gym:<id>``)."""
    return [*BUILTIN, f"{GYM_PREFIX}<id>"]


def gymnasium_ids() -> list[str]:
    """Every id registered with Gymnasium in this process."""
    import gymnasium

    return sorted(gymnasium.registry)


def make(
    name: str,
    num_agents: int | None = None,
    parameters: EnvironmentParameters | None = None,
    **kwargs: Any,
) -> VectorEnv:
    """Build the environment called ``name``.

    :param name: a built-in name (case-insensitive) or ``gym:<Gymnasium id>``.
    :param num_agents: agents (copies); None = the environment's default.
    :param parameters: environment parameters shared between environments.
    :param kwargs: passed to ``gymnasium.make`` (Gymnasium environments only).
    :raises UnknownEnvironmentError: no such environment.
    :raises MissingDependencyError: a Gymnasium id whose extra is not installed.
    :raises GymnasiumKwargError: ``kwargs`` the Gymnasium environment refuses.
    """
    options: dict[str, Any] = {"parameters": parameters}
    if num_agents is not None:
        options["num_agents"] = num_agents
    if name.startswith(GYM_PREFIX):
        # Imported here: Gymnasium takes a while to import and Basic/3DBall need none.
        import gymnasium

        from mla_envs.envs.gym_bridge import GymnasiumEnv

        env_id = name[len(GYM_PREFIX) :]
        try:
            return GymnasiumEnv(env_id, **options, **kwargs)
        except gymnasium.error.DependencyNotInstalled as error:
            raise MissingDependencyError(
                f"Gymnasium environment {env_id!r} is registered but needs a dependency "
                f"that is not installed: {error}"
            ) from error
        except TypeError as error:
            if not kwargs:
                raise
            # Gymnasium re-raises the constructor's TypeError with the kwargs appended.
            reason = str(error).split(" was raised from the environment creator")[0]
            raise GymnasiumKwargError(
                f"{env_id} refuses {', '.join(f'{k}={v!r}' for k, v in kwargs.items())}: {reason}"
            ) from error
        except gymnasium.error.Error as error:
            raise UnknownEnvironmentError(
                f"unknown Gymnasium environment {env_id!r} ({error}); registered ids: "
                + ", ".join(gymnasium_ids())
            ) from error
    builtin = {key.lower(): key for key in BUILTIN}
    if name.lower() not in builtin:
        raise UnknownEnvironmentError(
            f"unknown environment {name!r}; available: {', '.join(available())} "
            "(`mla-env --list` shows every Gymnasium id)"
        )
    if kwargs:
        raise TypeError(f"{name} takes no Gymnasium options, got {sorted(kwargs)}")
    return BUILTIN[builtin[name.lower()]](**options)


__all__ = [
    "Actions",
    "AgentBatch",
    "Ball3DEnv",
    "BasicEnv",
    "MemoryEnv",
    "BehaviorSpec",
    "GymnasiumKwargError",
    "MissingDependencyError",
    "UnknownEnvironmentError",
    "UnsupportedSpaceError",
    "VectorEnv",
    "available",
    "make",
]
