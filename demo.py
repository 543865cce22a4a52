#!/usr/bin/env python3
"""Train DQN on Basic and A2C on 3DBall with no Unity, from a fresh machine with python3.

    python3 demo.py

Creates ``.venv-demo`` (mlagents 1.1.0 with this repository's packages; on Python 3.11
through the corrected metadata in ``uv.toml``), runs the real ``mlagents-learn`` twice
against the Python environments of mla-envs, prints progress while they train, runs each
exported ONNX model once in onnxruntime, and ends with a table of the rewards reached, next
to each environment's maximum and random score, and where the results are. Only the
standard library is needed to start it.

    python3 demo.py --steps 200000      # longer runs (default: DQN 8,000, A2C 150,000)
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import socket
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv-demo"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
#: Every package of the tree but mla-sweep (Ray is large, and the demo does not sweep).
PACKAGES = sorted(
    path.parent.name
    for path in ROOT.glob("packages/*/pyproject.toml")
    if path.parent.name != "mla-sweep"
)
#: The fewest steps a run may have: every trainer has then updated and reported.
MIN_STEPS = 1_000
#: Summaries a run of the demo prints at least (its YAML's summary_freq is lowered to fit).
MIN_SUMMARIES = 5
#: Versions of onnxruntime that run the exported models; with mla-protobuf the current
#: protobuf it brings keeps mlagents working.
ONNXRUNTIME = "onnxruntime>=1.15"

#: Mean reward per episode of the best policy and of uniformly random actions.
#: Basic: the best walks right 7 steps, 1 - 7 * 0.01 = 0.93. A random walk from 10 (holding
#: with probability 1/3) reaches the large goal at 17 before the small one at 7 with
#: probability 3/10, after 3 * 7 * 1.5 = 31.5 steps on average: 0.3 + 0.7 * 0.1 - 0.315.
#: 3DBall: +0.1 per decision for 1000 decisions is 100; random actions drop the ball after
#: about 20 decisions: 1.1 (500 episodes of mla-envs' 3DBall; seeds 0-2 gave 1.08-1.13).
SCORES = {"Basic": {"max": 0.93, "random": 0.055}, "3DBall": {"max": 100.0, "random": 1.1}}


@dataclass(frozen=True)
class Run:
    """One training of the demo: ``config`` (a shipped YAML) on ``env`` (an mla-envs script)."""

    label: str
    config: str
    env: str
    run_id: str
    behavior: str
    default_steps: int


#: The default budgets: minutes each. A2C's 3DBall YAML is made for 500k steps (learning
#: rate 3e-4, decaying to 0 at max_steps); fitted to 150k it reached 14.9 in 137 s (seed 1,
#: 2026-12-06; random 1.6), fitted to 60k only 3.1.
RUNS = {
    "dqn": Run("DQN / Basic", "dqn_basic.yaml", "mla-env-basic", "demo-dqn-basic", "Basic", 8_000),
    "a2c": Run(
        "A2C / 3DBall", "a2c_3DBall.yaml", "mla-env-3dball", "demo-a2c-3dball", "3DBall", 150_000
    ),
}
SUMMARY = re.compile(
    r"\[INFO\] (?P<behavior>\S+)\. Step: (?P<step>\d+)\..*Mean Reward: (?P<reward>-?\d+(?:\.\d+)?)"
)


def run_quiet(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(
            f"demo: {' '.join(command[:4])} ... failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )


def torch_pin() -> list[str]:
    """The CPU torch wheel in the folder of TORCH_CPU_WHEELS (README's name for it), else of
    PIP_FIND_LINKS, if that folder has one (never the CUDA build)."""
    folder = os.environ.get("TORCH_CPU_WHEELS") or os.environ.get("PIP_FIND_LINKS", "")
    wheels = sorted(glob.glob(os.path.join(folder, "torch-*.whl"))) if folder else []
    return (
        ["--find-links", folder, f"torch=={Path(wheels[-1]).name.split('-')[1]}"] if wheels else []
    )


def install(mlagents: str) -> None:
    """Create ``.venv-demo`` with mlagents, the packages and onnxruntime (once), and check
    that mlagents imports next to onnxruntime."""
    uv_install = [
        str(BIN / "python"), "-m", "uv", "pip", "install", "-q", "--python", str(BIN / "python"),
        "--config-file", str(ROOT / "uv.toml"),
    ]  # fmt: skip
    if not (BIN / "mlagents-learn").exists():
        print(
            f"[demo] creating {VENV.name} with mlagents {mlagents} (about a minute)...", flush=True
        )
        venv.create(VENV, with_pip=True)
        run_quiet(
            str(BIN / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "uv"
        )
        run_quiet(
            *uv_install, f"mlagents=={mlagents}", *torch_pin(), ONNXRUNTIME,
            *[str(ROOT / "packages" / p) for p in PACKAGES],
        )  # fmt: skip
    elif not list((VENV / "lib").glob("python*/site-packages/onnxruntime")):
        print(f"[demo] adding {ONNXRUNTIME} to {VENV.name}...", flush=True)
        run_quiet(*uv_install, ONNXRUNTIME)
    check = subprocess.run(
        [str(BIN / "python"), "-c", "import mlagents.trainers.learn, onnxruntime"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        reason = (check.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"demo: mlagents does not import in {VENV}: {reason}; delete it and run again")
    print(f"[demo] environment ready: {VENV}", flush=True)


def in_venv(function: str, *args: str) -> str:
    """Call ``function`` of this file with ``args`` in ``.venv-demo``'s Python (which has
    PyYAML, numpy and onnxruntime); its printed result, or ``failed: <last error line>``."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import demo; "
        f"print(demo.{function}(*sys.argv[1:]))"
    )
    result = subprocess.run(
        [str(BIN / "python"), "-c", code, *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        return "failed: " + (result.stderr.strip().splitlines() or ["no output"])[-1]
    return result.stdout.strip()


def shipped_config(name: str) -> str:
    result = subprocess.run(
        [str(BIN / "mla-plugin"), "config", name], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def fit_to_budget(config: dict[str, Any], steps: int) -> dict[str, Any]:
    """``config`` (a trainer YAML) resized to a run of ``steps`` steps, in place.

    ``max_steps`` is ``steps``, so the linear schedules (learning rate, A2C's beta) decay over
    the run; ``summary_freq`` gives at least :data:`MIN_SUMMARIES` summaries; DQN's
    exploration ends by half of the run.
    """
    for behavior in config["behaviors"].values():
        behavior["max_steps"] = steps
        frequency = behavior.get("summary_freq", 50_000)  # mlagents' default
        behavior["summary_freq"] = min(frequency, steps // MIN_SUMMARIES)
        hyperparameters = behavior.get("hyperparameters", {})
        if "exploration_steps" in hyperparameters:
            hyperparameters["exploration_steps"] = min(
                hyperparameters["exploration_steps"], steps // 2
            )
    return config


def write_budget_config(source: str, destination: str, steps: str) -> str:
    """Write ``source`` fitted to ``steps`` steps (:func:`fit_to_budget`) to ``destination``;
    runs in ``.venv-demo`` (PyYAML)."""
    import yaml

    with open(source) as file:
        config = fit_to_budget(yaml.safe_load(file), int(steps))
    with open(destination, "w") as file:
        yaml.safe_dump(config, file, sort_keys=False)
    return destination


def onnx_action(model: str) -> str:
    """What the exported model does and whether Unity would load it: the greedy action for a
    zero observation (every action allowed), run once in onnxruntime, then the verdict of
    ``mla-plugin check-model``; e.g. ``discrete [2], Unity ok``. Runs in ``.venv-demo``."""
    import numpy as np
    import onnxruntime

    from mla_plugin_core.io.model_check import check_model

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = {}
    for node in session.get_inputs():
        shape = [size if isinstance(size, int) else 1 for size in node.shape]  # batch of 1
        feed[node.name] = (np.ones if "mask" in node.name else np.zeros)(shape, np.float32)
    names = [node.name for node in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, feed), strict=True))
    actions = []
    for kind in ("continuous", "discrete"):
        if f"deterministic_{kind}_actions" in outputs:
            values = outputs[f"deterministic_{kind}_actions"][0]
            shown = ", ".join(f"{v:.2f}" if kind == "continuous" else str(int(v)) for v in values)
            actions.append(f"{kind} [{shown}]")
    action = " ".join(actions) or f"no action output (outputs: {', '.join(names)})"
    broken = check_model(model)
    return f"{action}, " + ("Unity ok" if not broken else f"Unity: {broken[0]}")


def free_port() -> int:
    """A port free on localhost now (the system's choice): runs started at the same time
    (another demo, a test, a training) must not meet on mlagents' default 5005."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("localhost", 0))
        return int(probe.getsockname()[1])


def train(run: Run, steps: int) -> dict[str, Any]:
    """Run mlagents-learn, echoing each summary line; return the last summary, the ONNX
    check and where the results are."""
    label, run_id = run.label, run.run_id
    budget = ROOT / "results" / f"{run_id}.yaml"
    budget.parent.mkdir(exist_ok=True)
    written = in_venv("write_budget_config", shipped_config(run.config), str(budget), str(steps))
    if written != str(budget):
        sys.exit(f"demo: cannot write {budget}: {written}")
    command = [
        str(BIN / "mlagents-learn"), str(budget), "--run-id", run_id, "--force",
        "--env", str(BIN / run.env), "--results-dir", str(ROOT / "results"), "--seed", "1",
        "--base-port", str(free_port()),
    ]  # fmt: skip
    print(
        f"\n[demo] {label}, {steps} steps (max_steps of its YAML, which its schedules follow): "
        f"{' '.join(Path(c).name if '/' in c else c for c in command)}",
        flush=True,
    )
    start = time.time()
    last: dict = {}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            match = SUMMARY.search(line)
            if match:
                last = {"step": int(match["step"]), "reward": float(match["reward"])}
                print(
                    f"  {label:<14} step {last['step']:>7}  mean reward {last['reward']:8.3f}",
                    flush=True,
                )
    seconds = time.time() - start
    if process.returncode != 0:
        print(f"[demo] {label} exited with {process.returncode}", flush=True)
    model = ROOT / "results" / run_id / f"{run.behavior}.onnx"
    onnx = in_venv("onnx_action", str(model)) if model.exists() else "no model"
    print(f"[demo] {model.relative_to(ROOT)} in onnxruntime: {onnx}", flush=True)
    return {
        **last,
        "label": label,
        "behavior": run.behavior,
        "seconds": seconds,
        "onnx": onnx,
        "results": ROOT / "results" / run_id,
        "ok": process.returncode == 0 and onnx.endswith("Unity ok"),
    }


def table(results: list[dict[str, Any]]) -> str:
    """The final table: per run the last summary's step and mean reward next to the
    environment's maximum and random score (:data:`SCORES`), the ONNX check, the time and
    the results folder."""
    lines = [
        "| run          |   steps | mean reward |    max | random | ONNX action (zero obs.), Unity "
        "| time  | results",
        "|--------------|---------|-------------|--------|--------|--------------------------------"
        "|-------|--------",
    ]
    for run in results:
        scores = SCORES[run["behavior"]]
        lines.append(
            f"| {run['label']:<12} | {run.get('step', 0):>7} "
            f"| {run.get('reward', float('nan')):>11.3f} | {scores['max']:>6g} "
            f"| {scores['random']:>6g} | {run['onnx']:<30} | {run['seconds']:>4.0f}s "
            f"| {run['results']}"
        )
    return "\n".join(lines)


def steps_argument(text: str) -> int:
    """argparse type of the step counts: an integer >= :data:`MIN_STEPS`."""
    try:
        steps = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if steps < MIN_STEPS:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_STEPS}, got {steps}")
    return steps


class OneLineParser(argparse.ArgumentParser):
    """Errors are one line, ``demo.py: error: <message>`` (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``steps`` maps each run's key in :data:`RUNS` to its number of steps."""
    parser = OneLineParser(
        prog="demo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mlagents",
        default="1.1.0",
        choices=["0.30.0", "1.0.0", "1.1.0"],
        help="mlagents release of .venv-demo when it is created (default %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=steps_argument,
        help=f"steps of every run, at least {MIN_STEPS} (default: "
        + ", ".join(f"{run.label} {run.default_steps}" for run in RUNS.values())
        + ")",
    )
    for key, run in RUNS.items():
        parser.add_argument(
            f"--{key}-steps",
            type=steps_argument,
            help=f"steps of {run.label} (default: --steps, else {run.default_steps})",
        )
    args = parser.parse_args(argv)
    args.steps = {
        key: getattr(args, f"{key}_steps") or args.steps or run.default_steps
        for key, run in RUNS.items()
    }
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install(args.mlagents)
    results = [train(run, args.steps[key]) for key, run in RUNS.items()]
    print()
    print(table(results))
    print(
        "\nmax: the best possible mean reward; random: uniformly random actions. Longer runs: "
        "python3 demo.py --steps N"
    )
    print(f"TensorBoard: {BIN / 'tensorboard'} --logdir {ROOT / 'results'}")
    failed = [run["label"] for run in results if not run["ok"]]
    if failed:
        print(f"[demo] failed: {', '.join(failed)} (see its output above)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
