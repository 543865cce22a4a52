"""How much a trained 3DBall policy depends on its observation statistics.

Loads the final checkpoints of mla-sweep trials of ``a2c_3DBall.yaml`` (mlagents' own
``SimpleActor``, the run's ``network_settings``) and plays each in mla-envs' ``Ball3DEnv``
(12 agents, 5,000 decisions, actions sampled and clipped as mlagents does) with the
normaliser's standard deviation multiplied by each ``--scales`` value: 1 is the policy as
trained; 0.8 is the same network after the statistics narrowed by 20 %, which is what
mlagents' running normaliser does as an agent keeps balancing. Prints the mean episode
return per trial and scale, and how narrow the states the policy visits are next to the
statistics it was trained with (their standard deviation over the normaliser's: below 1,
the normaliser still has to shrink towards them), and writes them to ``gain.csv``.

    python benchmarks/a2c_3dball_gain.py .bench-storage/a2c-3dball-heldout --decisions 2000 \\
        --out benchmarks/results/a2c-3dball-diagnosis
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np
import yaml

SCALES = (0.6, 0.8, 1.0, 1.25, 1.6)


def load_actor(checkpoint: Path, configuration: Path):  # noqa: ANN201 (torch module)
    from mlagents.torch_utils import torch
    from mlagents.trainers.settings import NetworkSettings
    from mlagents.trainers.torch_entities.networks import SimpleActor
    from mlagents_envs.base_env import ActionSpec, ObservationSpec, ObservationType
    from mlagents_envs.base_env import DimensionProperty as Dim

    from mla_plugin_core.networks.activation import set_activation

    behavior = yaml.safe_load(configuration.read_text())["behaviors"]["3DBall"]
    network = behavior.get("network_settings", {})
    hyper = behavior.get("hyperparameters", {})
    settings = NetworkSettings(
        normalize=network.get("normalize", False),
        hidden_units=network.get("hidden_units", 128),
        num_layers=network.get("num_layers", 2),
    )
    spec = ObservationSpec((8,), (Dim.NONE,), ObservationType.DEFAULT, "obs")
    actor = SimpleActor(
        [spec],
        settings,
        ActionSpec.create_continuous(2),
        conditional_sigma=hyper.get("conditional_sigma", False),
        tanh_squash=False,
    )
    set_activation(actor, hyper.get("activation", "swish"))
    actor.load_state_dict(torch.load(checkpoint, weights_only=False)["Policy"])
    return actor.eval()


def play(actor, scale: float, seed: int, decisions: int) -> tuple[float, np.ndarray]:  # noqa: ANN001
    """Mean return of the episodes that ended within ``decisions`` steps of 12 agents, and
    the standard deviation of the observations the agents saw."""
    from mlagents.torch_utils import torch

    from mla_envs.envs.ball3d import Ball3DEnv
    from mla_envs.envs.base import Actions

    normalizer = actor.network_body.processors[0].normalizer
    saved = normalizer.running_variance.clone()
    normalizer.running_variance.mul_(scale**2)
    env = Ball3DEnv()
    env.seed(seed)
    torch.manual_seed(seed)
    obs = env.reset().observations[0]
    running = np.zeros(env.num_agents)
    returns: list[float] = []
    seen: list[np.ndarray] = []
    try:
        for _ in range(decisions):
            with torch.no_grad():
                action, _, _ = actor.get_action_and_stats([torch.as_tensor(obs)])
            sampled = torch.clamp(action.continuous_tensor, -3, 3) / 3  # mlagents' clip
            terminal, decision = env.step(
                Actions(sampled.numpy(), np.zeros((env.num_agents, 0), np.int32))
            )
            ended = np.zeros(env.num_agents, dtype=bool)
            ended[terminal.agent_ids] = True
            for agent, reward in zip(terminal.agent_ids, terminal.rewards, strict=True):
                returns.append(running[agent] + reward)
            running = np.where(ended, 0.0, running + decision.rewards)
            obs = decision.observations[0]
            seen.append(obs)
    finally:
        normalizer.running_variance.copy_(saved)
    return (float(np.mean(returns)) if returns else float("nan")), np.concatenate(seen).std(0)


def normalizer_std(actor) -> np.ndarray:  # noqa: ANN001
    normalizer = actor.network_body.processors[0].normalizer
    return (normalizer.running_variance / normalizer.normalization_steps).sqrt().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", type=Path, nargs="+", help="<storage>/<sweep> folders")
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="folder for gain.csv")
    args = parser.parse_args()

    rows = []
    print("sweep trial " + " ".join(f"x{scale:g}" for scale in args.scales), end=" ")
    print("| std seen / normaliser's std at x1: rotation, ball position, ball velocity")
    for sweep in args.sweeps:
        for run in sorted(sweep.glob("runs/*")):
            match = re.search(r"seed(\d+)", run.name)
            checkpoints = sorted(
                (run / "3DBall").glob("3DBall-*.pt"), key=lambda p: int(p.stem.split("-")[1])
            )
            if not match or not checkpoints:
                continue
            actor = load_actor(checkpoints[-1], run / "configuration.yaml")
            played = {scale: play(actor, scale, args.seed, args.decisions) for scale in args.scales}
            values = [played[scale][0] for scale in args.scales]
            # rotation (2), ball position (3), ball velocity (3): seen std over the normaliser's
            ratio = played.get(1.0, played[args.scales[0]])[1] / normalizer_std(actor)
            groups = [ratio[0:2].mean(), ratio[2:5].mean(), ratio[5:8].mean()]
            rows.append(
                [
                    sweep.name,
                    f"seed {match.group(1)}",
                    checkpoints[-1].stem,
                    *(f"{v:.1f}" for v in values),
                    *(f"{g:.2f}" for g in groups),
                ]
            )
            print(
                sweep.name,
                f"seed {match.group(1)}",
                " ".join(f"{v:6.1f}" for v in values),
                "|",
                " ".join(f"{g:.2f}" for g in groups),
            )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / "gain.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(
                [
                    "sweep",
                    "trial",
                    "checkpoint",
                    *(f"x{s:g}" for s in args.scales),
                    "seen/std rotation",
                    "seen/std position",
                    "seen/std velocity",
                ]
            )
            writer.writerows(rows)


if __name__ == "__main__":
    main()
