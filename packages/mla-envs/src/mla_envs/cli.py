"""Console scripts that act as Unity executables for ``mlagents-learn --env``.

``mlagents-learn`` starts an environment executable as::

    <path> -nographics -batchmode --mlagents-port <port> -logFile <file> [env-args...]

so the parser accepts Unity's single-dash flags and ignores what it does not know.
Without ``--mlagents-port`` the environment connects to port 5004, where
``mlagents-learn`` started without ``--env`` waits for the Unity Editor.

Scripts: ``mla-env NAME [NAME ...]`` (several names = several behaviors in one
environment), ``mla-env-basic``, ``mla-env-3dball``, ``mla-env-gym ID [ID ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from importlib import resources

from mla_envs import envs as registry
from mla_envs.envs.base import VectorEnv
from mla_envs.parameters import EnvironmentParameters
from mla_envs.protocol.client import UnityClient
from mla_envs.protocol.lifeline import Lifeline, ancestors, release_orphaned_worker
from mla_envs.version import __version__

logger = logging.getLogger("mla_envs")

EDITOR_PORT = 5004
EXIT_USAGE = 2
#: Parent and grandparent: under mlagents-learn, the env worker and the trainer.
WATCHED_ANCESTORS = 2


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser(prog: str, names_help: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="An ML-Agents environment without Unity: connects to mlagents-learn.",
        allow_abbrev=False,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    parser.add_argument(
        "--mlagents-port",
        "--port",
        type=int,
        default=EDITOR_PORT,
        help="trainer port (mlagents-learn passes it; default %(default)s, the Editor's)",
    )
    parser.add_argument(
        "--num-agents",
        type=positive_int,
        default=None,
        help="agents per behavior (default: Basic 8, 3DBall 12, Gymnasium 8)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="override the seed the trainer sends (default: the trainer's seed)",
    )
    parser.add_argument(
        "--gym-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword for gymnasium.make (VALUE parsed as JSON if it can be); repeatable",
    )
    parser.add_argument(
        "-logFile",
        "-logfile",
        "--log-file",
        dest="log_file",
        default=None,
        help="write the log here (mlagents-learn passes it; stdout is discarded there)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the trainer to listen (default %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=3600.0,
        help="exit after this many seconds without a trainer reply (default %(default)s)",
    )
    parser.add_argument(
        "--stats-period",
        type=float,
        default=5.0,
        help="seconds between stats sent to the trainer (default %(default)s)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="print the path of a trainer YAML shipped with mla-envs and exit "
        "(e.g. ppo_basic.yaml; --config list shows them)",
    )
    parser.add_argument("--list", action="store_true", help="list environments and exit")
    for flag in ("-nographics", "--no-graphics", "-batchmode"):
        parser.add_argument(flag, action="store_true", help="accepted; there is no rendering")
    parser.add_argument("--version", action="version", version=f"mla-envs {__version__}")
    return parser


def gym_kwargs(pairs: Sequence[str]) -> dict:
    """``["k=v", ...]`` -> ``{k: json(v) or v}``."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--gym-kwarg expects KEY=VALUE, got {pair!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def print_config(name: str) -> int:
    """Print the path of a packaged trainer YAML (``list``: all names)."""
    folder = resources.files("mla_envs") / "configs"
    available = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    if name == "list":
        print("\n".join(available))
        return 0
    if name not in available:
        print(f"no config {name!r}; available: {', '.join(available)}", file=sys.stderr)
        return EXIT_USAGE
    print(folder.joinpath(name))
    return 0


@contextlib.contextmanager
def logging_to(log_file: str | None) -> Iterator[None]:
    """Log INFO and above to ``log_file`` (or stderr) while the block runs."""
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


def run(
    names: list[str],
    argv: Sequence[str] | None,
    prog: str,
    names_help: str,
    prefix: str = "",
) -> int:
    """Parse ``argv``, build the environments ``names`` + positional names, serve.

    :param prefix: put in front of positional names that lack it (``gym:``).
    """
    parser = build_parser(prog, names_help)
    args, unknown = parser.parse_known_args(argv)
    names = names + [n if n.startswith(prefix) else prefix + n for n in args.names]
    if args.list:
        gym_names = [registry.GYM_PREFIX + env_id for env_id in registry.gymnasium_ids()]
        print("\n".join([*registry.BUILTIN, *gym_names]))
        return 0
    if args.config:
        return print_config(args.config)
    if not names:
        print(
            f"{prog}: name an environment; available: {', '.join(registry.available())}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    with logging_to(args.log_file):
        if unknown:
            logger.info("Ignoring arguments %s", unknown)
        parameters = EnvironmentParameters()
        try:
            kwargs = gym_kwargs(args.gym_kwarg)
            environments = [
                registry.make(
                    name,
                    args.num_agents,
                    parameters,
                    **(kwargs if name.startswith(registry.GYM_PREFIX) else {}),
                )
                for name in names
            ]
        except (registry.UnknownEnvironmentError, ValueError) as error:
            if args.log_file:
                logger.error("%s", error)
            print(f"{prog}: {error}", file=sys.stderr)
            return EXIT_USAGE
        return serve(environments, parameters, args)


def serve(
    environments: list[VectorEnv], parameters: EnvironmentParameters, args: argparse.Namespace
) -> int:
    """Connect to the trainer and serve it until it leaves; the exit code."""
    specs = [env.spec for env in environments]
    logger.info("mla-envs %s, pid %d, behaviors %s", __version__, os.getpid(), specs)
    client = UnityClient(
        environments,
        parameters,
        port=args.mlagents_port,
        seed=args.seed,
        connect_timeout=args.connect_timeout,
        idle_timeout=args.idle_timeout,
        stats_period=args.stats_period,
        log_path=args.log_file or "",
    )
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _: client.stop(f"signal {signal.Signals(s).name}"))
    watched = ancestors(WATCHED_ANCESTORS)

    def on_ancestor_end(pid: int) -> None:
        # The worker first: stopping the client lets the main thread end the process.
        if len(watched) == WATCHED_ANCESTORS and pid == watched[1]:
            release_orphaned_worker(worker=watched[0], trainer=pid)
        client.stop(f"parent process {pid} ended")

    lifeline = Lifeline(watched, on_ancestor_end).start()
    try:
        return client.run()
    finally:
        lifeline.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``mla-env NAME [NAME ...]``."""
    names_help = "Basic, 3DBall or gym:<Gymnasium id>; several = several behaviors"
    return run([], argv, "mla-env", names_help)


def basic(argv: Sequence[str] | None = None) -> int:
    """``mla-env-basic``: the Basic environment."""
    return run(["Basic"], argv, "mla-env-basic", "more environments to add")


def ball3d(argv: Sequence[str] | None = None) -> int:
    """``mla-env-3dball``: the 3DBall environment."""
    return run(["3DBall"], argv, "mla-env-3dball", "more environments to add")


def gym(argv: Sequence[str] | None = None) -> int:
    """``mla-env-gym ID [ID ...]``: Gymnasium environments by id."""
    names_help = "Gymnasium ids, e.g. CartPole-v1; several = several behaviors"
    return run([], argv, "mla-env-gym", names_help, prefix=registry.GYM_PREFIX)
