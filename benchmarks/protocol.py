"""Benchmark: ML-Agents messages and ``mlagents-learn`` throughput, old protobuf vs new.

"old" is a venv with protobuf < 3.21 (pure Python on Python 3.11, mlagents' own pin);
"new" is a venv with protobuf >= 5 (compiled upb) and mla-protobuf's import hook. Both
run in the same invocation, interleaved (old, new, old, new, ...), and every figure is
the median over ``--repeats``:

1. **messages**: per step of N agents (8, 64, 256; Basic's observation, 20 floats), the
   cost of the env's reply (built with mla-envs' ``output_message``, serialized, parsed
   by the trainer) and of the trainer's actions message (built, serialized, parsed).
2. **pipeline ceiling**: agent steps per second through ``mlagents-learn`` with a PPO
   trainer that never updates (``buffer_size`` larger than the run) on mla-envs' Basic
   with 8 and 64 agents (``--num-agents``): what the trainer/env loop sustains.
3. **trainers**: steps per second of mla-dqn's ``dqn_basic.yaml`` and mla-a2c's
   ``a2c_basic.yaml`` on Basic (8 agents), learning as shipped.

Steps per second are measured between mlagents' first and last summary (start-up left
out). Usage::

    python benchmarks/protocol.py --old-python /path/old/bin/python \\
        --new-python /path/new/bin/python [--repeats 3] [--seed 1] [--steps-scale 1.0]
        [--skip-trainers] [--out results.json]

The script itself needs only the standard library; it re-runs itself in each venv
(``--worker ...``) for the measurements, at ``nice`` 10.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MESSAGE_AGENTS = (8, 64, 256)
OBSERVATION_SIZE = 20  # Basic's one-hot position
PIPELINE = {8: 12_000, 64: 40_000}  # agents -> agent steps per run
TRAINER_STEPS = 10_000
TARGETS = {8: 1.5, 64: 3.0}  # acceptance: pipeline ceiling ratio new/old
MESSAGE_PARTS = ("out_build", "out_serialize", "out_parse", "in_build", "in_serialize", "in_parse")


# ---- workers (run inside one venv) -------------------------------------------------------


def protobuf_facts() -> dict:
    """The protobuf this process runs and whether mla-protobuf built the message modules."""
    import google.protobuf
    from google.protobuf.internal import api_implementation
    from mlagents_envs.communicator_objects import unity_message_pb2

    try:
        from mla_protobuf import is_hooked

        hooked = is_hooked(unity_message_pb2)
    except ImportError:
        hooked = False
    return {
        "protobuf": google.protobuf.__version__,
        "implementation": api_implementation.Type(),
        "hooked": hooked,
    }


def seconds_per_call(function, budget: float = 0.1, batches: int = 5) -> float:
    """Median seconds of one ``function()`` call over ``batches`` timed loops of ~``budget``."""
    function()  # warm-up
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < budget / 2:
        function()
        calls += 1
    per_batch = max(1, int(calls * 2))
    timings = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(per_batch):
            function()
        timings.append((time.perf_counter() - start) / per_batch)
    return statistics.median(timings)


def message_costs(agents: int) -> dict[str, float]:
    """Milliseconds per step for each part of one exchange with ``agents`` agents."""
    import numpy as np
    from mlagents_envs.communicator_objects.command_pb2 import STEP
    from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto

    from mla_envs.envs.base import AgentBatch, BehaviorSpec
    from mla_envs.protocol.messages import output_message, read_actions

    spec = BehaviorSpec("Basic", ((OBSERVATION_SIZE,),), discrete_branches=(3,))
    rng = np.random.default_rng(0)
    positions = rng.integers(0, OBSERVATION_SIZE, agents)
    decision = AgentBatch(
        agent_ids=np.arange(agents),
        observations=(np.eye(OBSERVATION_SIZE, dtype=np.float32)[positions],),
        rewards=np.full(agents, -0.01, dtype=np.float32),
        interrupted=np.zeros(agents, dtype=bool),
    )
    terminal = decision.select(np.zeros(agents, dtype=bool))
    actions = rng.integers(0, 3, agents).tolist()

    def out_build():
        return output_message([(spec, terminal, decision)], b"", with_specs=False)

    reply = out_build()
    reply_bytes = reply.SerializeToString()

    def in_build():
        message = UnityMessageProto()
        message.header.status = 200
        rl_input = message.unity_input.rl_input
        rl_input.command = STEP
        values = rl_input.agent_actions["Basic"].value
        for action in actions:
            values.add().discrete_actions.append(action)
        return message

    request = in_build()
    request_bytes = request.SerializeToString()

    def in_parse():
        parsed = UnityMessageProto.FromString(request_bytes)
        return read_actions(parsed.unity_input.rl_input, spec, agents)

    parts = {
        "out_build": out_build,
        "out_serialize": reply.SerializeToString,
        "out_parse": lambda: UnityMessageProto.FromString(reply_bytes),
        "in_build": in_build,
        "in_serialize": request.SerializeToString,
        "in_parse": in_parse,
    }
    return {name: 1000 * seconds_per_call(function) for name, function in parts.items()}


def pipeline_config(steps: int) -> dict:
    """PPO on Basic that never updates: the buffer never fills within ``steps``."""
    return {
        "behaviors": {
            "Basic": {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 64, "buffer_size": 64 * (steps // 32 + 2)},
                "network_settings": {"hidden_units": 20, "num_layers": 2},
                "reward_signals": {"extrinsic": {"gamma": 0.9, "strength": 1.0}},
                "max_steps": steps,
                "time_horizon": 64,
                "summary_freq": steps // 6,
            }
        }
    }


def shipped_config(package: str, name: str, steps: int) -> dict:
    from importlib import resources

    import yaml

    config = yaml.safe_load((resources.files(package) / "configs" / name).read_text())
    for behavior in config["behaviors"].values():
        behavior["max_steps"] = steps
        behavior["summary_freq"] = steps // 6
    return config


def learn_rate(case: str, agents: int, steps: int, seed: int) -> float:
    """Agent steps per second of one ``mlagents-learn`` run (``case``: pipeline/dqn/a2c)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from dqn import steps_per_second  # one home for reading mlagents' summary lines

    from mla_plugin_core.testing import run_mlagents_learn

    if case == "pipeline":
        config = pipeline_config(steps)
    else:
        config = shipped_config(f"mla_{case}", f"{case}_basic.yaml", steps)
    with tempfile.TemporaryDirectory() as work:
        run = run_mlagents_learn(
            config,
            env="Basic",
            results_dir=work,
            run_id=f"{case}-{agents}",
            seed=seed,
            env_args=["--num-agents", str(agents)],
            timeout=1800,
        )
    rate = steps_per_second(run)
    if run.returncode != 0 or rate is None:
        raise SystemExit(f"{case} with {agents} agents failed:\n{run.summary()}")
    return rate


def worker(args: argparse.Namespace) -> None:
    result: dict = {"facts": protobuf_facts()}
    if args.worker == "messages":
        result["messages"] = {str(n): message_costs(n) for n in args.agents}
    else:
        result["rate"] = learn_rate(args.worker, args.agents[0], args.steps, args.seed)
    print("RESULT " + json.dumps(result), flush=True)


# ---- orchestration (any Python) ---------------------------------------------------------


def run_worker(python: str, *args: str) -> dict:
    command = [python, str(Path(__file__).resolve()), "--worker", *args]
    completed = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def ratio(old: float, new: float) -> str:
    return f"{old / new:.1f}x" if new > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-python", help="python of the venv with protobuf < 3.21")
    parser.add_argument("--new-python", help="python of the venv with protobuf >= 5 + hook")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-trainers", action="store_true", help="no DQN/A2C runs")
    parser.add_argument(
        "--steps-scale", type=float, default=1.0, help="scale every run's steps (busy machine)"
    )
    parser.add_argument("--out", type=Path, help="write all results as JSON")
    parser.add_argument("--summarize", type=Path, help="print the tables of a saved --out file")
    parser.add_argument("--worker", choices=["messages", "pipeline", "dqn", "a2c"])
    parser.add_argument("--agents", type=int, nargs="+", default=list(MESSAGE_AGENTS))
    parser.add_argument("--steps", type=int, default=TRAINER_STEPS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.summarize:
        saved = json.loads(args.summarize.read_text())
        summarize(saved["raw"], saved["facts"], args.repeats)
        return None
    if not (args.old_python and args.new_python):
        parser.error("--old-python and --new-python are required")
    os.nice(10)
    sides = {"old": args.old_python, "new": args.new_python}
    cases = [("messages", None, None)]
    scaled = lambda steps: int(steps * args.steps_scale)  # noqa: E731
    cases += [("pipeline", agents, scaled(steps)) for agents, steps in PIPELINE.items()]
    if not args.skip_trainers:
        cases += [("dqn", 8, scaled(TRAINER_STEPS)), ("a2c", 8, scaled(TRAINER_STEPS))]
    raw: dict = {side: {} for side in sides}
    facts: dict = {}
    for repeat in range(args.repeats):
        for case, agents, steps in cases:
            for side, python in sides.items():
                if case == "messages":
                    extra = ["--agents", *map(str, MESSAGE_AGENTS)]
                else:
                    extra = ["--agents", str(agents), "--steps", str(steps)]
                result = run_worker(python, case, *extra, "--seed", str(args.seed))
                facts[side] = result["facts"]
                key = case if agents is None else f"{case}-{agents}"
                value = result.get("messages", result.get("rate"))
                raw[side].setdefault(key, []).append(value)
                shown = f"{value:.0f} agent steps/s" if case != "messages" else "done"
                print(f"[{repeat + 1}/{args.repeats}] {key:<12} {side}: {shown}", flush=True)
                if args.out:  # after every run, so that an interrupted benchmark keeps its data
                    args.out.write_text(json.dumps({"raw": raw, "facts": facts}, indent=1))
    report = summarize(raw, facts, args.repeats)
    if args.out:
        args.out.write_text(json.dumps({"raw": raw, "facts": facts, **report}, indent=1))


def summarize(raw: dict, facts: dict, repeats: int) -> dict:
    """Print the tables (medians over repeats) and return them."""
    print()
    for side, fact in facts.items():
        hooked = "hook" if fact["hooked"] else "no hook"
        print(f"{side}: protobuf {fact['protobuf']} ({fact['implementation']}, {hooked})")
    repeats = len(raw["old"].get("messages", [])) or repeats
    print(f"\nMessages, ms per step (median of {repeats}); out = env reply, in = actions")
    header = "".join(f"{p:>14}" for p in (*MESSAGE_PARTS, "total"))
    print(f"{'agents':>8}{'':>5}{header}")
    messages: dict = {}
    for agents in map(str, MESSAGE_AGENTS):
        rows = {}
        for side in raw:
            runs = raw[side]["messages"]
            rows[side] = {p: statistics.median(r[agents][p] for r in runs) for p in MESSAGE_PARTS}
            rows[side]["total"] = sum(rows[side].values())
        messages[agents] = rows
        for side, row in rows.items():
            cells = "".join(f"{row[p]:>14.4f}" for p in (*MESSAGE_PARTS, "total"))
            print(f"{agents:>8}{side:>5}{cells}")
        ratios = "".join(
            f"{ratio(rows['old'][p], rows['new'][p]):>14}" for p in (*MESSAGE_PARTS, "total")
        )
        print(f"{'':>8}{'x':>5}{ratios}")
    print(f"\nmlagents-learn on Basic, agent steps/s (median of {repeats})")
    print(f"{'case':<36}{'old':>10}{'new':>10}{'new/old':>10}{'target':>10}")
    rates: dict = {}
    for key in raw["old"]:
        if key == "messages" or not raw["new"].get(key):
            continue  # an interrupted benchmark: no "new" figure yet
        old, new = (statistics.median(raw[side][key]) for side in ("old", "new"))
        rates[key] = {"old": old, "new": new, "ratio": new / old}
        agents = int(key.rsplit("-", 1)[1])
        target = TARGETS.get(agents) if key.startswith("pipeline") else None
        verdict = (
            "" if target is None else f">={target}: {'met' if new / old >= target else 'NOT met'}"
        )
        label = {"pipeline": "ceiling (PPO, no update)", "dqn": "mla-dqn", "a2c": "mla-a2c"}[
            key.split("-")[0]
        ]
        print(
            f"{label + f', {agents} agents':<36}{old:>10.0f}{new:>10.0f}{new / old:>9.2f}x  {verdict}"
        )
    return {"messages": messages, "rates": rates}


if __name__ == "__main__":
    main()
