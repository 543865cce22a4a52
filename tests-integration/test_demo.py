"""demo.py's cheap parts: its options, its budget for the shipped YAMLs, its final table,
and the maximum and random scores it states next to the results (the random ones measured
again here on mla-envs' environments)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT

pytestmark = pytest.mark.latest_only  # none of this depends on the mlagents release


def load_demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


demo = load_demo()


def shipped(name: str) -> dict:
    (path,) = ROOT.glob(f"packages/*/src/*/configs/{name}")
    return yaml.safe_load(path.read_text())


def test_steps_sets_every_run_and_each_run_can_be_set_alone():
    assert demo.parse_args([]).steps == {"dqn": 8_000, "a2c": 150_000}
    assert demo.parse_args(["--steps", "200000"]).steps == {"dqn": 200_000, "a2c": 200_000}
    assert demo.parse_args(["--steps", "5000", "--a2c-steps", "7000"]).steps == {
        "dqn": 5_000,
        "a2c": 7_000,
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "10"], "argument --steps: must be at least 1000, got 10"),
        (["--dqn-steps", "many"], "argument --dqn-steps: expected an integer, got 'many'"),
    ],
)
def test_bad_steps_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"demo.py: error: {message}\n"


def test_the_budget_is_written_into_the_config_its_schedules_decay_over():
    a2c = demo.fit_to_budget(shipped("a2c_3DBall.yaml"), 60_000)["behaviors"]["3DBall"]
    assert a2c["max_steps"] == 60_000  # learning_rate and beta: linear to max_steps
    assert a2c["hyperparameters"]["learning_rate_schedule"] == "linear"
    assert a2c["summary_freq"] == 10_000  # the YAML's, already frequent enough
    dqn = demo.fit_to_budget(shipped("dqn_basic.yaml"), 2_000)["behaviors"]["Basic"]
    assert dqn["max_steps"] == 2_000
    assert dqn["summary_freq"] == 400  # 5 summaries, not one at the YAML's 1,000 steps
    assert dqn["hyperparameters"]["exploration_steps"] == 1_000  # half the run, not 3,000
    assert (
        demo.fit_to_budget(shipped("dqn_basic.yaml"), 8_000)["behaviors"]["Basic"][
            "hyperparameters"
        ]["exploration_steps"]
        == 3_000
    )


def test_the_table_shows_each_result_next_to_the_maximum_and_random_score():
    results = [
        {
            "label": "DQN / Basic", "behavior": "Basic", "step": 8000, "reward": 0.929,
            "seconds": 61.0, "onnx": "discrete [2], Unity ok", "results": Path("results/a"),
        },
        {
            "label": "A2C / 3DBall", "behavior": "3DBall", "step": 60000, "reward": 15.5,
            "seconds": 300.0, "onnx": "continuous [0.12, -0.30], Unity ok", "results": Path("results/b"),
        },
    ]  # fmt: skip
    lines = demo.table(results).splitlines()
    header = [cell.strip() for cell in lines[0].split("|")]
    assert header[1:7] == [
        "run", "steps", "mean reward", "max", "random", "ONNX action (zero obs.), Unity",
    ]  # fmt: skip
    rows = [[cell.strip() for cell in line.split("|")][1:] for line in lines[2:]]
    assert rows == [
        ["DQN / Basic", "8000", "0.929", "0.93", "0.055", "discrete [2], Unity ok", "61s",
         "results/a"],
        ["A2C / 3DBall", "60000", "15.500", "100", "1.1", "continuous [0.12, -0.30], Unity ok",
         "300s",
         "results/b"],
    ]  # fmt: skip
    assert len({len(line) for line in lines[:2]}) == 1


def random_policy_score(name: str, episodes: int, seed: int) -> float:
    """Mean return of ``episodes`` episodes of mla-envs' ``name`` under uniformly random
    actions."""
    from mla_envs import envs
    from mla_envs.envs.base import Actions

    env = envs.make(name)
    env.seed(seed)
    rng = np.random.default_rng(seed)
    spec, n = env.spec, env.num_agents
    running = np.zeros(n)
    returns: list[float] = []
    env.reset()
    while len(returns) < episodes:
        discrete = [rng.integers(0, size, n) for size in spec.discrete_branches]
        actions = Actions(
            rng.uniform(-1, 1, (n, spec.continuous_size)).astype(np.float32),
            np.stack(discrete, axis=1).astype(np.int32) if discrete else np.zeros((n, 0), int),
        )
        terminal, decision = env.step(actions)
        running[terminal.agent_ids] += terminal.rewards
        returns += running[terminal.agent_ids].tolist()
        running[terminal.agent_ids] = 0.0
        ended = np.isin(decision.agent_ids, terminal.agent_ids)
        running[decision.agent_ids[~ended]] += decision.rewards[~ended]
    return float(np.mean(returns[:episodes]))


@pytest.mark.parametrize("name, tolerance", [("Basic", 0.03), ("3DBall", 0.15)])
def test_the_random_scores_are_those_of_mla_envs(name, tolerance):
    pytest.importorskip("mla_envs")
    measured = random_policy_score(name, episodes=300, seed=0)
    assert abs(measured - demo.SCORES[name]["random"]) < tolerance, measured


def test_python3_demo_py_as_written(tmp_path):
    """README's first command, verbatim, in a copy of the checkout with only ``python3``:
    it creates ``.venv-demo``, trains both runs with their default budgets, checks each ONNX
    in onnxruntime and prints the table with the maximum and random scores (minutes)."""
    from install_kit import copy_checkout, run_block, user_environment

    quickstart = (ROOT / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "```bash\npython3 demo.py\n```" in quickstart
    checkout = copy_checkout(tmp_path / "mla-plugins")
    output = run_block("python3 demo.py", cwd=checkout, env=user_environment(), timeout=1500)
    labels = tuple(f"| {run.label} " for run in demo.RUNS.values())
    rows = [line for line in output.splitlines() if line.startswith(labels)]
    assert len(rows) == len(demo.RUNS), output[-4000:]
    for row, run in zip(rows, demo.RUNS.values(), strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        label, steps, reward, best, random_score, onnx = cells[:6]
        assert label == run.label and int(steps) >= 0.9 * run.default_steps, row
        assert float(best) == demo.SCORES[run.behavior]["max"], row
        assert float(random_score) == demo.SCORES[run.behavior]["random"], row
        assert onnx.split()[0] in ("discrete", "continuous") and onnx.endswith("Unity ok"), row
    assert "Traceback" not in output, output[-4000:]
