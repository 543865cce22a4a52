"""Streamed demonstrations end to end: the real ``mlagents-learn`` training DQN on Basic with
``demonstrations: {watch: true}`` on an empty folder, a player process (``mla-env-record``)
writing into it mid-run, then ``--resume``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mla_plugin_core.testing import mlagents_learn_command
from mla_plugin_core.testing.releases import newest_mlagents_only

SHIPPED = resources.files("mla_dqn") / "configs" / "dqn_basic_streaming.yaml"
STREAMED = re.compile(
    r"Basic: (\d+) demonstration episode\(s\), (\d+) steps, streamed from ([\w.]+); "
    r"(\d+) episodes, (\d+) steps so far; (\d+) expert transitions held"
)
SUMMARY = re.compile(r"\[INFO\] Basic\. Step: (\d+)\.")
#: The scripted Basic expert: 7 decisions (right) and the terminal record per episode.
EPISODES, STEPS_PER_EPISODE = 3, 7


class Run:
    def __init__(self, tmp_path: Path, label: str, config: dict, max_steps: int, *extra: str):
        command, self.folder = mlagents_learn_command(
            config, env="Basic", results_dir=tmp_path, run_id="stream", max_steps=max_steps,
            seed=1, extra_args=extra,
        )  # fmt: skip
        self.log = tmp_path / f"{label}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 240.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.output)):
            assert self.process.poll() is None, f"ended first:\n{self.output[-3000:]}"
            assert time.monotonic() < deadline, f"timed out:\n{self.output[-3000:]}"
            time.sleep(0.05)
        return found

    def finish(self, timeout: float = 600.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def scalars(run_folder: Path, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(run_folder / "Basic"), size_guidance={"scalars": 0})
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


@newest_mlagents_only  # ~1 min
def test_a_player_streams_into_a_run_and_a_resume_takes_nothing_twice(tmp_path):
    demos = tmp_path / "demos"
    demos.mkdir()
    config = yaml.safe_load(SHIPPED.read_text())  # as shipped, but for where and how often
    behavior = config["behaviors"]["Basic"]
    behavior["hyperparameters"]["demonstrations"].update(path=str(demos), watch_interval=0.1)
    behavior["summary_freq"] = 500

    first = Run(tmp_path, "first", config, 12000)  # the player needs a few seconds
    try:
        first.wait_for(rf"Basic: 0 expert transitions from {re.escape(str(demos))}\.")
        assert first.wait_for(SUMMARY).group(1) == "500"  # training, before any demonstration
        player = subprocess.run(
            [sys.executable, "-m", "mla_envs.players", "Basic", "--out", str(demos)]
            + ["--episodes", str(EPISODES), "--delay", "0.05", "--name", "player"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert player.returncode == 0, player.stderr
        total = EPISODES * STEPS_PER_EPISODE
        deadline = time.monotonic() + 120
        while (streamed := STREAMED.findall(first.output)) == [] or streamed[-1][3] != "3":
            assert time.monotonic() < deadline and first.process.poll() is None, first.output
            time.sleep(0.05)
        # episode by episode as the player finished them, while training went on
        assert sum(int(s[0]) for s in streamed) == EPISODES
        assert [s[2] for s in streamed] == ["player.demo"] * len(streamed)
        assert streamed[-1][3:] == ("3", str(total), str(total))
        assert first.finish() == 0, first.output[-3000:]
    finally:
        first.finish(timeout=60)
    after = first.output[list(STREAMED.finditer(first.output))[-1].end() :]
    assert SUMMARY.search(after), "no training summary after the demonstrations came"
    episodes = scalars(first.folder, "Demonstrations/Streamed Episodes")
    steps = scalars(first.folder, "Demonstrations/Streamed Steps")
    assert episodes[min(episodes)] == 0 and episodes[12000] == EPISODES, episodes
    assert steps[12000] == total, steps
    margin = scalars(first.folder, "Losses/Margin Loss")  # the expert loss, once there were some
    assert margin and min(margin) > 500, margin

    # --resume: the expert replay is rebuilt from the folder, each episode once
    second = Run(tmp_path, "second", config, 13000, "--resume")
    assert second.finish() == 0, second.output[-3000:]
    assert STREAMED.findall(second.output) == [
        (str(EPISODES), str(total), "player.demo", str(EPISODES), str(total), str(total))
    ]
    resumed = scalars(second.folder, "Demonstrations/Streamed Episodes")
    assert resumed[13000] == EPISODES, resumed
