"""A testing kit for trainer plugins: prove in pytest that a trainer learns, without Unity.

- :func:`run_mlagents_learn` runs the real ``mlagents-learn`` on a trainer YAML against an
  environment executable (the ``mla-env-*`` console scripts of ``mla-envs``) and returns a
  :class:`TrainingRun` with the reward curve read from its TensorBoard events;
  :func:`mlagents_learn_command` gives the same command line, to start it yourself;
  :func:`ppo_basic_smoke_config` is a seconds-long run of built-in PPO for pipeline tests.
- :func:`add_policy_like_mlagents` adds a trainer's policy in a unit test as
  ``mlagents-learn`` does (its end-of-run save follows a failure); :mod:`.builders` makes
  behavior specs, ``TrainerSettings``, trainers and random trajectories for unit tests.
- :mod:`.conformance`: ``PluginConformance``, the tests every plugin's suite subclasses
  (registration, documented hyperparameters, strict booleans, shipped configs, ONNX).
- :mod:`.hyperparameters`: the ``#:`` documentation of settings classes, and the README
  tables generated from it (``python -m mla_plugin_core.testing.hyperparameters README.md``).
- The pytest plugin (loaded automatically when this package is installed) offers the
  fixture ``mla_train``, the same function with ``results_dir`` set to the test's
  temporary folder::

      def test_my_trainer_learns_basic(mla_train):
          run = mla_train("configs/my_basic.yaml", env="Basic", max_steps=20_000)
          assert run.final_reward >= 0.9, run.summary()
"""

from mla_plugin_core.testing.learn import (
    TrainingRun,
    environment_executable,
    mlagents_learn_command,
    ppo_basic_smoke_config,
    read_reward_curve,
    run_mlagents_learn,
)
from mla_plugin_core.testing.trainers import add_policy_like_mlagents

__all__ = [
    "TrainingRun",
    "add_policy_like_mlagents",
    "environment_executable",
    "mlagents_learn_command",
    "ppo_basic_smoke_config",
    "read_reward_curve",
    "run_mlagents_learn",
]
