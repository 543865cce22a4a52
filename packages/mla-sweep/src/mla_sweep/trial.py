"""One trial of a sweep: the real ``mlagents-learn`` as a child process, reported to Tune.

Each trial gets its own reserved base port on its node (:mod:`mla_ray.ports`), its own
run folder ``<runs>/<run-id>`` (``--results-dir``/``--run-id``), its ``--seed`` and the
trainer YAML with its overrides. Every summary mlagents writes to TensorBoard becomes one
Tune result (:mod:`mla_sweep.metrics`). When Tune stops the trial (ASHA, the end of the
sweep, Ctrl-C of the driver), the trial's watchdog (:mod:`mla_sweep.watchdog`) sends
``mlagents-learn`` SIGINT — it saves its model and closes its environment — and ends its
processes if it does not stop in time; the worker waits for it. The watchdog does the same
when the trial's Ray worker dies, so no trainer or environment outlives its trial.

``resources: {cpu: N}`` holds for the trial's processes, not only in Ray's books: they run
on ``ceil(N)`` cores of the node reserved for the trial, with thread pools of that size
(:mod:`mla_sweep.cpus`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
import yaml
from mla_ray.ports import PortReservation
from ray import tune

from mla_plugin_core.util.log_files import LOG_TAIL_LINES, tail_lines
from mla_sweep.config import Sweep
from mla_sweep.cpus import CpuReservation
from mla_sweep.learn import LEARNER_FLAG
from mla_sweep.metrics import TRIAL_FILE, MetricReader, steps_per_second, windowed
from mla_sweep.watchdog import (
    LIFELINE_VARIABLE,
    STOP_BOUND_SECONDS,
    STOP_GRACE_SECONDS,
    end_processes,
)

#: ``mlagents-learn``'s stdout and stderr, in the run folder.
LOG_FILE = "mlagents-learn.log"
#: Seconds between looks at the TensorBoard events.
POLL_SECONDS = 0.5


class TrialFailed(RuntimeError):
    """``mlagents-learn`` exited with an error; the message ends with its log's last lines."""


def variant_label(overrides: Mapping[str, Any]) -> str:
    """A short readable name of a configuration: ``n_step=3,learning_rate=0.00123``."""
    if not overrides:
        return "base"
    parts = []
    for key, value in overrides.items():
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{key.rsplit('.', 1)[-1]}={shown}")
    return ",".join(parts)


def run_id_for(overrides: Mapping[str, Any], seed: int, trial_id: str) -> str:
    """The ``--run-id`` of a trial: readable, filename-safe and unique in its sweep."""
    label = re.sub(r"[^A-Za-z0-9._=,-]+", "_", variant_label(overrides))[:80]
    return f"{label}_seed{seed}_{trial_id}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if there is none), read as mlagents-learn's
    own errors read an environment's log (:func:`mla_plugin_core.util.log_files.tail_lines`)."""
    return "\n".join(tail_lines(str(path), lines) or [])


def learn_command(
    sweep: Sweep, config_path: Path, runs_root: Path, run_id: str, seed: int, base_port: int,
    resume: bool, ray_address: str | None = None,
) -> list[str]:  # fmt: skip
    """The ``mlagents-learn`` command line of one trial (``--env-args`` last, as mlagents wants);
    run through :mod:`mla_sweep.learn`, which sizes torch's threads to the trial's cores.
    With ``learner: mla-learn``, ``mla-learn`` joins the sweep's cluster at ``ray_address``."""
    learner: list[str] = []
    if sweep.learner == "mla-learn":
        learner = [LEARNER_FLAG, "--address", str(ray_address)]
    command = [
        sys.executable, "-m", "mla_sweep.learn", *learner, str(config_path),
        "--run-id", run_id, "--results-dir", str(runs_root),
        "--resume" if resume else "--force",
        "--seed", str(seed), "--base-port", str(base_port), "--num-envs", str(sweep.num_envs),
        "--no-graphics", "--env", sweep.env, *sweep.learn_args,
    ]  # fmt: skip
    if sweep.env_args:
        command += ["--env-args", *sweep.env_args]
    return command


class SweepTrial(tune.Trainable):
    """A Tune trainable whose training is one ``mlagents-learn`` run.

    ``config`` holds ``overrides`` (dotted key -> value) and ``seed``; the sweep and the
    runs folder come through :func:`ray.tune.with_parameters` (keyword arguments of
    :meth:`setup`, optional only so that it still overrides ``Trainable.setup(config)``).
    """

    def setup(
        self, config: dict[str, Any], sweep: Sweep | None = None, runs_root: str | None = None
    ) -> None:
        if sweep is None or runs_root is None:
            raise TypeError("SweepTrial needs sweep= and runs_root= (tune.with_parameters)")
        self.sweep = sweep
        self.overrides = dict(config.get("overrides", {}))
        self.seed = int(config["seed"])
        runs = Path(runs_root)
        self.run_id = run_id_for(self.overrides, self.seed, self.trial_id)
        self.run_dir = runs / self.run_id
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # mlagents writes training_status.json with its checkpoints: a trial restarted by
        # --resume continues from them instead of starting over.
        resume = (self.run_dir / "run_logs" / "training_status.json").is_file()
        # started over (--force): the summaries of an attempt before are not this run's
        since = None if resume else time.time()
        config_path = self.run_dir / "trainer_config.yaml"
        trainer_config = sweep.trial_config(self.overrides)
        config_path.write_text(yaml.safe_dump(trainer_config))
        # this trial's own budget (a grid may vary max_steps)
        self.max_steps = max(
            int(b.get("max_steps", sweep.max_steps)) for b in trainer_config["behaviors"].values()
        )
        self.log_path = self.run_dir / LOG_FILE
        self.node_id = ray.get_runtime_context().get_node_id()
        # the trial's lifeline: its end (closed here, or this worker's death) stops the run
        read_end, write_end = os.pipe()
        self.lifeline: int | None = write_end
        try:  # a failure here gives back what was reserved, at once
            self.ports = PortReservation(sweep.num_envs)
            self.base_port = self.ports.base
            self.cpus = CpuReservation(sweep.cpu)
            self._describe(status="running")
            command = learn_command(
                sweep, config_path, runs, self.run_id, self.seed, self.base_port, resume,
                ray_address=ray.get_runtime_context().gcs_address,
            )  # fmt: skip
            with open(self.log_path, "ab") as log:
                log.write(f"$ {' '.join(command)}\n".encode())
                if self.cpus.note:
                    log.write(
                        f"mla-sweep: resources.cpu {sweep.cpu:g}: {self.cpus.note}\n".encode()
                    )
                log.flush()
                self.process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, preexec_fn=self.cpus.apply, pass_fds=(read_end,),
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **self.cpus.environment(),
                         LIFELINE_VARIABLE: str(read_end)},
                )  # fmt: skip
            self.ports.hand_over(self.process.pid)
            self.cpus.hand_over(self.process.pid)
        except BaseException:
            self._release()
            raise
        finally:
            os.close(read_end)
        self.reader = MetricReader(
            self.run_dir, sweep.metric.behavior, sweep.metric.name, since=since
        )
        self.reported = 0  # summaries of self.reader.points handed to Tune so far

    def _describe(self, status: str, returncode: int | None = None) -> None:
        info = {
            "sweep": self.sweep.name,
            "label": variant_label(self.overrides),
            "overrides": self.overrides,
            "seed": self.seed,
            "trial_id": self.trial_id,
            "metric": self.sweep.metric.name,
            "behavior": self.sweep.metric.behavior,
            "mode": self.sweep.metric.mode,
            "over_last_steps": self.sweep.metric.over_last_steps,
            "threshold": self.sweep.metric.threshold,
            "max_steps": self.max_steps,
            "status": status,
            "node": self.node_id,
            "base_port": getattr(self, "base_port", None),
            "cpus": getattr(getattr(self, "cpus", None), "cores", None),
            "returncode": returncode,
        }
        (self.run_dir / TRIAL_FILE).write_text(json.dumps(info, indent=1))

    def _result(self, upto: int, done: bool) -> dict[str, Any]:
        """The Tune result of the summary ``self.reader.points[upto - 1]``."""
        points = self.reader.points[:upto]
        return {
            "metric": windowed(points, self.sweep.metric.over_last_steps),
            "env_steps": points[-1].step,
            "steps_per_second": steps_per_second(points) or 0.0,
            "run_dir": str(self.run_dir),
            "done": done,
            # Tune also sets done on the last result of a trial its scheduler stops: this
            # says the run ended by itself (its process exited), the progress line's test
            "ended_by_itself": done,
        }

    def step(self) -> dict[str, Any]:
        """One result per summary, in order (several may have arrived since the last call:
        each is reported, so that ASHA sees every rung)."""
        while True:
            if self.reported < len(self.reader.points):
                self.reported += 1
                return self._result(self.reported, done=False)
            exited = self.process.poll() is not None
            if self.reader.poll():
                continue
            if exited:
                return self._finish()
            time.sleep(POLL_SECONDS)

    def _finish(self) -> dict[str, Any]:
        returncode = self.process.returncode
        self._release()
        if returncode != 0 or not self.reader.points:
            self._describe(status="failed", returncode=returncode)
            what = (
                f"exited with status {returncode}"
                if returncode != 0
                else f"wrote no {self.sweep.metric.name!r} for {self.sweep.metric.behavior}"
            )
            raise TrialFailed(
                f"mlagents-learn of {self.run_id} {what}; last lines of {self.log_path}:\n"
                f"{log_tail(self.log_path)}"
            )
        self._describe(status="finished", returncode=returncode)
        return self._result(len(self.reader.points), done=True)

    def cleanup(self) -> None:
        """Stop ``mlagents-learn`` like Ctrl-C does (it saves) and wait for it: the end of the
        lifeline has its watchdog send SIGINT, and end the trial's processes if it has not
        stopped after :data:`~mla_sweep.watchdog.STOP_GRACE_SECONDS`.

        A run whose last summary reached ``max_steps`` is finishing by itself (Tune stops a
        trial at its last result, before the process exits): it is waited for first, not
        interrupted.
        """
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            points = self.reader.points
            reached = bool(points) and points[-1].step >= self.max_steps
            if reached:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_GRACE_SECONDS)
            self._close_lifeline()
            try:
                process.wait(timeout=STOP_BOUND_SECONDS)
            except subprocess.TimeoutExpired:  # no watchdog (it did not start, or was killed)
                end_processes(process.pid)
                process.wait()
            finished = reached and process.returncode == 0
            self._describe(
                status="finished" if finished else "stopped", returncode=process.returncode
            )
        self._release()

    def _close_lifeline(self) -> None:
        lifeline = getattr(self, "lifeline", None)
        if lifeline is not None:
            os.close(lifeline)
            self.lifeline = None

    def _release(self) -> None:
        """Give the trial's ports and cores back, and close its lifeline."""
        for reservation in ("ports", "cpus"):
            if hasattr(self, reservation):
                getattr(self, reservation).release()
        self._close_lifeline()
