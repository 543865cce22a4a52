"""mla-learn restarts a failed worker within mlagents' own limits: ``_may_restart`` answers
as mlagents' ``SubprocessEnvManager`` does for the same settings and restart history."""

from __future__ import annotations

import datetime
import itertools
from types import SimpleNamespace

import pytest
from mla_ray.env_manager import FAILED_STARTS, WorkerEnvManager, WorkerState
from mlagents.trainers.settings import RunOptions
from mlagents.trainers.subprocess_env_manager import SubprocessEnvManager
from mlagents_envs.exception import UnityCommunicationException, UnityEnvironmentException

if not hasattr(SubprocessEnvManager, "_worker_has_restart_quota"):
    pytest.skip("this mlagents release has no restart limits", allow_module_level=True)

NOW = datetime.datetime.now()
PERIOD_S = 60
#: Restart histories: (lifetime restarts, seconds ago of each restart).
HISTORIES = [(0, []), (1, [5]), (2, [5, 500]), (3, [1, 2, 3]), (5, [700, 800]), (2, [1, 2])]


def run_options(lifetime: int, rate_n: int) -> RunOptions:
    options = RunOptions()
    options.env_settings.max_lifetime_restarts = lifetime
    options.env_settings.restarts_rate_limit_n = rate_n
    options.env_settings.restarts_rate_limit_period_s = PERIOD_S
    return options


@pytest.mark.parametrize(
    ("lifetime", "rate_n", "history"),
    list(itertools.product([-1, 0, 2, 4], [-1, 1, 2, 3], HISTORIES)),
)
def test_may_restart_agrees_with_mlagents(lifetime, rate_n, history):
    count, ages = history
    stamps = [NOW - datetime.timedelta(seconds=age) for age in ages]
    options = run_options(lifetime, rate_n)
    theirs = SimpleNamespace(
        run_options=options, restart_counts=[count], recent_restart_timestamps=[list(stamps)]
    )
    theirs._drop_old_restart_timestamps = lambda worker_id: (
        SubprocessEnvManager._drop_old_restart_timestamps(theirs, worker_id)
    )
    expected = SubprocessEnvManager._worker_has_restart_quota(theirs, 0)
    ours = SimpleNamespace(run_options=options)
    worker = WorkerState(0, actor=None, previous_step=None, restarts=list(stamps),
                         restart_count=count)  # fmt: skip
    assert WorkerEnvManager._may_restart(ours, worker) == expected


class _Interrupted:
    """A backend whose workers start, and whose wait is interrupted (Ctrl-C at start-up)."""

    lost = ()

    def __init__(self):
        self.started, self.killed = [], []

    def start(self, worker_class, *args):
        worker = SimpleNamespace(
            node=SimpleNamespace(remote=lambda: "node"),
            close=SimpleNamespace(remote=lambda seconds: "closed"),
        )
        self.started.append(worker)
        return worker

    def wait(self, refs, num_returns=1, timeout=None):
        raise KeyboardInterrupt

    def get(self, refs, timeout=None):
        return refs

    def kill(self, worker):
        self.killed.append(worker)

    def free_cpus(self):
        return 2.0


def test_ctrl_c_while_workers_start_ends_them(tmp_path):
    # the bug this catches: mlagents builds the manager before its try/finally, so workers
    # started before the interruption were never closed and the exit waited on them
    backend = _Interrupted()
    with pytest.raises(KeyboardInterrupt):
        WorkerEnvManager(RunOptions(), 0, 1, str(tmp_path), n_env=3, backend=backend)
    assert len(backend.started) == 3 and backend.killed == backend.started


class _NeverRestarts(_Interrupted):
    """A backend whose first workers start and whose replacements never do (a build that
    crashed and now fails at start-up, every time)."""

    def __init__(self, n_env: int):
        super().__init__()
        self.n_env = n_env

    def start(self, worker_class, *args):
        worker = super().start(worker_class, *args)
        number = len(self.started)
        worker.node = SimpleNamespace(remote=lambda: ("node", number))
        worker.set_env_parameters = SimpleNamespace(remote=lambda config: None)
        worker.reset = SimpleNamespace(remote=lambda: ("reset", number))
        return worker

    def wait(self, refs, num_returns=1, timeout=None):
        return list(refs), []

    def get(self, refs, timeout=None):
        if isinstance(refs, tuple) and refs[0] == "node" and refs[1] > self.n_env:
            raise UnityEnvironmentException(f"replacement {refs[1]} cannot start")
        return refs


@pytest.mark.parametrize(
    ("lifetime", "rate_n", "replacements"),
    [(10, 2, 2), (2, -1, 2), (-1, -1, FAILED_STARTS)],  # the rate, lifetime, in-a-row limits
)
def test_replacements_that_never_start_end_the_run(tmp_path, lifetime, rate_n, replacements):
    # the bugs this catches: a replacement's failure to start ending the run with restarts
    # left, attempts not counted against mlagents' limits, or (with unlimited restarts)
    # starting a broken executable forever
    backend = _NeverRestarts(n_env=2)
    manager = WorkerEnvManager(run_options(lifetime, rate_n), 0, 1, str(tmp_path), n_env=2,
                               backend=backend)  # fmt: skip
    failed = manager.workers[1]
    with pytest.raises(UnityEnvironmentException, match="cannot start"):
        manager._restart(failed, UnityCommunicationException("the environment crashed"))
    assert len(backend.started) == 2 + replacements
    assert failed.restart_count == replacements
    # every failed worker was ended: the crashed one and each replacement but the last
    # (the run's close ends that one, as it ends the others)
    assert backend.killed == [backend.started[1], *backend.started[2:-1]]
