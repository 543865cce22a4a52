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
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from mla_envs.version import __version__

if TYPE_CHECKING:
    from mla_envs.envs.base import VectorEnv
    from mla_envs.parameters import EnvironmentParameters

logger = logging.getLogger("mla_envs")

EDITOR_PORT = 5004
#: Parent and grandparent: under mlagents-learn, the env worker and the trainer.
WATCHED_ANCESTORS = 2


#: Largest seed: ``rl_initialization_input.seed`` is an int32; numpy and Gymnasium refuse < 0.
MAX_SEED = 2**31 - 1
MAX_PORT = 65535
#: Shortest idle timeout: the trainer is silent while it updates its networks.
MIN_IDLE_TIMEOUT = 1.0


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer in ``[low, high]`` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            allowed = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    return parse


def seconds(low: float, strict: bool = True) -> Callable[[str], float]:
    """argparse type: a finite number of seconds, ``> low`` (strict) or ``>= low``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            bound = f"> {low:g}" if strict else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"must be finite seconds {bound}, got {text}")
        return value

    return parse


positive_int = bounded_int(1)


def gym_kwarg(text: str) -> tuple[str, Any]:
    """argparse type of ``--gym-kwarg``: ``KEY=VALUE`` -> ``(KEY, json(VALUE) or VALUE)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python name, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


LOG_FILE_OPTIONS = ("-logFile", "-logfile", "--log-file")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``<prog>: error: <message>``, exit 2.

    The line also goes to :attr:`log_file` when it is set: under ``mlagents-learn`` stderr is
    discarded and the console shows the end of that file (``-logFile``) when the env exits.
    """

    log_file: str | None = None

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line (no usage: ``--help`` shows it) and exit 2."""
        line = f"{self.prog}: error: {message}\n"
        if self.log_file:
            try:
                with open(self.log_file, "a") as log:
                    log.write(line)
            except OSError:
                pass  # the line still goes to stderr
        self.exit(2, line)


def log_file_argument(argv: Sequence[str]) -> str | None:
    """The ``-logFile`` value in ``argv`` (before parsing: an error in any option is logged)."""
    for index, arg in enumerate(argv):
        for option in LOG_FILE_OPTIONS:
            if arg == option and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(option + "="):
                return arg[len(option) + 1 :]
    return None


def build_parser(
    prog: str, names_help: str, gymnasium: bool = True, metavar: str = "NAME"
) -> argparse.ArgumentParser:
    """The parser of one command; ``gymnasium``: with ``--gym-kwarg`` and ``--list``."""
    parser = OneLineParser(
        prog=prog,
        description="An ML-Agents environment without Unity: connects to mlagents-learn.",
        allow_abbrev=False,
    )
    parser.add_argument("names", nargs="*", metavar=metavar, help=names_help)
    parser.add_argument(
        "--mlagents-port",
        "--port",
        type=bounded_int(1, MAX_PORT),
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
        type=bounded_int(0, MAX_SEED),
        default=None,
        help="override the seed the trainer sends (default: the trainer's seed)",
    )
    if gymnasium:
        parser.add_argument(
            "--gym-kwarg",
            action="append",
            type=gym_kwarg,
            default=[],
            metavar="KEY=VALUE",
            help="keyword for gymnasium.make (VALUE parsed as JSON if it can be); repeatable",
        )
    parser.add_argument(
        *LOG_FILE_OPTIONS,
        dest="log_file",
        default=None,
        help="write the log here (mlagents-learn passes it; stdout is discarded there)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=seconds(0.0),
        default=60.0,
        help="seconds to wait for the trainer to listen (default %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=seconds(MIN_IDLE_TIMEOUT, strict=False),
        default=3600.0,
        help="exit after this many seconds without a trainer reply "
        f"(default %(default)s, at least {MIN_IDLE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--stats-period",
        type=seconds(0.0, strict=False),
        default=5.0,
        help="seconds between stats sent to the trainer (default %(default)s; 0: every reply)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="print the path of a shipped trainer YAML and exit, as `mla-plugin config FILE` "
        "does (e.g. ppo_basic.yaml; --config list: their names; `mla-plugin configs`: "
        "names, packages, trainer types and paths)",
    )
    if gymnasium:
        parser.add_argument("--list", action="store_true", help="list environments and exit")
    for flag in ("-nographics", "--no-graphics", "-batchmode"):
        parser.add_argument(flag, action="store_true", help="accepted; there is no rendering")
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    return parser


def print_config(parser: argparse.ArgumentParser, name: str) -> int:
    """Print the path of a shipped trainer YAML (``list``: their names), as
    ``mla-plugin config NAME`` does: mla-envs' PPO configs and those of installed plugins."""
    from mla_plugin_core.cli.shipped_configs import config_path, shipped_configs

    if name == "list":
        print("\n".join(dict.fromkeys(config.name for config in shipped_configs())))
        return 0
    try:
        print(config_path(name))
    except LookupError as error:
        parser.error(f"argument --config: {error}")
    return 0


@contextlib.contextmanager
def logging_to(log_file: str | None) -> Iterator[None]:
    """Log INFO and above to ``log_file`` (or stderr) while the block runs."""
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, mode="a")
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
    gymnasium_only: bool = False,
) -> int:
    """Parse ``argv``, build the environments ``names`` + positional names, serve.

    Every option is checked before anything starts: a bad one exits with argparse's
    one-line ``<prog>: error: argument ...`` and code 2, as do unknown ``--`` options
    (Unity's single-dash ones are ignored) and environments that cannot be built.

    :param gymnasium_only: positional names are Gymnasium ids (``mla-env-gym``);
        otherwise the command has Gymnasium options only when ``names`` is empty.
    """
    gymnasium = gymnasium_only or not names
    parser = build_parser(prog, names_help, gymnasium, "ID" if gymnasium_only else "NAME")
    argv = list(sys.argv[1:] if argv is None else argv)
    log_file = log_file_argument(argv)
    if log_file:
        try:
            open(log_file, "w").close()
        except OSError as error:
            parser.error(f"argument -logFile: cannot write {log_file!r}: {error.strerror}")
        parser.log_file = log_file
    args, unknown = parser.parse_known_args(argv)

    unrecognized = [arg for arg in unknown if arg.startswith("--")]
    if unrecognized:
        parser.error(
            f"unrecognized arguments: {' '.join(unrecognized)} (see {prog} --help; "
            "mlagents-learn's own options go before --env-args)"
        )
    # Imported once the options are checked: numpy and grpc take a while to import.
    from mla_envs import envs as registry
    from mla_envs.parameters import EnvironmentParameters

    if gymnasium_only:
        builtin = {key.lower(): key for key in registry.BUILTIN}
        for name in args.names:
            if name.lower() in builtin:
                parser.error(
                    f"argument ID: {name} is not a Gymnasium id; "
                    f"use mla-env-{name.lower()} or mla-env {builtin[name.lower()]}"
                )
        args.names = [
            n if n.startswith(registry.GYM_PREFIX) else registry.GYM_PREFIX + n for n in args.names
        ]
    names = names + args.names
    if args.config:
        return print_config(parser, args.config)
    if gymnasium and args.list:
        ids = registry.gymnasium_ids()
        if not gymnasium_only:
            ids = [*registry.BUILTIN, *(registry.GYM_PREFIX + env_id for env_id in ids)]
        print("\n".join(ids))
        return 0
    if not names:
        if gymnasium_only:
            parser.error("name a Gymnasium id, e.g. CartPole-v1 (--list shows them)")
        parser.error(f"name an environment; available: {', '.join(registry.available())}")
    kwargs = dict(args.gym_kwarg) if gymnasium else {}
    if kwargs and not any(name.startswith(registry.GYM_PREFIX) for name in names):
        parser.error("argument --gym-kwarg: only Gymnasium environments (gym:<id>) take it")
    parameters = EnvironmentParameters()
    try:
        environments = [
            registry.make(
                name,
                args.num_agents,
                parameters,
                **(kwargs if name.startswith(registry.GYM_PREFIX) else {}),
            )
            for name in names
        ]
    except registry.GymnasiumKwargError as error:
        parser.error(f"argument --gym-kwarg: {error}")
    except ValueError as error:  # UnknownEnvironmentError, UnsupportedSpaceError, ...
        parser.error(str(error))
    with logging_to(args.log_file):
        if unknown:
            logger.info("Ignoring arguments %s", unknown)
        return serve(environments, parameters, args)


def serve(
    environments: list[VectorEnv], parameters: EnvironmentParameters, args: argparse.Namespace
) -> int:
    """Connect to the trainer and serve it until it leaves; the exit code."""
    from mla_envs.protocol.client import UnityClient
    from mla_envs.protocol.lifeline import Lifeline, ancestors, release_orphaned_worker

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
    names_help = "Basic, 3DBall, Memory or gym:<Gymnasium id>; several = several behaviors"
    return run([], argv, "mla-env", names_help)


def basic(argv: Sequence[str] | None = None) -> int:
    """``mla-env-basic``: the Basic environment."""
    return run(["Basic"], argv, "mla-env-basic", "more environments to add (3DBall)")


def memory(argv: Sequence[str] | None = None) -> int:
    """``mla-env-memory``: the Memory corridor (its rewarding end shown at the first step)."""
    return run(["Memory"], argv, "mla-env-memory", "more environments to add (Basic)")


def ball3d(argv: Sequence[str] | None = None) -> int:
    """``mla-env-3dball``: the 3DBall environment."""
    return run(["3DBall"], argv, "mla-env-3dball", "more environments to add (Basic)")


def gym(argv: Sequence[str] | None = None) -> int:
    """``mla-env-gym ID [ID ...]``: Gymnasium environments by id."""
    names_help = (
        "Gymnasium ids, e.g. CartPole-v1 (--list shows them); several = several behaviors; "
        "Basic and 3DBall: mla-env-basic, mla-env-3dball or mla-env"
    )
    return run([], argv, "mla-env-gym", names_help, gymnasium_only=True)
