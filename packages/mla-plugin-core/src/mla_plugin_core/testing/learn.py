"""Run the real ``mlagents-learn`` in a subprocess and read what it learned."""

from __future__ import annotations

import copy
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mla_plugin_core.util.ports import ports_free

#: The TensorBoard tag under which mlagents writes the mean episode reward.
REWARD_TAG = "Environment/Cumulative Reward"

#: Short environment names -> the console script of ``mla-envs`` that serves them.
ENVIRONMENTS = {
    "basic": "mla-env-basic",
    "3dball": "mla-env-3dball",
    "memory": "mla-env-memory",
    "gym": "mla-env-gym",
}


@dataclass
class TrainingRun:
    """The outcome of one ``mlagents-learn`` run.

    :param results_dir: ``<results-dir>/<run-id>``: checkpoints, ONNX files, TensorBoard events.
    :param returncode: exit status of ``mlagents-learn``.
    :param output: its stdout and stderr, interleaved.
    :param rewards: behavior name -> ``[(step, mean episode reward), ...]`` at each summary.
    """

    results_dir: Path
    returncode: int
    output: str
    rewards: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def curve(self, behavior: str | None = None) -> list[tuple[int, float]]:
        """The reward curve of ``behavior`` (the only one when ``None``)."""
        if behavior is None:
            if len(self.rewards) != 1:
                raise ValueError(f"name the behavior, one of {sorted(self.rewards)}")
            behavior = next(iter(self.rewards))
        if behavior not in self.rewards:
            raise KeyError(
                f"no rewards recorded for {behavior!r}; have {sorted(self.rewards)}\n{self.summary()}"
            )
        return self.rewards[behavior]

    @property
    def final_reward(self) -> float:
        """Mean episode reward at the last summary (the single behavior)."""
        return self.curve()[-1][1]

    @property
    def best_reward(self) -> float:
        """Highest mean episode reward over all summaries (the single behavior)."""
        return max(reward for _, reward in self.curve())

    def first_step_reaching(self, threshold: float, behavior: str | None = None) -> int | None:
        """The first summary step whose mean reward is ``>= threshold``; ``None`` if never."""
        return next((step for step, reward in self.curve(behavior) if reward >= threshold), None)

    def summary(self) -> str:
        """A few lines for assertion messages: exit status, curve, the end of the log."""
        curves = {name: [(s, round(r, 3)) for s, r in c] for name, c in self.rewards.items()}
        tail = "\n".join(self.output.splitlines()[-25:])
        return f"exit {self.returncode}; rewards {curves}\n--- log tail ---\n{tail}"


def environment_executable(env: str) -> str:
    """The executable for ``--env``: a path, a console script, or a short name (``Basic``).

    Console scripts are looked up beside the running interpreter first (its virtual
    environment), then on ``PATH``.
    """
    script = ENVIRONMENTS.get(env.lower(), env)
    beside_python = str(Path(sys.executable).parent)
    found = (
        shutil.which(script, path=beside_python)
        or shutil.which(script)
        or (script if os.access(script, os.X_OK) else None)
    )
    if found is None:
        known = ", ".join(sorted(ENVIRONMENTS))
        raise FileNotFoundError(
            f"no environment executable {env!r}: give a path, a console script on PATH, or one "
            f"of {known} (install mla-envs for those)"
        )
    return found


def ppo_basic_smoke_config(max_steps: int = 600) -> dict[str, Any]:
    """A trainer YAML, as a mapping, of mlagents' built-in PPO on ``Basic`` that goes
    through the whole pipeline (updates, summaries, checkpoints, ONNX) in seconds.

    It learns nothing: a tiny network, 3-step trajectories, an update every 128 steps. For
    tests of what surrounds training (installs, protobuf, ports), not of a trainer.

    :param max_steps: the run's length in steps; summaries every 200.
    """
    return {
        "behaviors": {
            "Basic": {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 32, "buffer_size": 128, "num_epoch": 1},
                "network_settings": {"hidden_units": 16, "num_layers": 1},
                "reward_signals": {"extrinsic": {"gamma": 0.9, "strength": 1.0}},
                "max_steps": max_steps,
                "time_horizon": 3,
                "summary_freq": 200,
            }
        }
    }


def read_reward_curve(run_dir: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Mean episode reward per summary step, per behavior, from a run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, list[tuple[int, float]]] = {}
    for behavior_dir in sorted(p for p in Path(run_dir).iterdir() if p.is_dir()):
        if not any(behavior_dir.glob("events.out.tfevents.*")):
            continue
        events = EventAccumulator(str(behavior_dir), size_guidance={"scalars": 0})
        events.Reload()
        if REWARD_TAG in events.Tags()["scalars"]:
            curves[behavior_dir.name] = [(e.step, e.value) for e in events.Scalars(REWARD_TAG)]
    return curves


def free_base_port(count: int = 1, attempts: int = 200) -> int:
    """A port ``p`` such that ``p .. p + count - 1`` are free on localhost.

    ``mlagents-learn`` listens on ``--base-port + worker_id`` for each of its ``--num-envs``
    environments; runs in parallel (pytest-xdist, several terminals) must not share ports.
    """
    for _ in range(attempts):
        base = random.randint(20_000, 60_000)
        if ports_free(base, count):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found on localhost")


def _deep_update(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def mlagents_learn_command(
    config: str | os.PathLike[str] | Mapping[str, Any],
    *,
    env: str,
    results_dir: str | os.PathLike[str],
    run_id: str = "run",
    max_steps: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    num_envs: int = 1,
    env_args: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> tuple[list[str], Path]:
    """The ``mlagents-learn`` command line of :func:`run_mlagents_learn`, and its run folder.

    Writes the (overridden) YAML to ``results_dir/<run_id>.yaml``; for tests that start the
    process themselves (``subprocess.Popen``), e.g. to kill it at a chosen moment.

    :param config: a trainer YAML path, or the same content as a mapping.
    :param env: ``Basic``, ``3DBall``, ``gym``, a console script or an executable path
        (see :func:`environment_executable`).
    :param results_dir: folder for ``--results-dir``; the run lands in ``results_dir/run_id``.
    :param run_id: ``--run-id``, the run's folder name.
    :param max_steps: if given, replaces ``max_steps`` of every behavior.
    :param overrides: deep-merged into every behavior's settings, e.g.
        ``{"hyperparameters": {"learning_rate": 1e-3}}``.
    :param seed: ``--seed``; with the same seed and config a run is reproducible.
    :param num_envs: ``--num-envs``, environment processes (each on its own free port).
    :param env_args: the environment's own options, passed after ``--env-args`` (which
        comes last), e.g. ``["CartPole-v1", "--num-agents", "4"]`` with ``env="gym"``
        (see ``mla-env-gym --help``).
    :param extra_args: more ``mlagents-learn`` options, e.g. ``["--resume"]``.
    :return: the command (``python -m mlagents.trainers.learn ...``, with a free
        ``--base-port``) and ``results_dir/run_id``.
    """
    if isinstance(config, Mapping):
        settings: dict[str, Any] = copy.deepcopy(dict(config))
    else:
        settings = yaml.safe_load(Path(config).read_text())
    for behavior in settings.get("behaviors", {}).values():
        if max_steps is not None:
            behavior["max_steps"] = int(max_steps)
        if overrides:
            _deep_update(behavior, overrides)
    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    config_path = results / f"{run_id}.yaml"
    config_path.write_text(yaml.safe_dump(settings))
    command = [
        sys.executable, "-m", "mlagents.trainers.learn", str(config_path),
        "--run-id", run_id, "--results-dir", str(results), "--force",
        "--seed", str(seed), "--no-graphics", "--num-envs", str(num_envs),
        "--base-port", str(free_base_port(num_envs)),
        "--env", environment_executable(env), *extra_args,
    ]  # fmt: skip
    if env_args:
        command += ["--env-args", *env_args]  # must come last: everything after goes to the env
    return command, results / run_id


def run_mlagents_learn(
    config: str | os.PathLike[str] | Mapping[str, Any],
    *,
    timeout: float = 900.0,
    **options: Any,
) -> TrainingRun:
    """Train with the real ``mlagents-learn`` and return the reward curves.

    :param config: a trainer YAML path, or the same content as a mapping.
    :param timeout: seconds before the run is killed (a ``subprocess.TimeoutExpired``).
    :param options: the keyword parameters of :func:`mlagents_learn_command`: ``env`` and
        ``results_dir`` (required), ``run_id``, ``max_steps``, ``overrides``, ``seed``,
        ``num_envs``, ``env_args``, ``extra_args``.

    The run listens on free ports (``--base-port``), so runs may go on in parallel.
    """
    command, run_dir = mlagents_learn_command(config, **options)
    completed = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    rewards = read_reward_curve(run_dir) if run_dir.is_dir() else {}
    return TrainingRun(run_dir, completed.returncode, completed.stdout, rewards)
