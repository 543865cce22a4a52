"""mlagents' trainers fed by environment workers: :class:`WorkerEnvManager`.

A subclass of mlagents' ``EnvManager``; everything else of the run (``TrainerController``,
trainers, ``AgentProcessor``, stats, checkpoints) is mlagents' own. Where mlagents'
``SubprocessEnvManager`` serves its worker processes one at a time and polls their queue in
a loop (``get_nowait`` until a step arrives), this manager:

1. computes the actions of *every* worker that is waiting with one policy forward per
   behavior (:func:`mla_ray.batching.batched_actions`) and sends them their steps;
2. blocks until at least one worker has stepped (no spinning), then takes every step that
   has arrived by then.

The workers are Ray actors on the nodes of a cluster, or processes of this machine
(:mod:`mla_ray.backends`); the manager is the same for both.

A worker whose environment fails (or whose node is lost) is replaced, on any node with room,
within mlagents' own restart limits (``--max-lifetime-restarts``, ``--restarts-rate-limit-n``
over ``--restarts-rate-limit-period-s``). Only that worker's agents lose their unfinished
trajectories (they are dropped, never joined to the new environment's); the other workers
keep stepping. Past the limits the environment's own exception ends the run, and mlagents
saves the models as it does for ``mlagents-learn``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlagents.trainers.action_info import ActionInfo
from mlagents.trainers.agent_processor import AgentProcessor
from mlagents.trainers.behavior_id_utils import get_global_agent_id
from mlagents.trainers.env_manager import EnvironmentStep, EnvManager
from mlagents.trainers.settings import RunOptions, TrainerSettings
from mlagents_envs.exception import (
    UnityCommunicationException,
    UnityCommunicatorStoppedException,
    UnityEnvironmentException,
    UnityTimeOutException,
)
from mlagents_envs.logging_util import get_logger
from mlagents_envs.timers import hierarchical_timer, set_gauge, timed

from mla_ray.backends import Backend
from mla_ray.batching import batched_actions
from mla_ray.worker import EnvironmentWorker, pack_actions, unpack

logger = get_logger(__name__)

#: Seconds a worker has to close its environment before it is ended; the environment
#: executable itself has ENVIRONMENT_EXIT_SECONDS of them to exit before the worker kills it.
CLOSE_SECONDS = 10.0
ENVIRONMENT_EXIT_SECONDS = 6.0
#: Replacements of one failed worker in a row that may fail to start before the run ends.
FAILED_STARTS = 3
#: Exceptions of an environment that a restart may cure (as mlagents' SubprocessEnvManager).
RESTARTABLE = (
    UnityCommunicationException,
    UnityTimeOutException,
    UnityEnvironmentException,
    UnityCommunicatorStoppedException,
)


@dataclass
class WorkerState:
    """The manager's view of one worker."""

    worker_id: int
    actor: Any
    previous_step: EnvironmentStep
    actions: dict[str, ActionInfo] = field(default_factory=dict)  # sent with the pending step
    pending: Any = None  # the reference of the step in flight
    restarts: list[datetime.datetime] = field(default_factory=list)
    restart_count: int = 0


class WorkerEnvManager(EnvManager):
    """``n_env`` environment workers for one run, on ``backend``.

    :param run_options: the run's ``RunOptions`` (environment, engine, restart limits).
    :param run_seed: the run's seed; worker ``i``'s environment gets ``run_seed + i``.
    :param num_areas: ``--num-areas``.
    :param log_folder: the run's ``run_logs`` folder (absolute; environments log there).
    :param backend: where the workers live (:mod:`mla_ray.backends`).
    """

    def __init__(
        self,
        run_options: RunOptions,
        run_seed: int,
        num_areas: int,
        log_folder: str,
        n_env: int = 1,
        backend: Backend | None = None,
    ) -> None:
        super().__init__()
        self.run_options = run_options
        self.env_parameters: dict[str, Any] | None = None
        if backend is None:
            from mla_ray.backends import ProcessBackend

            backend = ProcessBackend()
        self.backend = backend
        self._worker_args = (run_options, run_seed, num_areas, log_folder)
        self.workers = []
        try:
            for i in range(n_env):
                self.workers.append(WorkerState(i, self._start(i), EnvironmentStep.empty(i)))
            # an environment that cannot start at all fails the run here, before training
            nodes = list(self.backend.get(self._wait_until_placed()))
        except Exception as error:  # e.g. an --env path that does not exist on a node
            self.close()
            raise SystemExit(
                f"mla-learn: an environment worker could not start: {unwrap(error)}"
            ) from None
        except BaseException:  # Ctrl-C while they start: mlagents' run has no manager to
            self.close()  # close yet, and a worker left waiting would hang the exit
            raise
        logger.info(
            f"{n_env} environment workers on {len(set(nodes))} node(s): "
            + ", ".join(f"worker {i} on {node}" for i, node in enumerate(nodes))
        )

    def _wait_until_placed(self, report_every: float = 30.0) -> list[Any]:
        """Wait for every worker to start, saying which wait for room in the cluster (the
        CPUs of a cluster may be held by other runs for a while); the workers' ``node()``
        calls, in worker order."""
        pending = [w.actor.node.remote() for w in self.workers]
        while True:
            _, waiting = self.backend.wait(pending, len(pending), timeout=report_every)
            if not waiting:
                return pending
            logger.warning(
                f"{len(waiting)} of {len(pending)} environment workers have not started yet "
                f"(they may wait for room in the Ray cluster: {self.backend.free_cpus():g} "
                "CPUs free now)"
            )

    def _start(self, worker_id: int) -> Any:
        return self.backend.start(EnvironmentWorker, worker_id, *self._worker_args)

    # --- stepping -------------------------------------------------------------------------

    def _step(self) -> list[EnvironmentStep]:
        self._queue_steps()
        pending = {w.pending: w for w in self.workers if w.pending is not None}
        self.backend.wait(list(pending), num_returns=1)  # blocks: no polling loop
        ready, _ = self.backend.wait(list(pending), num_returns=len(pending), timeout=0)
        step_infos, timers = [], []
        for ref in ready:
            worker = pending[ref]
            worker.pending = None
            try:
                data = self.backend.get(ref)
            except Exception as error:  # the environment or its node failed
                step_infos.append(self._restart(worker, error))
                continue
            set_gauge("WorkerEnvManager.step_bytes", len(data))  # timers.json: message sizes
            result = unpack(data)
            step = EnvironmentStep(
                result.all_step_result, worker.worker_id, worker.actions,
                result.environment_stats,
            )  # fmt: skip
            worker.previous_step = step
            step_infos.append(step)
            if result.timer_root is not None:
                timers.append(result.timer_root)
        if timers:  # the workers' own timers, under "workers" as mlagents-learn writes them
            with hierarchical_timer("workers") as node:
                for root in timers:
                    node.merge(root, root_name="worker_root", is_parallel=True)
        return step_infos

    @timed
    def _queue_steps(self) -> None:
        """Actions for every waiting worker (one forward per behavior), then their steps."""
        waiting = [w for w in self.workers if w.pending is None]
        if not waiting:
            return
        actions: dict[int, dict[str, ActionInfo]] = {w.worker_id: {} for w in waiting}
        for behavior, policy in self.policies.items():
            decisions = {
                w.worker_id: w.previous_step.current_all_step_result[behavior][0]
                for w in waiting
                if behavior in w.previous_step.current_all_step_result
            }
            for worker_id, info in batched_actions(policy, decisions).items():
                actions[worker_id][behavior] = info
        for worker in waiting:
            worker.actions = actions[worker.worker_id]
            to_send = {
                behavior: info.env_action
                for behavior, info in worker.actions.items()
                if len(info.agent_ids) > 0
            }
            data = pack_actions(to_send)
            set_gauge("WorkerEnvManager.action_bytes", len(data))
            worker.pending = worker.actor.step.remote(data)

    # --- faults ---------------------------------------------------------------------------

    def _restart(self, worker: WorkerState, error: BaseException) -> EnvironmentStep:
        """Replace ``worker`` after ``error``; its agents' unfinished trajectories are dropped.
        Returns the new environment's first step (no actions: every agent starts anew).

        A replacement that fails to start is replaced in turn, each attempt counted against
        mlagents' restart limits (as its own restarts are), which end the run when spent;
        ``FAILED_STARTS`` replacements in a row that fail to start end it too, whatever the
        limits (unlimited restarts would otherwise start a broken executable forever)."""
        cause, failed_starts = unwrap(error), 0
        while True:
            if not isinstance(cause, RESTARTABLE + self.backend.lost):
                raise cause
            if not self._may_restart(worker):
                logger.error(f"Worker {worker.worker_id} exceeded the allowed number of restarts.")
                raise self._ending(worker, cause)
            if failed_starts == FAILED_STARTS:
                logger.error(f"Worker {worker.worker_id}: {failed_starts} replacements in a row "
                             "failed to start.")  # fmt: skip
                raise self._ending(worker, cause)
            logger.warning(f"Restarting worker[{worker.worker_id}] after '{cause}'")
            worker.restarts.append(datetime.datetime.now())
            worker.restart_count += 1
            self._stop(worker)
            drop_trajectories(self.agent_managers.values(), worker.worker_id)
            worker.actor = self._start(worker.worker_id)
            try:
                self.backend.get(worker.actor.node.remote())  # what kept it from starting
                worker.actor.set_env_parameters.remote(self.env_parameters)
                result = unpack(self.backend.get(worker.actor.reset.remote()))
            except Exception as again:  # noqa: BLE001 - sorted by the loop's first test
                cause, failed_starts = unwrap(again), failed_starts + 1
                continue
            worker.actions = {}
            worker.previous_step = EnvironmentStep(result.all_step_result, worker.worker_id, {}, {})
            return worker.previous_step

    @staticmethod
    def _ending(worker: WorkerState, cause: BaseException) -> BaseException:
        """What ends the run for ``worker``: the environment's own exception, or a lost
        worker as one (mlagents then saves the models, as for a failed environment)."""
        if isinstance(cause, RESTARTABLE):
            return cause
        return UnityCommunicationException(f"environment worker {worker.worker_id} lost: {cause}")

    def _may_restart(self, worker: WorkerState) -> bool:
        """mlagents' limits: restarts in the worker's lifetime and within the rate window."""
        env = self.run_options.env_settings
        window = datetime.timedelta(seconds=env.restarts_rate_limit_period_s)
        now = datetime.datetime.now()
        worker.restarts = [t for t in worker.restarts if t > now - window]
        lifetime_ok = env.max_lifetime_restarts == -1 or (
            worker.restart_count < env.max_lifetime_restarts
        )
        rate_ok = env.restarts_rate_limit_n == -1 or (
            len(worker.restarts) < env.restarts_rate_limit_n
        )
        return lifetime_ok and rate_ok

    # --- the rest of mlagents' EnvManager -------------------------------------------------

    def _reset_env(self, config: dict | None = None) -> list[EnvironmentStep]:
        self._wait_all()
        self.set_env_parameters(config)
        refs = [w.actor.reset.remote() for w in self.workers]
        for worker, result in zip(self.workers, map(unpack, self.backend.get(refs)), strict=True):
            worker.actions = {}
            worker.previous_step = EnvironmentStep(result.all_step_result, worker.worker_id, {}, {})
        return [w.previous_step for w in self.workers]

    def _wait_all(self) -> None:
        """Let every step in flight finish (its result is not used: a reset follows)."""
        for worker in self.workers:
            if worker.pending is not None:
                try:
                    self.backend.get(worker.pending)
                except Exception as error:
                    self._restart(worker, error)
                worker.pending = None

    def set_env_parameters(self, config: dict | None = None) -> None:
        self.env_parameters = config
        self.backend.get([w.actor.set_env_parameters.remote(config) for w in self.workers])

    def on_training_started(self, behavior_name: str, trainer_settings: TrainerSettings) -> None:
        for worker in self.workers:
            worker.actor.training_started.remote(behavior_name, trainer_settings)

    @property
    def training_behaviors(self) -> dict[str, Any]:
        specs: dict[str, Any] = {}
        for found in self.backend.get([w.actor.behavior_specs.remote() for w in self.workers]):
            specs.update(found)
        return specs

    def close(self) -> None:
        # steps still in flight are collected, so that a failed one is not reported later
        # as an unhandled error; then every environment is closed
        closing = [w.pending for w in self.workers if w.pending is not None]
        closing += [w.actor.close.remote(ENVIRONMENT_EXIT_SECONDS) for w in self.workers]
        for ref in closing:
            try:
                self.backend.get(ref, timeout=CLOSE_SECONDS)
            except Exception as error:  # a lost node, or Ray already stopping (Ctrl-C)
                logger.debug(f"closing environment workers: {error}")
        for worker in self.workers:
            try:
                self.backend.kill(worker.actor)
            except Exception:  # noqa: S110 - already gone
                pass

    def _stop(self, worker: WorkerState) -> None:
        """End a failed worker: its environment closed if it answers within
        ``CLOSE_SECONDS`` (a hung executable killed after ``ENVIRONMENT_EXIT_SECONDS``, where
        mlagents would wait ``--timeout-wait``), then the worker itself."""
        try:
            self.backend.get(
                worker.actor.close.remote(ENVIRONMENT_EXIT_SECONDS), timeout=CLOSE_SECONDS
            )
        except Exception as error:  # noqa: BLE001 - gone already, as expected here
            logger.debug(f"closing failed worker {worker.worker_id}: {error}")
        try:
            self.backend.kill(worker.actor)
        except Exception:  # noqa: S110 - already gone
            pass


def drop_trajectories(processors: Iterable[AgentProcessor], worker_id: int) -> None:
    """Forget everything ``processors`` hold of the agents of worker ``worker_id``: their
    unfinished trajectories, last steps and actions, memories and previous actions (what
    mlagents' ``end_episode`` forgets for every agent), and their places in their groups, so
    that no trajectory, and no teammate's group observation, crosses a restart.

    mlagents has no public call for one worker's agents: this uses ``AgentProcessor``'s own
    per-agent clean-up (``_clean_agent_data``, ``_clear_group_status_and_obs``), which every
    supported release has (tests run it on each)."""
    prefix = get_global_agent_id(worker_id, 0)[:-1]  # "agent_<worker>-"
    for processor in processors:
        known = set(processor._experience_buffers) | set(processor._last_step_result)
        known |= set(processor._last_take_action_outputs)
        for group in (*processor._group_status.values(), *processor._current_group_obs.values()):
            known |= set(group)
        for global_id in sorted(g for g in known if g.startswith(prefix)):
            processor._clean_agent_data(global_id)
            processor._clear_group_status_and_obs(global_id)


def unwrap(error: BaseException) -> BaseException:
    """The environment's own exception inside a Ray task error (else ``error``)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


def require_workers(n_env: int, cpus_per_worker: float, resources: dict[str, float]) -> None:
    """Refuse, in one line, a cluster without room for every worker."""
    needed, available = n_env * cpus_per_worker, float(resources.get("CPU", 0.0))
    if needed > available:
        raise SystemExit(
            f"mla-learn: --num-envs {n_env} workers x {cpus_per_worker:g} CPU need "
            f"{needed:g} CPUs; the Ray cluster has {available:g}"
        )
