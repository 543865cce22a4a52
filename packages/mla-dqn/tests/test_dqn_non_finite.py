"""A NaN/inf in DQN stops training with one line and leaves the last finite checkpoint."""

import math
import os

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from dqn_testkit import basic_config, learn, make_trainer, trajectory

from mla_plugin_core.util.finite import NonFiniteError, non_finite_entries


def trained_trainer(tmp_path, **hyperparameters):
    """A DQN trainer with 40 transitions in replay, due 5 gradient steps."""
    trainer = make_trainer(tmp_path, buffer_init_steps=0, steps_per_update=4.0, **hyperparameters)
    for agent in range(4):
        trainer._process_trajectory(trajectory(f"agent-{agent}", 0, 9, done=True))
    trainer._step = 20
    return trainer


@pytest.mark.parametrize("prioritized", [False, True])
def test_a_nan_parameter_stops_the_update_with_one_line_and_saves_nothing(tmp_path, prioritized):
    trainer = trained_trainer(tmp_path, prioritized_replay=prioritized)
    with torch.no_grad():
        trainer.policy.actor.q_head.weight[0, 0] = math.nan
    with pytest.raises(NonFiniteError) as raised:
        trainer._update_policy()
    message = str(raised.value)
    assert message.startswith("CartPole-v1: Losses/Q Loss = nan"), message
    assert "at step 20; lower hyperparameters.learning_rate (now 0.0005)" in message
    assert "\n" not in message
    assert trainer.non_finite is raised.value
    # mlagents' end-of-run save (its finally: block) writes nothing from this state.
    before = sorted(os.listdir(tmp_path))
    trainer.save_model()
    assert sorted(os.listdir(tmp_path)) == before


def test_a_checkpoint_of_a_non_finite_state_stops_training_and_writes_nothing(tmp_path):
    trainer = trained_trainer(tmp_path)
    with torch.no_grad():
        trainer.policy.actor.q_head.bias[0] = math.inf
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(NonFiniteError, match=r"^CartPole-v1: non-finite model state Policy/"):
        trainer._checkpoint()  # mlagents' periodic checkpoint
    assert trainer.non_finite is not None
    trainer.save_model()
    assert sorted(os.listdir(tmp_path)) == before


def test_a_huge_learning_rate_stops_within_a_few_updates(tmp_path):
    trainer = trained_trainer(tmp_path, learning_rate=1e30)
    with pytest.raises(NonFiniteError, match=r"learning_rate \(now 1e\+30\)"):
        for step in range(20, 60, 4):
            trainer._step = step
            trainer._update_policy()


def test_mlagents_learn_stops_at_nan_and_keeps_the_last_finite_checkpoint(tmp_path):
    # Seed 1, learning rate 1e30: training starts at step 200 and the Q loss is NaN from
    # the second gradient step; the checkpoint at step ~200 is the last finite one.
    config = basic_config(learning_rate=1e30, buffer_init_steps=200)
    config["behaviors"]["Basic"].update(summary_freq=100, checkpoint_interval=200)
    run = learn(tmp_path, config, max_steps=1000, timeout=120)
    assert run.returncode != 0, run.summary()
    assert "Traceback" not in run.output, run.output[-3000:]
    stops = [line for line in run.output.splitlines() if "training stopped" in line]
    assert len(stops) == 1, run.output[-3000:]
    assert stops[0].startswith("mlagents-learn: training stopped: Basic: Losses/Q Loss = nan")
    assert "lower hyperparameters.learning_rate (now 1e+30)" in stops[0]

    behavior_dir = run.results_dir / "Basic"
    assert not (run.results_dir / "Basic.onnx").exists()  # no end-of-run model from NaN
    state = torch.load(behavior_dir / "checkpoint.pt", weights_only=False)
    assert non_finite_entries(state) == []
    status = yaml.safe_load((run.results_dir / "run_logs" / "training_status.json").read_text())
    checkpoints = status["Basic"]["checkpoints"]
    assert checkpoints, status  # what training_status lists is what is on disk
    for checkpoint in checkpoints:
        assert os.path.exists(checkpoint["file_path"]), checkpoint
    onnx_files = sorted(behavior_dir.glob("Basic-*.onnx"))
    assert onnx_files
    for onnx_file in onnx_files:
        session = ort.InferenceSession(str(onnx_file))
        names = {i.name for i in session.get_inputs()}
        feed = {"obs_0": np.eye(20, dtype=np.float32), "action_masks": np.ones((20, 3), np.float32)}
        outputs = session.run(None, {k: v for k, v in feed.items() if k in names})
        for output in outputs:
            assert np.isfinite(np.asarray(output, np.float64)).all(), onnx_file
