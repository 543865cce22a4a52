"""A2C through the real ``mlagents-learn`` on mla-envs' Basic and 3DBall.

Each run is seeded and CI-sized; the learning thresholds sit well below what the seeded
runs reach (see the numbers next to each assertion), so that they are not flaky.
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from a2c_testkit import make_trainer
from mlagents_envs.base_env import ActionSpec
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import mla_a2c
from mla_plugin_core.testing import run_mlagents_learn
from mla_plugin_core.testing.builders import vector_behavior_spec
from mla_plugin_core.testing.releases import newest_mlagents_only

CONFIGS = Path(mla_a2c.__file__).parent / "configs"
#: The seed every run here uses (the numbers quoted below were measured with it).
SEED = 1


#: 3DBall: a random policy scores about 1.6 (the ball falls after ~16 steps of +0.1). The
#: shipped config decays its learning rate (5e-4) over its first 250k steps whatever
#: max_steps is (learning_rate_decay_steps), so this CI-sized run follows its schedule
#: exactly (seed 1 under this schedule: 29 at 70k, 67 at 90k). The best summary of the second
#: half counts: A2C's summaries dip and recover on 3DBall (README).
BALL_ABOVE_RANDOM = 8.0
BALL_STEPS = 96_000


def learn(tmp_path, config_name, env, **kwargs):
    """``mlagents-learn`` on a shipped config (core's testing kit), seeded."""
    return run_mlagents_learn(
        CONFIGS / config_name, env=env, results_dir=tmp_path, seed=SEED, **kwargs
    )


def train_shipped(tmp_path, config_name, env, max_steps, summary_freq, hyperparameters=None):
    """Train a shipped config for ``max_steps``; the reward curve [(step, reward)]."""
    overrides = {"summary_freq": summary_freq, "hyperparameters": hyperparameters or {}}
    run = learn(tmp_path, config_name, env, max_steps=max_steps, overrides=overrides)
    assert run.returncode == 0, run.summary()
    rewards = run.curve()
    assert rewards and rewards[-1][0] >= max_steps - summary_freq, run.summary()
    return rewards


# Basic's learning run: the conformance kit's test_learns (test_a2c_conformance.py).


#: What A2C writes to TensorBoard to explain an unstable run (README, "Why 3DBall collapsed").
DIAGNOSTICS = (
    "Policy/Sigma",
    "Policy/Mean |mu|",
    "Policy/Mu Beyond Clip",
    "Policy/Update KL",
    "Policy/Advantage Std",
    "Policy/Explained Variance",
    "Policy/Learning Rate",
    "Losses/Gradient Norm",
    "Losses/Value Loss",
    "Losses/Entropy",
    "Losses/Bound Loss",
)


@newest_mlagents_only  # ~1.5 min; the learning does not depend on the release
def test_3dball_balances_clearly_better_than_random(tmp_path):
    rewards = train_shipped(
        tmp_path,
        "a2c_3DBall.yaml",
        "3DBall",
        BALL_STEPS,
        6000,
    )
    second_half = [reward for step, reward in rewards if step > BALL_STEPS // 2]
    assert max(second_half) >= BALL_ABOVE_RANDOM, rewards

    # the diagnostics are in the run's TensorBoard events, at every summary
    events = EventAccumulator(str(tmp_path / "run" / "3DBall"), size_guidance={"scalars": 0})
    events.Reload()
    for tag in DIAGNOSTICS:
        values = [e.value for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []
        assert len(values) == len(rewards) and all(map(np.isfinite, values)), (tag, values)
    sigma = [e.value for e in events.Scalars("Policy/Sigma")]
    assert sigma[0] == pytest.approx(np.exp(-1.5), rel=0.1), sigma  # exp(log_sigma_init)


def test_resume_continues_the_step_count_and_exports_matching_onnx(tmp_path):
    summaries = {"summary_freq": 500}
    run = learn(tmp_path, "a2c_basic.yaml", "Basic", max_steps=1000, overrides=summaries)
    assert run.returncode == 0, run.summary()
    run = learn(
        tmp_path,
        "a2c_basic.yaml",
        "Basic",
        max_steps=2000,
        overrides=summaries,
        extra_args=["--resume"],
    )
    assert run.returncode == 0, run.summary()

    status = json.loads((tmp_path / "run" / "run_logs" / "training_status.json").read_text())
    checkpoint_steps = [c["steps"] for c in status["Basic"]["checkpoints"]]
    assert min(checkpoint_steps) >= 1000 and max(checkpoint_steps) >= 2000, checkpoint_steps
    reward_steps = [step for step, _ in run.curve()]
    assert max(reward_steps) > 1000, reward_steps

    # The final ONNX model has Unity's names and acts as the checkpointed torch policy.
    session = ort.InferenceSession(str(tmp_path / "run" / "Basic.onnx"))
    assert [i.name for i in session.get_inputs()] == ["obs_0", "action_masks"]
    assert [o.name for o in session.get_outputs()] == [
        "version_number",
        "memory_size",
        "discrete_actions",
        "discrete_action_output_shape",
        "deterministic_discrete_actions",
    ]
    behavior = yaml.safe_load((CONFIGS / "a2c_basic.yaml").read_text())["behaviors"]["Basic"]
    trainer = make_trainer(
        vector_behavior_spec(ActionSpec.create_discrete((3,)), obs_size=20),
        tmp_path / "rebuilt",
        hidden_units=behavior["network_settings"]["hidden_units"],
        num_layers=behavior["network_settings"]["num_layers"],
    )
    state = torch.load(tmp_path / "run" / "Basic" / "checkpoint.pt", weights_only=False)
    trainer.policy.actor.load_state_dict(state["Policy"])
    obs = np.eye(20, dtype=np.float32)
    masks = np.ones((20, 3), dtype=np.float32)
    onnx_actions = session.run(
        ["deterministic_discrete_actions"], {"obs_0": obs, "action_masks": masks}
    )[0]
    with torch.no_grad():
        torch_out = trainer.policy.actor([torch.as_tensor(obs)], torch.as_tensor(masks))
    np.testing.assert_array_equal(onnx_actions, torch_out[4].numpy())


@pytest.mark.parametrize(
    "hyperparameters, message",
    [
        ({"beta": -1}, "hyperparameters.beta = -1.0 is not allowed: must be a number >= 0.0"),
        ({"num_epoch": 3}, "hyperparameters.num_epoch = 3 is not allowed: A2C makes one pass"),
    ],
    ids=["negative-beta", "num_epoch-3"],
)
def test_bad_hyperparameter_is_one_clear_line(tmp_path, hyperparameters, message):
    run = learn(tmp_path, "a2c_basic.yaml", "Basic", overrides={"hyperparameters": hyperparameters})
    assert run.returncode != 0
    last_line = [line for line in run.output.splitlines() if line.strip()][-1]
    assert message in last_line, run.summary()
    assert "Traceback" not in run.output
