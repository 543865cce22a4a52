"""``kill -9`` of the real ``mlagents-learn`` at random moments, then ``--resume``.

One short DQN run on mla-envs' Basic is killed several times: before its first checkpoint,
while a replay buffer, a checkpoint or an ONNX file is being written (seen by their
temporary files appearing), and at a seeded random moment. After each kill the files on
disk must load, and the next ``--resume`` must continue from them; at the end the run
reaches ``max_steps`` with no temporary file left and normal file permissions. A resume
whose configuration does not fit then stops with one line and changes no file.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mla_plugin_core.io.checkpoint import METADATA_KEY
from mla_plugin_core.testing import mlagents_learn_command
from mla_plugin_core.testing.releases import newest_mlagents_only

BASIC_CONFIG = resources.files("mla_dqn") / "configs" / "dqn_basic.yaml"
SEED = 20261201
MAX_STEPS = 2000
RUN = "killed"
#: Our temporary files: atomic writes, and the ONNX export before its rename.
TEMPORARY = re.compile(r"^\..+(\.[a-z0-9_]{8}\.tmp|\.partial\.onnx)$")


def config() -> dict:
    settings = yaml.safe_load(BASIC_CONFIG.read_text())
    behavior = settings["behaviors"]["Basic"]
    behavior["hyperparameters"].update(save_replay_buffer=True, buffer_size=4000)
    behavior.update(checkpoint_interval=250, summary_freq=500, keep_checkpoints=2)
    return settings


#: Every process started, killed at teardown if a failed assertion left it running.
STARTED: list[Run] = []


@pytest.fixture(autouse=True)
def _kill_leftovers():
    yield
    while STARTED:
        run = STARTED.pop()
        if run.process.poll() is None:
            run.kill()


class Run:
    """One ``mlagents-learn`` process, its log in a file, killable with its workers."""

    def __init__(self, tmp_path: Path, label: str, *extra_args: str, settings=None) -> None:
        command, self.folder = mlagents_learn_command(
            settings or config(),
            env="Basic",
            results_dir=tmp_path,
            run_id=RUN,
            max_steps=MAX_STEPS,
            seed=1,
            extra_args=extra_args,
        )
        self.behavior = self.folder / "Basic"
        self.log = tmp_path / f"{label}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        STARTED.append(self)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, condition, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"ended first:\n{self.output[-3000:]}"
            assert time.monotonic() < deadline, f"timed out:\n{self.output[-3000:]}"
            time.sleep(0.001)

    def temporaries(self, kind: str = "") -> list[str]:
        """Our temporary files in the behavior's folder, those of ``.npz`` files etc."""
        names = os.listdir(self.behavior) if self.behavior.is_dir() else []
        return [
            n
            for n in names
            if TEMPORARY.match(n) and re.sub(r"\.[a-z0-9_]{8}\.tmp$", "", n).endswith(kind)
        ]

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the trainer and its env worker
        self.process.wait(timeout=60)

    def finish(self, timeout: float = 600.0) -> int:
        return self.process.wait(timeout=timeout)


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu")[METADATA_KEY]["step"])


def assert_files_load(behavior: Path) -> tuple[int, int]:
    """Every checkpoint and the replay buffer load; their steps."""
    for checkpoint in behavior.glob("*.pt"):
        checkpoint_step(checkpoint)
    with np.load(behavior / "replay_buffer.npz") as data:
        meta = json.loads(str(data["meta"]))
        assert len(data["dones"]) == meta["size"]
    return checkpoint_step(behavior / "checkpoint.pt"), int(meta["info"]["step"])


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the environment's own session log."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not re.fullmatch(r"Player-\d+\.log", p.name)
    }


@newest_mlagents_only  # ~1 min; the resume of every release: test_dqn_mlagents_learn
def test_kills_at_random_moments_then_resume_continues_and_refusals_change_nothing(tmp_path):
    rng = random.Random(SEED)

    # 1. Killed before its first checkpoint: --resume says so in one line.
    first = Run(tmp_path, "1-early")
    first.wait_for(lambda: first.behavior.is_dir())
    first.kill()
    assert not (first.behavior / "checkpoint.pt").exists()
    refused = Run(tmp_path, "2-no-checkpoint", "--resume")
    assert refused.finish() == 1
    assert "Traceback" not in refused.output
    early = (
        "no checkpoint yet"  # or, killed between Basic-<step>.pt and checkpoint.pt:
        if not list(first.behavior.glob("Basic-*.pt"))
        else "it was not written (the run stopped while saving)"
    )
    assert f"cannot resume {refused.behavior / 'checkpoint.pt'}: {early}" in refused.output

    # 2. A new run, killed while it writes the replay buffer after a checkpoint.
    second = Run(tmp_path, "3-replay-write")
    second.wait_for(lambda: (second.behavior / "replay_buffer.npz").exists())
    second.wait_for(lambda: second.temporaries(".npz"))
    second.kill()
    mid_write = bool(second.temporaries(".npz"))  # else the rename won the race
    checkpoint_at, replay_at = assert_files_load(second.behavior)
    assert (checkpoint_at > replay_at) if mid_write else (checkpoint_at == replay_at)

    # 3. Resumed (with a warning about the older buffer), killed while a .pt or .onnx is
    #    being written.
    third = Run(tmp_path, "4-checkpoint-write", "--resume")
    suffix = rng.choice([".pt", ".onnx"])
    third.wait_for(lambda: f"Resuming training from step {checkpoint_at}" in third.output)
    third.wait_for(lambda: third.temporaries(suffix))
    third.kill()
    warning = f"was saved at step {replay_at} and the checkpoint at step {checkpoint_at}"
    assert (warning in third.output) == mid_write
    left_behind = third.temporaries()
    assert_files_load(third.behavior)

    # 4. Resumed (stale temporary files removed), killed at a random moment.
    fourth = Run(tmp_path, "5-random", "--resume")
    # The buffer is loaded after the checkpoint and the clean-up.
    fourth.wait_for(lambda: "transitions from" in fourth.output)
    assert not set(left_behind) & set(os.listdir(fourth.behavior))
    time.sleep(rng.uniform(0.5, 3.0))
    fourth.kill()
    step_before_last, _ = assert_files_load(fourth.behavior)

    # 5. Resumed to the end.
    last = Run(tmp_path, "6-last", "--resume")
    assert last.finish() == 0, last.output[-3000:]
    assert f"Resuming training from step {step_before_last}" in last.output
    final_step, replay_step = assert_files_load(last.behavior)
    assert final_step >= MAX_STEPS and replay_step == final_step
    assert not last.temporaries()
    # Killed attempts' checkpoints are pruned too (keep_checkpoints: 2), and every resume
    # found the training status of the last checkpoint (mlagents writes it only at the end).
    # (1 when the last periodic checkpoint and the final save are the same step: mlagents
    # then lists that step twice, and drops the one before it)
    for suffix in (".pt", ".onnx"):
        kept = [int(p.stem.split("-")[1]) for p in last.behavior.glob(f"Basic-*{suffix}")]
        assert 1 <= len(kept) <= 2, os.listdir(last.behavior)
        # the newest (checkpoint_interval 250), none an early killed attempt left
        assert min(kept) >= final_step - 3 * 250, kept
    for resumed in (third, fourth, last):
        assert "Training status file not found" not in resumed.output, resumed.log
    umask = os.umask(0)
    os.umask(umask)
    for path in [*last.behavior.glob("*.pt"), *last.behavior.glob("*.npz")]:
        assert (path.stat().st_mode & 0o777) == 0o666 & ~umask, path

    # 6. A resume whose network does not fit stops at once, and no file changes.
    before = hashes(last.folder)
    other = config()
    other["behaviors"]["Basic"]["network_settings"]["hidden_units"] = 128
    mismatch = Run(tmp_path, "7-mismatch", "--resume", settings=other)
    assert mismatch.finish() == 1
    lines = [line for line in mismatch.output.splitlines() if "cannot resume" in line]
    assert lines == [
        f"mlagents-learn: cannot resume {mismatch.behavior / 'checkpoint.pt'}: Policy: network "
        "shape differs (network_body._body_endoder.seq_layers.0.weight [64, 20] saved, "
        "[128, 20] now); resume with the settings it was saved with (configuration.yaml of "
        "the run), or start a new run (another --run-id, or --force without --resume)"
    ], mismatch.output[-3000:]
    assert "Traceback" not in mismatch.output
    assert hashes(last.folder) == before
