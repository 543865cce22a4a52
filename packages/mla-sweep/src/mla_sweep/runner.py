"""Run a sweep on Ray Tune: embedded on this machine, or on an existing Ray cluster.

The experiment lives in ``<storage>/<sweep name>/``: Tune's own state (for ``--resume``)
and ``runs/``, the ``mlagents-learn`` results folder of every trial. On a cluster of several
machines the storage path must be a folder every node sees at the same path (NFS, …).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mla_ray import local_ray
from ray import tune

from mla_sweep.config import Sweep, tune_domain

#: Default storage folder (like mlagents' ``results/``).
DEFAULT_STORAGE = "sweeps"
RUNS_FOLDER = "runs"


class ProgressLines(tune.Callback):
    """One line per trial result, error and end, instead of Tune's tables."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.started = time.time()
        self.last_step: dict[str, int] = {}

    def _name(self, trial: Any) -> str:
        from mla_sweep.trial import variant_label

        config = trial.config
        return f"{variant_label(config.get('overrides', {}))} seed {config.get('seed')}"

    def _print(self, line: str) -> None:
        elapsed = time.time() - self.started
        print(f"[mla-sweep {elapsed:6.0f}s] {line}", flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print(f"{self._name(trial)}: started ({trial.trial_id})")

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if self.last_step.get(trial.trial_id) == result["env_steps"]:
            return  # the closing result of a run repeats its last summary
        self.last_step[trial.trial_id] = result["env_steps"]
        rate = result["steps_per_second"]
        self._print(
            f"{self._name(trial)}: step {result['env_steps']}/{self.sweep.max_steps} "
            f"{self.sweep.metric.name} {result['metric']:.4g}"
            + (f" ({rate:.0f} steps/s)" if rate else "")
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        # not the steps: a finished run's last summary may lie below max_steps (the last
        # multiple of summary_freq); not done, which Tune sets when its scheduler stops one
        early = not result.get("ended_by_itself", False)
        how = "stopped early by the scheduler" if early else "finished"
        self._print(f"{self._name(trial)}: {how} at step {result.get('env_steps', 0)}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print(f"{self._name(trial)}: FAILED\n{_error_text(trial)}")


def _error_text(trial: Any) -> str:
    """The failure message of a trial: our ``TrialFailed`` text (with the log tail)."""
    text = ""
    path = getattr(trial, "error_file", None) or ""
    if path and os.path.isfile(path):
        text = Path(path).read_text(errors="replace")
    marker = "TrialFailed: "
    if marker in text:
        return text.rsplit(marker, 1)[1].strip()
    return "\n".join(text.strip().splitlines()[-15:])


def param_space(sweep: Sweep) -> dict[str, Any]:
    """Tune's parameter space: every variant x every seed, or Optuna's search space."""
    if sweep.search_alg == "optuna":
        space: dict[str, Any] = {k: tune_domain(*s) for k, s in sweep.search_space.items()}
        space.update({k: tune.choice(v) for k, v in sweep.grid.items()})
        return {"overrides": space, "seed": sweep.seeds[0]}
    return {"overrides": tune.grid_search(sweep.variants), "seed": tune.grid_search(sweep.seeds)}


def _tune_config(sweep: Sweep) -> tune.TuneConfig:
    scheduler = None
    if sweep.scheduler is not None:
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(
            time_attr="env_steps",
            max_t=sweep.max_steps,
            grace_period=sweep.scheduler.grace_period,
            reduction_factor=sweep.scheduler.reduction_factor,
        )
    search_alg = None
    num_samples = 1
    if sweep.search_alg == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=sweep.seeds[0])
        num_samples = sweep.samples
    return tune.TuneConfig(
        metric="metric",
        mode=sweep.metric.mode,
        scheduler=scheduler,
        search_alg=search_alg,
        num_samples=num_samples,
        max_concurrent_trials=sweep.max_concurrent,
        reuse_actors=False,
    )


def experiment_dir(sweep: Sweep, storage: str | os.PathLike[str]) -> Path:
    return Path(storage).resolve() / sweep.name


def trainable(sweep: Sweep, storage: str | os.PathLike[str]) -> Any:
    from mla_sweep.trial import SweepTrial

    runs = experiment_dir(sweep, storage) / RUNS_FOLDER
    runs.mkdir(parents=True, exist_ok=True)
    bound = tune.with_parameters(SweepTrial, sweep=sweep, runs_root=str(runs))
    return tune.with_resources(bound, {"cpu": sweep.cpu})


#: What every trial process inherits (mlagents' pkg_resources warning is noise here). A Ray
#: worker that exits, as when Tune kills it 10 s after Ctrl-C, would SIGKILL its child, the
#: trial's ``mlagents-learn``, in the middle of saving: the trial's watchdog stops it instead
#: (:mod:`mla_sweep.watchdog`).
RUNTIME_ENV = {
    "env_vars": {
        "PYTHONWARNINGS": "ignore::UserWarning:mlagents.torch_utils.torch",
        "RAY_kill_child_processes_on_worker_exit": "0",
    }
}


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address``, or start Ray embedded on this machine."""
    local_ray.connect(address, num_cpus, runtime_env=RUNTIME_ENV, log_to_driver=False)


def run_sweep(
    sweep: Sweep,
    storage: str | os.PathLike[str] = DEFAULT_STORAGE,
    *,
    address: str | None = None,
    resume: bool = False,
    num_cpus: int | None = None,
) -> tune.ResultGrid:
    """Run (or with ``resume`` continue) ``sweep``; trials that fail do not stop the others.

    :param storage: folder of the experiment (``<storage>/<sweep.name>``).
    :param address: a Ray cluster address (``ray start --head``); ``None`` starts Ray here.
    :param resume: continue the interrupted experiment in ``storage`` (Tune's restore):
        finished trials are kept, unfinished ones continue from their mlagents checkpoints.
    :param num_cpus: CPUs of embedded Ray (default: all of this machine).
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    path = experiment_dir(sweep, storage)
    if resume and not tune.Tuner.can_restore(str(path)):
        raise FileNotFoundError(f"--resume: no sweep to continue in {path}")
    if not resume and (path / RUNS_FOLDER).is_dir() and any((path / RUNS_FOLDER).iterdir()):
        raise FileExistsError(
            f"{path} already holds a sweep: continue it with --resume, or pick another --storage"
        )
    init_ray(address, num_cpus)
    try:
        return _fit(sweep, storage, path, resume)
    finally:
        shutdown_local_ray()


def shutdown_local_ray() -> None:
    """Disconnect, and stop the Ray nodes :func:`init_ray` started here (if any)."""
    local_ray.disconnect()


def _fit(sweep: Sweep, storage: str | os.PathLike[str], path: Path, resume: bool) -> Any:
    if resume:
        tuner = tune.Tuner.restore(
            str(path), trainable(sweep, storage), resume_unfinished=True, resume_errored=False,
            param_space=param_space(sweep),
        )  # fmt: skip
    else:
        tuner = tune.Tuner(
            trainable(sweep, storage),
            param_space=param_space(sweep),
            tune_config=_tune_config(sweep),
            run_config=tune.RunConfig(
                name=sweep.name,
                storage_path=str(Path(storage).resolve()),
                callbacks=[ProgressLines(sweep)],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
            ),
        )
    return tuner.fit()


def trial_count(sweep: Sweep) -> int:
    """How many trials the sweep runs."""
    if sweep.search_alg == "optuna":
        return sweep.samples
    return len(sweep.variants) * len(sweep.seeds)
