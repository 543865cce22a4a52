"""Sweep files: what is accepted, the trials it makes, and one-line refusals naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mla_sweep.config import SweepConfigError, load_sweep, set_dotted


def refusal(path) -> str:
    with pytest.raises(SweepConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_grid_times_seeds_and_overrides(sweep_file):
    sweep = load_sweep(
        sweep_file(
            {
                "seeds": [1, 2, 3],
                "grid": {
                    "behaviors.Basic.hyperparameters.n_step": [1, 3],
                    # absent from the YAML, present in mlagents' defaults: allowed
                    "behaviors.Basic.hyperparameters.double_dqn": [True, False],
                },
            }
        )
    )
    assert len(sweep.variants) == 4 and sweep.seeds == [1, 2, 3]
    config = sweep.trial_config(sweep.variants[-1])
    assert config["behaviors"]["Basic"]["hyperparameters"]["n_step"] == 3
    assert config["behaviors"]["Basic"]["hyperparameters"]["double_dqn"] is False
    assert config["behaviors"]["Basic"]["hyperparameters"]["learning_rate"] == 1.0e-3
    assert "sweep" not in config
    # the sweep's own trainer config is left as it was
    assert "double_dqn" not in sweep.trainer_config["behaviors"]["Basic"]["hyperparameters"]


def test_search_draws_fixed_points_within_bounds(sweep_file):
    spec = {
        "grid": {"behaviors.Basic.hyperparameters.n_step": [1, 3]},
        "search": {
            "behaviors.Basic.hyperparameters.learning_rate": {"loguniform": [1.0e-4, 1.0e-2]},
            "behaviors.Basic.hyperparameters.batch_size": {"choice": [16, 32]},
        },
        "samples": 3,
    }
    first, again = load_sweep(sweep_file(spec)), load_sweep(sweep_file(spec))
    assert len(first.variants) == 6  # 3 points x 2 grid values
    assert first.variants == again.variants  # --resume sees the same configurations
    rates = {v["behaviors.Basic.hyperparameters.learning_rate"] for v in first.variants}
    assert len(rates) == 3 and all(1.0e-4 <= r <= 1.0e-2 for r in rates)


def test_a_point_drawn_twice_is_not_run_twice(sweep_file):
    key = "behaviors.Basic.hyperparameters.batch_size"
    sweep = load_sweep(sweep_file({"search": {key: {"choice": [16, 32]}}, "samples": 4}))
    # two points exist: each once (the draw used to give repeats, run as extra "seeds")
    assert sorted(v[key] for v in sweep.variants) == [16, 32]


def test_asha_spans_the_largest_max_steps_of_the_grid(sweep_file):
    sweep = load_sweep(
        sweep_file({"grid": {"behaviors.Basic.max_steps": [1000, 5000]}, "scheduler": "asha"})
    )
    # ASHA's max_t: a trial with 5000 steps must not be stopped at the YAML's own max_steps
    assert sweep.max_steps == 5000
    assert sweep.scheduler is not None and sweep.scheduler.grace_period == 500
    # --max-steps: the default grace period follows it, a given one is kept (at most max)
    assert sweep.with_max_steps(20000).scheduler.grace_period == 2000
    given = load_sweep(sweep_file({"scheduler": {"asha": {"grace_period": 300}}}))
    assert given.with_max_steps(20000).scheduler.grace_period == 300
    assert given.with_max_steps(200).scheduler.grace_period == 200
    # with Optuna the grid becomes a choice inside Tune, not drawn variants: still spanned
    pytest.importorskip("optuna")
    optuna = load_sweep(
        sweep_file({
            "seeds": [1], "search_alg": "optuna", "scheduler": "asha",
            "grid": {"behaviors.Basic.max_steps": [1000, 5000]},
            "search": {"behaviors.Basic.hyperparameters.learning_rate": {"loguniform": [1e-4, 1e-2]}},
        })
    )  # fmt: skip
    assert optuna.max_steps == 5000


def test_misspelled_key_is_refused_naming_it(sweep_file):
    message = refusal(sweep_file({"grid": {"behaviors.Basic.hyperparameters.n_stp": [1, 3]}}))
    assert message.startswith(
        "sweep.grid: key behaviors.Basic.hyperparameters.n_stp does not exist in the YAML ("
    )
    assert "n_step" in message  # the keys that do exist are listed


def test_unknown_behavior_in_a_key(sweep_file):
    message = refusal(sweep_file({"search": {"behaviors.Basc.max_steps": {"randint": [1, 9]}}}))
    assert message == (
        "sweep.search: key behaviors.Basc.max_steps does not exist in the YAML (behaviors has: Basic)"
    )


def test_value_mlagents_would_refuse(sweep_file):
    message = refusal(sweep_file({"grid": {"behaviors.Basic.hyperparameters.n_step": [0, 3]}}))
    # The key and value once, then what is allowed (not the trainer's whole line again).
    assert message == (
        "sweep.grid: behaviors.Basic.hyperparameters.n_step = 0 is not allowed: "
        "must be an integer >= 1 and <= 100"
    )


def test_search_bound_mlagents_would_refuse(sweep_file):
    message = refusal(
        sweep_file({"search": {"behaviors.Basic.hyperparameters.batch_size": {"randint": [0, 8]}}})
    )
    assert "batch_size = 0 is not allowed" in message


@pytest.mark.parametrize(
    ("sweep", "start"),
    [
        ({"sed": 3}, "sweep.sed: unknown key"),
        ({"seeds": []}, "sweep.seeds:"),
        ({"seeds": [1, 1]}, "sweep.seeds:"),
        ({"seeds": ["one"]}, "sweep.seeds:"),
        ({"env": "no-such-env-here"}, "sweep.env:"),
        ({"grid": {"behaviors.Basic.max_steps": []}}, "sweep.grid:"),
        ({"grid": {"behaviors.Basic.max_steps": 5}}, "sweep.grid:"),
        ({"search": {"behaviors.Basic.max_steps": {"normal": [1, 2]}}}, "sweep.search:"),
        (
            {"search": {"behaviors.Basic.hyperparameters.tau": {"uniform": [0.5, 0.1]}}},
            "sweep.search:",
        ),
        (
            {"search": {"behaviors.Basic.hyperparameters.tau": {"loguniform": [0, 0.1]}}},
            "sweep.search:",
        ),
        ({"samples": 4}, "sweep.samples:"),
        ({"metric": {"mode": "maximum"}}, "sweep.metric.mode:"),
        ({"metric": {"nme": "x"}}, "sweep.metric.nme: unknown key"),
        ({"metric": {"behavior": "Other"}}, "sweep.metric.behavior:"),
        ({"scheduler": "hyperband"}, "sweep.scheduler:"),
        (
            {"scheduler": {"asha": {"reduction_factor": 1}}},
            "sweep.scheduler.asha.reduction_factor:",
        ),
        ({"resources": {"cpu": 0}}, "sweep.resources.cpu:"),
        ({"resources": {"gpu": 1}}, "sweep.resources.gpu: unknown key"),
        ({"learn_args": ["--base-port", "5005"]}, "sweep.learn_args:"),
        ({"search_alg": "bayes"}, "sweep.search_alg:"),
        # Ray's own check of the bounds (was a ValueError traceback)
        (
            {"search": {"behaviors.Basic.hyperparameters.tau": {"quniform": [1e-4, 1e-3, 3e-4]}}},
            "sweep.search: behaviors.Basic.hyperparameters.tau: quniform",
        ),
        # mlagents-learn's --seed would win: the "configurations" would be one run
        ({"grid": {"env_settings.seed": [5, 6]}}, "sweep.grid: key env_settings.seed is set"),
        # Ray asserts grace_period <= max_t once the sweep starts
        (
            {"scheduler": {"asha": {"grace_period": 10**9}}},
            "sweep.scheduler.asha.grace_period: 1000000000 is not allowed: must be <= max_steps",
        ),
    ],
)
def test_bad_sweep_blocks(sweep_file, sweep, start):
    assert refusal(sweep_file(sweep)).startswith(start)


def test_trainer_yaml_mlagents_refuses(sweep_file):
    trainer = {"behaviors": {"Basic": {"trainer_type": "dqn", "hyperparameters": {"lr": 1}}}}
    assert refusal(sweep_file({}, trainer=trainer)).startswith("behaviors: mlagents refuses")


def test_set_dotted_creates_missing_mappings():
    config = {"behaviors": {"Basic": {}}}
    set_dotted(config, "behaviors.Basic.hyperparameters.n_step", 5)
    assert config == {"behaviors": {"Basic": {"hyperparameters": {"n_step": 5}}}}


def test_cli_prints_one_line_and_starts_nothing(sweep_file, tmp_path):
    path = sweep_file({"grid": {"behaviors.Basic.hyperparameters.n_stp": [1, 3]}})
    storage = tmp_path / "storage"
    done = subprocess.run(
        [sys.executable, "-m", "mla_sweep.cli", "run", str(path), "--storage", str(storage)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("mla-sweep")]
    assert (
        lines == [line for line in done.stderr.splitlines() if "configuration error" in line]
        and len(lines) == 1
    ), done.stderr
    assert lines[0].startswith(
        "mla-sweep: configuration error: sweep.grid: key behaviors.Basic.hyperparameters.n_stp"
    )
    assert not storage.exists()


def test_learner_mla_learn_runs_the_trial_with_mla_learn_on_the_sweeps_cluster(
    sweep_file, tmp_path
):
    from mla_sweep.trial import learn_command

    sweep = load_sweep(sweep_file({"learner": "mla-learn", "num_envs": 2}))
    command = learn_command(
        sweep, tmp_path / "c.yaml", tmp_path, "r", 1, 20000, False, "10.0.0.1:6379"
    )
    assert command[1:6] == ["-m", "mla_sweep.learn", "--mla-learn", "--address", "10.0.0.1:6379"]
    plain = load_sweep(sweep_file({"num_envs": 2}, name="plain"))
    assert plain.learner == "mlagents-learn"
    assert "--address" not in learn_command(
        plain, tmp_path / "c.yaml", tmp_path, "r", 1, 20000, False
    )


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"learner": "mla_learn"}, "sweep.learner"),
        ({"learn_args": ["--address", "x"]}, "sweep.learn_args"),
    ],
)
def test_learner_values_and_its_address_are_checked(sweep_file, block, key):
    message = refusal(sweep_file(block))
    assert message.startswith(key), message


def test_the_default_storage_folder_is_ignored_by_git_in_this_repository():
    # the bug this catches: `mla-sweep run` at the repository root (as README's commands do)
    # leaves its trial folders as untracked files for `git add -A` to commit
    from pathlib import Path

    from mla_sweep.runner import DEFAULT_STORAGE

    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        pytest.skip("not in the repository's checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"{DEFAULT_STORAGE}/sweep/trial_0/x"], cwd=root
    )
    assert ignored.returncode == 0, f"{DEFAULT_STORAGE}/ is not in .gitignore"
