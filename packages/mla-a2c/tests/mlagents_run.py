"""Run the real ``mlagents-learn`` on a config and read what it wrote."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import mla_a2c

CONFIGS = Path(mla_a2c.__file__).parent / "configs"
REWARD_TAG = "Environment/Cumulative Reward"
#: Seconds one mlagents-learn run may take before the test fails instead of hanging.
RUN_TIMEOUT = 600


def env_executable(name: str) -> str:
    """The path of one of mla-envs' console scripts (``mla-env-basic``, ``mla-env-3dball``)."""
    found = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    if found is None:
        raise FileNotFoundError(f"{name} not found: install mla-envs")
    return found


def free_port() -> int:
    """A TCP port nobody listens on now: runs in parallel must not share mlagents' 5005."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def shipped_config(name: str, **behavior_overrides) -> dict:
    """A config shipped in ``mla_a2c/configs``, with keys of its behavior overridden
    (``hyperparameters={...}`` is merged key by key)."""
    config = yaml.safe_load((CONFIGS / name).read_text())
    (behavior,) = config["behaviors"].values()
    for key, value in behavior_overrides.items():
        if isinstance(value, dict):
            behavior.setdefault(key, {}).update(value)
        else:
            behavior[key] = value
    return config


def mlagents_learn(
    config: dict,
    results_dir: Path,
    env: str,
    run_id: str = "run",
    seed: int = 1,
    extra_args: tuple[str, ...] = ("--force",),
    env_args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """Run ``mlagents-learn`` to completion; stdout and stderr captured as text."""
    results_dir.mkdir(parents=True, exist_ok=True)
    config_path = results_dir / f"{run_id}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [
        os.path.join(os.path.dirname(sys.executable), "mlagents-learn"),
        str(config_path),
        "--env",
        env_executable(env),
        "--run-id",
        run_id,
        "--results-dir",
        str(results_dir),
        "--seed",
        str(seed),
        "--no-graphics",
        "--base-port",
        str(free_port()),
        *extra_args,
    ]
    if env_args:
        command += ["--env-args", *env_args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=results_dir
    )


def scalars(results_dir: Path, run_id: str, behavior: str, tag: str = REWARD_TAG):
    """(step, value) pairs of a TensorBoard scalar, over every event file of the behavior."""
    points = []
    for events in sorted((results_dir / run_id / behavior).glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            points += [(event.step, event.value) for event in accumulator.Scalars(tag)]
    return sorted(points)
