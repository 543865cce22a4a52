"""One environment worker: a Ray actor (or a process of this machine) that runs one
environment executable on its node.

It does what a process of mlagents' ``SubprocessEnvManager`` does (the same side channels:
environment parameters, engine configuration, stats, and training analytics on worker 0),
but it is called through Ray, so it may live on any node of the cluster:

- the executable is started on the worker's node, from a path that must exist there (a
  shared file system, or the same image on every node), listening on a port reserved on that
  node (:class:`mla_ray.ports.PortReservation`: free, and not handed to another run there);
- ``step`` takes only the actions to send (not mlagents' whole ``ActionInfo``) and returns
  the new decision and terminal steps, this process's timers and the environment's stats,
  pickled into one ``bytes`` (:func:`unpack`): unpickled in the trainer, the arrays are its
  own and writable, as through mlagents' pipes (Ray's zero-copy arrays are read-only), and
  the size of a step on the wire is known (``len``).

The environment itself is made by mlagents' own ``create_environment_factory`` (``learn.py``),
so seeds (``run seed + worker id``), ``--num-areas``, ``--env-args``, graphics options, the
timeout and the log file are those of ``mlagents-learn``.
"""

from __future__ import annotations

import inspect
import os
import pickle
from typing import Any, NamedTuple

from mla_ray.ports import PortReservation

#: Seconds an environment executable has to exit when its worker closes it without being
#: told how long (the worker ended, or its trainer gone; the trainer's own close says 6 s).
KILL_ENVIRONMENT_AFTER = 3.0


class StepResult(NamedTuple):
    """What a worker returns for a reset or a step."""

    all_step_result: dict[str, Any]  # behavior -> (DecisionSteps, TerminalSteps)
    timer_root: Any  # mlagents_envs.timers.TimerNode of the worker's process, or None
    environment_stats: dict[str, Any]


def pack(result: StepResult) -> bytes:
    return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> StepResult:
    result: StepResult = pickle.loads(data)
    return result


def pack_actions(actions: dict[str, Any]) -> bytes:
    """Behavior -> ``ActionTuple`` for one step, as one message (see :func:`pack`)."""
    return pickle.dumps(actions, protocol=pickle.HIGHEST_PROTOCOL)


class EnvironmentWorker:
    """The environment of worker ``worker_id`` of a run with ``run_options``.

    :param run_seed: the run's seed (the environment gets ``run_seed + worker_id``).
    :param log_folder: where the environment writes its log (``run_logs``; created here).
    """

    def __init__(
        self, worker_id: int, run_options: Any, run_seed: int, num_areas: int, log_folder: str
    ) -> None:
        from mlagents_envs.side_channel.engine_configuration_channel import (
            EngineConfig,
            EngineConfigurationChannel,
        )
        from mlagents_envs.side_channel.environment_parameters_channel import (
            EnvironmentParametersChannel,
        )
        from mlagents_envs.side_channel.stats_side_channel import StatsSideChannel

        self.worker_id = worker_id
        engine = run_options.engine_settings
        self.parameters = EnvironmentParametersChannel()
        self.engine = EngineConfigurationChannel()
        self.engine.set_configuration(
            EngineConfig(
                width=engine.width,
                height=engine.height,
                quality_level=engine.quality_level,
                time_scale=engine.time_scale,
                target_frame_rate=engine.target_frame_rate,
                capture_frame_rate=engine.capture_frame_rate,
            )
        )
        self.stats = StatsSideChannel()
        self.analytics = None
        channels: list[Any] = [self.parameters, self.engine, self.stats]
        if worker_id == 0:
            from mlagents.trainers.training_analytics_side_channel import (
                TrainingAnalyticsSideChannel,
            )

            self.analytics = TrainingAnalyticsSideChannel()
            channels.append(self.analytics)
        self.env: Any = None
        # mlagents listens on base_port + worker_id: reserve that port on this node
        self.port = PortReservation(1)
        # kept for node(), which the trainer calls first: a Ray actor whose constructor
        # fails keeps only the message of the error, not the error
        self.startup_error: Exception | None = None
        try:
            self._open(run_options, run_seed, num_areas, log_folder, channels)
        except Exception as error:
            self.startup_error = error

    def _open(
        self, run_options: Any, run_seed: int, num_areas: int, log_folder: str,
        channels: list[Any],
    ) -> None:  # fmt: skip
        from mlagents.trainers.learn import create_environment_factory
        from mlagents_envs import logging_util

        engine = run_options.engine_settings
        env = run_options.env_settings
        worker_id = self.worker_id
        os.makedirs(log_folder, exist_ok=True)
        arguments = {
            "env_path": env.env_path,
            "no_graphics": engine.no_graphics,
            "no_graphics_monitor": getattr(engine, "no_graphics_monitor", False),
            "seed": run_seed,
            "num_areas": num_areas,
            "timeout_wait": getattr(env, "timeout_wait", None),  # mlagents >= 1.0
            "start_port": self.port.base - worker_id,
            "env_args": env.env_args,
            "log_folder": log_folder,
        }
        accepted = inspect.signature(create_environment_factory).parameters
        factory = create_environment_factory(
            **{k: v for k, v in arguments.items() if k in accepted}
        )
        logging_util.set_log_level(logging_util.INFO)
        self.env = factory(worker_id, channels)
        capabilities = getattr(self.env, "academy_capabilities", None)
        if self.analytics is not None:
            if capabilities is not None and capabilities.trainingAnalytics:
                self.analytics.environment_initialized(run_options)
            else:  # an environment that does not know the channel would log unknown ids
                self.analytics = None

    def node(self) -> str:
        """The node this worker runs on: its address, then its Ray node id (several nodes
        may share an address). Raises the error that kept the environment from starting."""
        import ray

        if self.startup_error is not None:
            raise self.startup_error
        if not ray.is_initialized():  # a process of mla_ray.backends.ProcessBackend
            from mla_ray.backends import this_machine

            return this_machine()
        node_id = ray.get_runtime_context().get_node_id()
        return f"{ray.util.get_node_ip_address()} node {node_id[:12]}"

    def behavior_specs(self) -> dict[str, Any]:
        return dict(self.env.behavior_specs)

    def set_env_parameters(self, config: dict[str, Any] | None) -> None:
        """Send environment parameters (curriculum, randomization) as mlagents does."""
        from mlagents.trainers.settings import ParameterRandomizationSettings

        for key, value in (config or {}).items():
            if isinstance(value, ParameterRandomizationSettings):
                value.apply(key, self.parameters)

    def training_started(self, behavior_name: str, trainer_settings: Any) -> None:
        if self.analytics is not None:
            self.analytics.training_started(behavior_name, trainer_settings)

    def reset(self) -> bytes:
        self.env.reset()
        return pack(StepResult(self._all_steps(), None, {}))

    def step(self, data: bytes) -> bytes:
        """Set the actions in ``data`` (:func:`pack_actions`: behavior -> ``ActionTuple`` for
        the agents that asked, in their order), step, and return what the environment sent
        back (:func:`pack`)."""
        from mlagents_envs.timers import get_timer_root, reset_timers

        actions: dict[str, Any] = pickle.loads(data)
        for behavior, action in actions.items():
            self.env.set_actions(behavior, action)
        self.env.step()
        result = StepResult(self._all_steps(), get_timer_root(), self.stats.get_and_reset_stats())
        data = pack(result)
        reset_timers()
        return data

    def _all_steps(self) -> dict[str, Any]:
        return {name: self.env.get_steps(name) for name in self.env.behavior_specs}

    def close(self, seconds: float = KILL_ENVIRONMENT_AFTER) -> None:
        """Close the environment: its executable has ``seconds`` to exit, then is killed.

        mlagents waits ``--timeout-wait`` (60 s by default); the trainer waits less for a
        worker before it ends it, and an executable runs in a session of its own, so it
        would outlive its worker: the executable is ended here, within the trainer's wait."""
        process = getattr(self.env, "_process", None)  # UnityEnvironment's executable
        try:
            if self.env is not None:
                close_within = getattr(self.env, "_close", None)
                if callable(close_within) and getattr(self.env, "_loaded", False):
                    close_within(seconds)
                else:
                    self.env.close()
        finally:  # also when ended (SIGTERM) while waiting for the executable
            if process is not None and process.poll() is None:
                process.kill()
            self.port.release()
