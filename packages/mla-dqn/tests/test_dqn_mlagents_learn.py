"""End to end through the real ``mlagents-learn`` with mla-envs' Basic (no Unity)."""

import numpy as np
import onnxruntime as ort
import pytest
from dqn_testkit import BASIC_CONFIG, BASIC_TEST_STEPS, basic_config, free_port, learn

from mla_plugin_core.testing.releases import newest_mlagents_only


def test_dqn_basic_yaml_solves_basic_and_exports_a_walking_policy(tmp_path):
    # Seed 1 reaches 0.915 at 5,000 steps and 0.929 at 6,000 and 7,000 (benchmarks/dqn.py):
    # 7,000 steps leave two summaries of margin after the first one >= 0.9.
    run = learn(tmp_path, BASIC_CONFIG, max_steps=BASIC_TEST_STEPS, timeout=300)
    assert run.returncode == 0, run.summary()
    assert run.best_reward >= 0.9, run.summary()
    assert run.final_reward >= 0.85, run.summary()
    # The exported model walks right (action 2) from the start (10) to the goal (17).
    session = ort.InferenceSession(str(run.results_dir / "Basic.onnx"))
    obs = np.eye(20, dtype=np.float32)[10:17]
    feed = {"obs_0": obs, "action_masks": np.ones((7, 3), np.float32)}
    names = {i.name for i in session.get_inputs()}
    (actions,) = session.run(
        ["deterministic_discrete_actions"], {k: v for k, v in feed.items() if k in names}
    )
    assert actions[:, 0].tolist() == [2] * 7


def test_bad_hyperparameter_is_one_line_and_nonzero_exit(tmp_path):
    run = learn(tmp_path, basic_config(exploration_final_eps=1.5), timeout=120)
    assert run.returncode != 0
    errors = [line for line in run.output.splitlines() if "exploration_final_eps" in line]
    assert errors == [
        "mlagents-learn: configuration error: Basic: hyperparameters.exploration_final_eps = 1.5 "
        "is not allowed: must be a number >= 0.0 and <= 1.0"
    ], run.output[-2000:]
    assert "Traceback" not in run.output


def test_resume_continues_step_exploration_networks_and_replay(tmp_path):
    config = basic_config(
        save_replay_buffer=True, exploration_steps=4000, exploration_final_eps=0.0
    )
    config["behaviors"]["Basic"].update(summary_freq=250, checkpoint_interval=500)
    first = learn(tmp_path, config, max_steps=1000, run_id="resume", timeout=300)
    assert first.returncode == 0, first.summary()
    assert (first.results_dir / "Basic" / "replay_buffer.npz").exists()
    second = learn(
        tmp_path, config, max_steps=2000, run_id="resume", extra_args=["--resume"], timeout=300
    )
    assert second.returncode == 0, second.summary()
    assert "Resuming from" in second.output or "Resuming training from step" in second.output
    assert "transitions from" in second.output  # the replay buffer was loaded
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(second.results_dir / "Basic"), size_guidance={"scalars": 0})
    events.Reload()
    epsilon = {e.step: e.value for e in events.Scalars("Policy/Epsilon")}
    resumed = [step for step in epsilon if step > 1000]
    assert resumed, epsilon
    for step in resumed:  # linear from 1 to 0 over 4000 steps: no restart at 1
        assert epsilon[step] == pytest.approx(1.0 - step / 4000, abs=0.15)
    # The step count went on from the checkpoint, not from 0.
    steps = [e.step for e in events.Scalars("Environment/Cumulative Reward")]
    assert max(steps) >= 2000


@newest_mlagents_only  # ~45 s; benchmarks/memory.py runs 3 seeds of both arms
def test_recurrent_dqn_remembers_the_cue_of_the_memory_corridor(tmp_path):
    """dqn_memory.yaml (R2D2) through the real mlagents-learn on mla-envs' Memory corridor:
    seed 1 reaches 0.89 at 6,000 steps and 0.90 at 7,000 and 8,000 (benchmarks/memory.py);
    without memory no policy beats -0.06 on average. 90 % of the optimum 0.94 is 0.846."""
    from importlib import resources

    import yaml

    from mla_plugin_core.testing import run_mlagents_learn

    config = yaml.safe_load(
        (resources.files("mla_dqn") / "configs" / "dqn_memory.yaml").read_text()
    )
    config["behaviors"]["Memory"]["max_steps"] = 8000
    run = run_mlagents_learn(
        config, env="memory", results_dir=tmp_path, seed=1, timeout=300,
        extra_args=["--base-port", str(free_port())],
    )  # fmt: skip
    assert run.returncode == 0, run.summary()
    assert run.best_reward >= 0.846, run.summary()
    session = ort.InferenceSession(str(run.results_dir / "Memory.onnx"))
    assert "recurrent_in" in {i.name for i in session.get_inputs()}
