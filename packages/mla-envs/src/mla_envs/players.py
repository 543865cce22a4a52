"""Players: play the Python environments and record ``.demo`` files as Unity's agent loop does.

Unity writes a record in ``Agent.SendInfoToBrain``, which the Academy's step runs before
``DecideAction``. So a record holds the observation at a decision, the reward since the
previous record and the action of the *previous* decision (zeros at an episode's first
record: Unity clears the actions when an episode starts); when the episode ends, a last
record holds the terminal observation, the last reward, ``done`` (``max_step_reached`` when
a step limit cut it) and the last decision's action. For decisions ``a_0 .. a_{T-1}``::

    (obs_0, 0, zeros), (obs_1, r_0, a_0), ..., (obs_T, r_{T-1}, a_{T-1}, done)

:func:`record_episodes` plays whole episodes with any policy and writes them with
:class:`~mla_envs.recording.DemoWriter` (each record flushed as it is played). The players:
scripted experts (:func:`basic_expert`, :class:`MemoryExpert`) and a human at the keyboard
(:class:`TerminalPlayer`). From the shell::

    mla-env-record Basic --out DIR [--episodes N] [--player scripted|terminal]
        [--delay S] [--name NAME] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple, TextIO

import numpy as np

from mla_envs.cli import MAX_SEED, OneLineParser, bounded_int, positive_int, seconds
from mla_envs.envs import basic, memory
from mla_envs.envs.base import Actions, AgentBatch, VectorEnv
from mla_envs.recording import MAX_NAME_BYTES, DemoWriter
from mla_envs.version import __version__

#: A policy: one agent's observations at a decision -> its discrete actions (one per
#: branch), or None to stop recording (the player quits).
Choose = Callable[[Sequence[np.ndarray]], Sequence[int] | None]


class Recorded(NamedTuple):
    """What :func:`record_episodes` wrote: records, and episodes that reached their end."""

    records: int
    episodes: int


def _row(batch: AgentBatch, agent: int) -> int | None:
    """The row of ``agent`` in ``batch``, or None when it is not there."""
    rows = np.flatnonzero(batch.agent_ids == agent)
    return int(rows[0]) if len(rows) else None


def _record(
    writer: DemoWriter,
    batch: AgentBatch,
    row: int,
    action: Sequence[int],
    agent: int,
    done: bool = False,
) -> list[np.ndarray]:
    """Write ``agent``'s record at ``row`` of ``batch`` with ``action``; its observations."""
    observations = [obs[row] for obs in batch.observations]
    writer.record(
        observations,
        float(batch.rewards[row]),
        discrete_actions=action,
        done=done,
        max_step_reached=done and bool(batch.interrupted[row]),
        action_mask=None if batch.action_masks is None else batch.action_masks[row].tolist(),
        agent_id=agent,
    )
    return observations


def record_episodes(
    env: VectorEnv,
    choose: Choose,
    writer: DemoWriter,
    episodes: int,
    agent: int = 0,
    *,
    delay: float = 0.0,
    stop: threading.Event | None = None,
    report: Callable[[str], None] | None = None,
) -> Recorded:
    """Play ``episodes`` whole episodes of ``agent`` from a reset and record them in order.

    At each decision the record goes to ``writer`` first (with the previous decision's
    action, as Unity records), then ``choose`` picks the action; when the episode ends, its
    terminal record follows. Recording stops after the ``episodes``-th terminal record, or
    earlier when ``choose`` returns None or ``stop`` is set (checked before each decision):
    the records written so far stay, the episode in progress has no terminal record (the
    caller closes ``writer``, which counts it, as Unity's ``Close()`` does).

    :param env: a discrete-action environment, e.g. ``make("Basic", num_agents=1)``; other
        agents than ``agent`` take the all-zeros action.
    :param choose: the policy of ``agent``; its actions must fit the branches.
    :param episodes: how many episodes to finish, at least 1.
    :param delay: seconds to wait before each decision (a reader can watch the file grow).
    :param report: called with one line at the end of each episode (decisions, return).
    :raises ValueError: continuous actions, a bad ``agent`` or ``episodes``, an action that
        does not fit the branches.
    """
    spec = env.spec
    if spec.continuous_size:
        raise ValueError(f"{spec.name}: continuous actions cannot be played by a player here")
    if episodes < 1:
        raise ValueError(f"episodes: must be at least 1, got {episodes}")
    if not 0 <= agent < env.num_agents:
        raise ValueError(f"agent: must be from 0 to {env.num_agents - 1}, got {agent}")
    branches = spec.discrete_branches
    cleared = [0] * len(branches)  # Unity clears the stored actions at an episode's start
    no_continuous = np.zeros((env.num_agents, 0), np.float32)
    records = finished = decisions = 0
    episode_return = 0.0
    previous = cleared
    decision = env.reset()
    while finished < episodes:
        row = _row(decision, agent)
        if row is None:
            raise ValueError(f"agent {agent} is missing from {spec.name}'s decision batch")
        observations = _record(writer, decision, row, previous, agent)
        records += 1
        episode_return += float(decision.rewards[row])
        if delay > 0:
            if stop is None:
                time.sleep(delay)
            else:
                stop.wait(delay)
        if stop is not None and stop.is_set():
            break
        action = choose(observations)
        if action is None:
            break
        action = [int(a) for a in action]
        if len(action) != len(branches) or not all(
            0 <= a < size for a, size in zip(action, branches, strict=True)
        ):
            raise ValueError(f"action: expected one per branch of sizes {branches}, got {action}")
        discrete = np.zeros((env.num_agents, len(branches)), np.int32)
        discrete[row] = action
        terminal, decision = env.step(Actions(no_continuous, discrete))
        decisions += 1
        previous = action
        end = _row(terminal, agent)
        if end is not None:
            _record(writer, terminal, end, previous, agent, done=True)
            records += 1
            finished += 1
            episode_return += float(terminal.rewards[end])
            if report is not None:
                cut = " (step limit)" if terminal.interrupted[end] else ""
                report(
                    f"episode {finished}: {decisions} decisions, return {episode_return:.2f}{cut}"
                )
            previous = cleared
            decisions = 0
            episode_return = 0.0
    return Recorded(records, finished)


# --- scripted experts ----------------------------------------------------------------


def basic_expert(observations: Sequence[np.ndarray]) -> list[int]:
    """Basic's optimal policy: always right (2), 7 steps to the large goal, return 0.93."""
    return [2]


class MemoryExpert:
    """Memory's optimal policy: remember the cue of an episode's first observation and walk
    to the cued end (5 moves after the cue step, return 0.94).

    The cue shows at every episode's first observation, so the expert needs no signal that
    an episode started: the last cue seen is the current episode's. One instance per agent.
    """

    def __init__(self) -> None:
        self.cue: int | None = None  # 0: the left end pays, 1: the right end

    def __call__(self, observations: Sequence[np.ndarray]) -> list[int]:
        cue = np.asarray(observations[0])[memory.LENGTH :]
        if cue.any():
            self.cue = int(np.argmax(cue))
        if self.cue is None:
            raise ValueError("Memory: no cue seen yet (the expert must see an episode's start)")
        return [1 if self.cue == 0 else 2]  # 1: step left, 2: step right


#: Environment name -> a new scripted expert for it.
EXPERTS: dict[str, Callable[[], Choose]] = {
    "Basic": lambda: basic_expert,
    "Memory": MemoryExpert,
}


# --- the terminal player ---------------------------------------------------------------

QUIT: Literal["quit"] = "quit"
#: Keys of both Basic and Memory (0 stay, 1 step left, 2 step right); arrows as the escape
#: sequences terminals send.
KEY_ACTIONS: dict[str, int] = {
    "a": 1,
    "\x1b[D": 1,
    "\x1bOD": 1,
    "d": 2,
    "\x1b[C": 2,
    "\x1bOC": 2,
    "s": 0,
    " ": 0,
}
#: q, Ctrl+C and Ctrl+D (as bytes, when the terminal does not turn them into signals).
QUIT_KEYS = frozenset({"q", "\x03", "\x04"})
KEYS_HELP = "keys: a or <- left, d or -> right, s or space stay, q quit"


def key_action(key: str) -> int | Literal["quit"] | None:
    """The action of one key (letters in either case), :data:`QUIT`, or None (not mapped)."""
    key = key.lower() if len(key) == 1 else key
    if key in QUIT_KEYS:
        return QUIT
    return KEY_ACTIONS.get(key)


def split_keys(text: str) -> list[str]:
    """The keys of what one read returned: single characters and arrow sequences
    (``ESC [ X`` or ``ESC O X``); a held key gives several."""
    keys = []
    at = 0
    while at < len(text):
        if text[at] == "\x1b" and text[at + 1 : at + 2] in ("[", "O") and at + 2 < len(text):
            keys.append(text[at : at + 3])
            at += 3
        else:
            keys.append(text[at])
            at += 1
    return keys


def _corridor(length: int, position: int, marks: dict[int, str]) -> str:
    cells = [marks.get(i, ".") for i in range(length)]
    cells[position] = "@"
    return "|" + "".join(cells) + "|"


def basic_line(observations: Sequence[np.ndarray]) -> str:
    """Basic's state: the position, and the corridor (s small goal, G large goal, @ you)."""
    position = int(np.argmax(observations[0]))
    marks = {basic.SMALL_GOAL: "s", basic.LARGE_GOAL: "G"}
    corridor = _corridor(basic.MAX_POSITION - basic.MIN_POSITION, position, marks)
    return f"position {position:2d}  {corridor}"


def memory_line(observations: Sequence[np.ndarray]) -> str:
    """Memory's state: the position, the corridor, and the cue while it shows."""
    obs = np.asarray(observations[0])
    position = int(np.argmax(obs[: memory.LENGTH]))
    cue = obs[memory.LENGTH :]
    shown = ("left", "right")[int(np.argmax(cue))] if cue.any() else "hidden (remember it)"
    return f"position {position:2d}  {_corridor(memory.LENGTH, position, {})}  cue: {shown}"


#: Environment name -> its state line for the terminal player.
STATE_LINES: dict[str, Callable[[Sequence[np.ndarray]], str]] = {
    "Basic": basic_line,
    "Memory": memory_line,
}


def read_keys(fd: int, stop: threading.Event | None = None, poll: float = 0.1) -> str | None:
    """What the terminal at ``fd`` sends next (one key or a few); None at end of input or
    once ``stop`` is set."""
    while stop is None or not stop.is_set():
        ready, _, _ = select.select([fd], [], [], poll)
        if ready:
            data = os.read(fd, 32)
            return data.decode(errors="replace") if data else None
    return None


@contextlib.contextmanager
def single_keys(fd: int) -> Iterator[None]:
    """The terminal at ``fd`` sends each key at once, without echo (cbreak mode: Ctrl+C
    stays a signal); its settings are restored however the block ends."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class TerminalPlayer:
    """A human's policy: prints the state line, then reads keys until one maps to an action.

    Use it inside :func:`single_keys`. Returns None (stop recording) on ``q``, Ctrl+C,
    Ctrl+D, end of input, or once ``stop`` is set.
    """

    def __init__(
        self,
        env_name: str,
        fd: int | None = None,
        stop: threading.Event | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.state_line = STATE_LINES[env_name]
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.stop = stop
        self.out = sys.stdout if out is None else out
        self.pending: list[str] = []

    def __call__(self, observations: Sequence[np.ndarray]) -> list[int] | None:
        print(self.state_line(observations), file=self.out, flush=True)
        while True:
            if not self.pending:
                text = read_keys(self.fd, self.stop)
                if text is None:
                    return None
                self.pending = split_keys(text)
            action = key_action(self.pending.pop(0))
            if action == QUIT:
                return None
            if action is not None:
                return [action]


# --- the command line ------------------------------------------------------------------

PROG = "mla-env-record"
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_NAME_BYTES}}}")
DEFAULT_EPISODES = 5


def environment(text: str) -> str:
    """argparse type: an environment with players (case-insensitive) -> its name."""
    names = {name.lower(): name for name in EXPERTS}
    if text.lower() not in names:
        raise argparse.ArgumentTypeError(
            f"unknown environment {text!r}; allowed: {', '.join(EXPERTS)}"
        )
    return names[text.lower()]


def demo_name(text: str) -> str:
    """argparse type: a demonstration name, also the start of the file's name."""
    if not NAME_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be 1 to {MAX_NAME_BYTES} letters, digits, '-' or '_' (the most Unity's "
            f"demonstration metadata holds), got {text!r}"
        )
    return text


def open_demo(folder: Path, name: str, env: VectorEnv) -> DemoWriter:
    """A new file in ``folder``: ``<name>.demo``, else ``<name>_1.demo``, ``<name>_2.demo``
    ... (numbers appended, as Unity's ``DemonstrationRecorder`` does); never one that
    exists, even if another recorder creates it meanwhile."""
    for counter in itertools.count():
        stem = name if counter == 0 else f"{name}_{counter}"
        try:
            return DemoWriter(folder / f"{stem}.demo", env.spec, name=name)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Play an environment and record a .demo file as Unity's "
        "DemonstrationRecorder does (each record flushed as it is played).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "env", metavar="ENV", type=environment, help=f"environment: {', '.join(EXPERTS)}"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder of the recordings (created if missing); a file is never replaced",
    )
    parser.add_argument(
        "--episodes",
        metavar="N",
        type=positive_int,
        default=DEFAULT_EPISODES,
        help="episodes to record, at least 1 (default %(default)s)",
    )
    parser.add_argument(
        "--player",
        choices=("scripted", "terminal"),
        default="scripted",
        help="scripted: the optimal policy; terminal: you, with the keys (default %(default)s)",
    )
    parser.add_argument(
        "--delay",
        metavar="S",
        type=seconds(0.0, strict=False),
        default=0.0,
        help="seconds to wait before each decision (default %(default)s)",
    )
    parser.add_argument(
        "--name",
        type=demo_name,
        default=None,
        help=f"demonstration name, at most {MAX_NAME_BYTES} letters, digits, '-', '_'; the "
        "file is NAME.demo or NAME_<n>.demo (default: the environment's name)",
    )
    parser.add_argument(
        "--seed",
        metavar="S",
        type=bounded_int(0, MAX_SEED),
        default=None,
        help="seed of the environment's random draws (Memory's cues; default: a random one)",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[dict[str, int]]:
    """Ctrl+C, SIGTERM and SIGHUP set ``stop`` (the recording ends between two records and
    the file is closed cleanly); yields a dict where the signal's number lands."""
    caught: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():
        yield caught  # only the main thread may handle signals
        return

    def handler(signum: int, _frame: object) -> None:
        caught["signal"] = signum
        stop.set()

    signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield caught
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def main(argv: Sequence[str] | None = None) -> int:
    """``mla-env-record ENV --out DIR ...`` (also ``python -m mla_envs.players``): record, print where, exit code.

    Every argument is checked before anything is written: a bad one is one line,
    ``<prog>: error: argument ...``, and exit code 2. Exit code 0 when the episodes are
    recorded or the player quits (q), 128 + the signal's number when a signal stopped the
    recording; the file is complete in every case.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"argument --out: {str(out)!r} is a file; a folder is needed")
    if args.player == "terminal" and not sys.stdin.isatty():
        parser.error(
            "argument --player: terminal reads keys from a terminal and stdin is not one; "
            "use --player scripted"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"argument --out: cannot create {str(out)!r}: {error.strerror}")
    if not os.access(out, os.W_OK | os.X_OK):
        parser.error(f"argument --out: cannot write in {str(out)!r}")

    from mla_envs import envs as registry

    env = registry.make(args.env, num_agents=1)
    env.seed(int.from_bytes(os.urandom(4), "little") & MAX_SEED if args.seed is None else args.seed)
    name = args.name or args.env
    stop = threading.Event()
    with stop_on_signals(stop) as caught, open_demo(out, name, env) as writer:
        print(f"recording {args.env} to {writer.path}", flush=True)
        if args.player == "terminal":
            print(KEYS_HELP, flush=True)
            fd = sys.stdin.fileno()
            player: Choose = TerminalPlayer(args.env, fd, stop)
            keys: contextlib.AbstractContextManager = single_keys(fd)
        else:
            player = EXPERTS[args.env]()
            keys = contextlib.nullcontext()
        with keys:
            recorded = record_episodes(
                env, player, writer, args.episodes, delay=args.delay, stop=stop, report=print
            )
    print(f"wrote {writer.path}: {recorded.records} records, {recorded.episodes} episodes")
    if "signal" in caught:
        print(f"stopped by {signal.Signals(caught['signal']).name}", file=sys.stderr)
        return 128 + caught["signal"]
    return 0


if __name__ == "__main__":
    sys.exit(main())
