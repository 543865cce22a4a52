"""``mla-learn``: ``mlagents-learn`` with batched environment workers, here or on Ray.

    mla-learn config.yaml --env ./MyGame.x86_64 --run-id r1 --num-envs 8               # this machine
    mla-learn config.yaml --env /shared/MyGame.x86_64 --run-id r1 --num-envs 32 --address auto

Without ``--address`` the workers are processes of this machine (``--backend processes``);
with it they are Ray actors spread over the cluster's nodes (``--backend ray``, which also
starts Ray on this machine alone when given without ``--address``).

Every argument of ``mlagents-learn`` means what it means there (mlagents' own parser and
``RunOptions``), and the run is mlagents' own ``run_cli``: the same trainers (built-in and
plugins), the same results folder, checkpoints, ONNX models, TensorBoard events and
``--resume``. Only the environment manager differs (:class:`mla_ray.env_manager.WorkerEnvManager`),
put in place of ``SubprocessEnvManager`` in this process only.

mla-learn's own options come first in ``--help`` and are taken out before mlagents parses
the rest.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from mla_ray.version import __version__

#: Ray CPUs per worker when not given: the worker process plus its environment executable.
DEFAULT_CPUS_PER_WORKER = 1.0
#: Where the environment workers run (see --backend).
BACKENDS = ("processes", "ray")
#: How Ray spreads the workers over the nodes (--placement: Ray scheduling strategies).
PLACEMENTS = {"spread": "SPREAD", "pack": "DEFAULT"}


def own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mla-learn",
        add_help=False,
        description="mlagents-learn with batched environment workers on this machine or a "
        "Ray cluster. Every mlagents-learn argument is accepted; these are mla-learn's own:",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="a Ray cluster to join ('auto', or HOST:PORT of `ray start --head`); its "
        "nodes run the environment workers",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="where the workers run: 'processes' of this machine (the default without "
        "--address) or Ray actors ('ray': the default with --address; without it, Ray is "
        "started on this machine for this run)",
    )
    parser.add_argument(
        "--placement",
        choices=("spread", "pack"),
        default="spread",
        help="Ray: spread the workers over the nodes (default), or fill one node first",
    )
    parser.add_argument(
        "--cpus-per-worker",
        type=_positive_float,
        default=DEFAULT_CPUS_PER_WORKER,
        help="Ray: CPUs each worker reserves (its environment included), which sets how "
        "many workers a node takes; default 1",
    )
    parser.add_argument(
        "--version", action="version", version=f"mla-learn {__version__}",
        help="print mla-learn's version and exit",
    )  # fmt: skip
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number > 0")
    return value


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, Any]:
    """mla-learn's own options, and mlagents' ``RunOptions`` from the rest."""
    from mlagents.trainers import learn

    ours = own_parser()
    if "-h" in argv or "--help" in argv:
        ours.print_help()
        print("\nmlagents-learn's arguments:\n")
        _describe_config_argument()
    own, rest = ours.parse_known_args(list(argv))
    if own.backend is None:
        own.backend = "ray" if own.address else "processes"
    if own.backend == "processes" and own.address:
        ours.exit(
            2,
            "mla-learn: --address joins a Ray cluster, whose workers are Ray actors: drop "
            "--backend processes, or --address to run the workers on this machine\n",
        )
    options = learn.parse_command_line(rest)
    if options.env_settings.env_path is None:
        ours.exit(
            2,
            "mla-learn: --env is required (an environment executable that exists on every "
            "node); to train with the Unity Editor, use mlagents-learn\n",
        )
    return own, options


def _describe_config_argument() -> None:
    """Give mlagents' positional argument a help text in mla-learn's ``--help`` (mlagents
    prints it bare; this process's parser only, ``mlagents-learn`` is not changed)."""
    from mlagents.trainers.cli_utils import parser

    for action in parser._actions:
        if action.dest == "trainer_config_path" and not action.help:
            action.help = "the trainer YAML (behaviors, environment parameters, ...)"


def install_manager(own: argparse.Namespace) -> None:
    """Make mlagents' ``run_training`` build a :class:`WorkerEnvManager` in this process."""
    from mlagents.trainers import learn

    from mla_ray.backends import Backend, ProcessBackend, RayBackend
    from mla_ray.env_manager import WorkerEnvManager

    def make_manager(env_factory: Any, run_options: Any, n_env: int = 1) -> WorkerEnvManager:
        del env_factory  # each worker makes its own environment, on its own node's ports
        backend: Backend = (
            RayBackend(own.cpus_per_worker, PLACEMENTS[own.placement])
            if own.backend == "ray"
            else ProcessBackend()
        )
        return WorkerEnvManager(
            run_options,
            run_seed=run_options.env_settings.seed,
            num_areas=run_options.env_settings.num_areas,
            log_folder=os.path.abspath(run_options.checkpoint_settings.run_logs_dir),
            n_env=n_env,
            backend=backend,
        )

    learn.SubprocessEnvManager = make_manager  # type: ignore[attr-defined,assignment]


def main(argv: Sequence[str] | None = None) -> int:
    import numpy as np
    from mlagents.trainers import learn

    # `kill -USR1 <pid>` prints every thread's stack (a run that seems stuck)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    own, options = parse(sys.argv[1:] if argv is None else argv)
    n_env = options.env_settings.num_envs
    if options.env_settings.seed == -1:
        # mlagents would draw it inside run_cli; drawn here, every worker gets the same one
        # and configuration.yaml records it
        options.env_settings.seed = int(np.random.randint(0, 10000))
    install_manager(own)
    if own.backend == "processes":
        learn.run_cli(options)
        return 0
    import ray

    from mla_ray import local_ray
    from mla_ray.env_manager import require_workers

    local_cpus = max(os.cpu_count() or 1, int(np.ceil(n_env * own.cpus_per_worker)))
    local_ray.connect(own.address, None if own.address else local_cpus, log_to_driver=False)
    try:
        require_workers(n_env, own.cpus_per_worker, ray.cluster_resources())
        learn.run_cli(options)
    finally:
        local_ray.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
