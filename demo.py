#!/usr/bin/env python3
"""Train DQN on Basic and A2C on 3DBall with no Unity, from a fresh machine with python3.

    python3 demo.py

Creates ``.venv-demo`` (mlagents 1.1.0 with this repository's packages; on Python 3.11
through the corrected metadata in ``uv.toml``), runs the real ``mlagents-learn`` twice
against the Python environments of mla-envs, prints progress while they train, and ends
with a table of the rewards reached and where the results are. Only the standard library
is needed to start it.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv-demo"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
#: Every package of the tree but mla-sweep (Ray is large, and the demo does not sweep).
PACKAGES = sorted(
    path.parent.name
    for path in ROOT.glob("packages/*/pyproject.toml")
    if path.parent.name != "mla-sweep"
)
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
    """The CPU torch wheel in PIP_FIND_LINKS, if that folder has one (never the CUDA build)."""
    folder = os.environ.get("PIP_FIND_LINKS", "")
    wheels = sorted(glob.glob(os.path.join(folder, "torch-*.whl"))) if folder else []
    return (
        ["--find-links", folder, f"torch=={Path(wheels[-1]).name.split('-')[1]}"] if wheels else []
    )


def install(mlagents: str) -> None:
    if not (BIN / "mlagents-learn").exists():
        print(
            f"[demo] creating {VENV.name} with mlagents {mlagents} (about a minute)...", flush=True
        )
        venv.create(VENV, with_pip=True)
        run_quiet(
            str(BIN / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "uv"
        )
        run_quiet(
            str(BIN / "python"), "-m", "uv", "pip", "install", "-q", "--python", str(BIN / "python"),
            "--config-file", str(ROOT / "uv.toml"), f"mlagents=={mlagents}", *torch_pin(),
            *[str(ROOT / "packages" / p) for p in PACKAGES],
        )  # fmt: skip
    print(f"[demo] environment ready: {VENV}", flush=True)


def shipped_config(name: str) -> str:
    result = subprocess.run(
        [str(BIN / "mla-plugin"), "config", name], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def train(label: str, config: str, env_script: str, run_id: str, max_steps: int) -> dict:
    """Run mlagents-learn, echoing each summary line; return the last summary."""
    budget = ROOT / "results" / f"{run_id}.yaml"
    budget.parent.mkdir(exist_ok=True)
    # Same config, shorter budget: max_steps replaced through a copy of the YAML.
    subprocess.run(
        [str(BIN / "python"), "-c",
         "import sys, yaml; c = yaml.safe_load(open(sys.argv[1]));"
         "[b.update(max_steps=int(sys.argv[3])) for b in c['behaviors'].values()];"
         "yaml.safe_dump(c, open(sys.argv[2], 'w'))", config, str(budget), str(max_steps)],
        check=True,
    )  # fmt: skip
    command = [
        str(BIN / "mlagents-learn"), str(budget), "--run-id", run_id, "--force",
        "--env", str(BIN / env_script), "--results-dir", str(ROOT / "results"), "--seed", "1",
    ]  # fmt: skip
    print(
        f"\n[demo] {label}: {' '.join(Path(c).name if '/' in c else c for c in command)}",
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
    if process.returncode != 0:
        print(f"[demo] {label} exited with {process.returncode}", flush=True)
    return {
        **last,
        "label": label,
        "seconds": time.time() - start,
        "results": ROOT / "results" / run_id,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mlagents", default="1.1.0", choices=["0.30.0", "1.0.0", "1.1.0"])
    parser.add_argument("--dqn-steps", type=int, default=8_000, help="DQN steps on Basic")
    parser.add_argument("--a2c-steps", type=int, default=60_000, help="A2C steps on 3DBall")
    args = parser.parse_args()
    install(args.mlagents)
    runs = [
        train(
            "DQN / Basic",
            shipped_config("dqn_basic.yaml"),
            "mla-env-basic",
            "demo-dqn-basic",
            args.dqn_steps,
        ),
        train(
            "A2C / 3DBall",
            shipped_config("a2c_3DBall.yaml"),
            "mla-env-3dball",
            "demo-a2c-3dball",
            args.a2c_steps,
        ),
    ]
    print("\n| run          |   steps | mean reward | time  | results")
    print("|--------------|---------|-------------|-------|--------")
    for run in runs:
        print(
            f"| {run['label']:<12} | {run.get('step', 0):>7} | {run.get('reward', float('nan')):>11.3f} "
            f"| {run['seconds']:>4.0f}s | {run['results']}"
        )
    print("\nReference: Basic is solved at about 0.93; a random 3DBall policy scores about 1-2.")
    print(f"TensorBoard: {BIN / 'tensorboard'} --logdir {ROOT / 'results'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
