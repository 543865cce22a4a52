"""Players: records as Unity's agent loop writes them (each with the previous decision's
action), read back with mlagents' own loader; a file read while it is recorded; the command
line; the keys; a human at a (pseudo-)terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from google.protobuf.internal.decoder import _DecodeVarint32
from mlagents.trainers.demo_loader import load_demonstration
from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_envs.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto

from mla_envs import players
from mla_envs.envs import Actions, make
from mla_envs.envs.memory import LENGTH, START, MemoryEnv
from mla_envs.players import (
    QUIT,
    MemoryExpert,
    Recorded,
    basic_expert,
    basic_line,
    key_action,
    memory_line,
    record_episodes,
    split_keys,
)
from mla_envs.recording import BRAIN_AT, DemoWriter

PLAYERS = [sys.executable, "-m", "mla_envs.players"]
BASIC_EPISODE = 8  # records: positions 10 .. 16 at the 7 decisions, then 17 terminal


def position(pair: AgentInfoActionPairProto) -> int:
    return int(np.argmax(pair.agent_info.observations[0].float_data.data))


def actions(pairs: list[AgentInfoActionPairProto]) -> list[int]:
    return [pair.action_info.discrete_actions[0] for pair in pairs]


def complete_records(data: bytes) -> list[AgentInfoActionPairProto]:
    """Every complete record of a file's bytes so far, as a streaming reader sees them."""
    size, at = _DecodeVarint32(data, 0)
    steps = DemonstrationMetaProto.FromString(data[at : at + size]).number_steps
    size, at = _DecodeVarint32(data, BRAIN_AT)
    at += size
    records: list[AgentInfoActionPairProto] = []
    while at < len(data) and (not steps or len(records) < steps):
        try:
            size, body = _DecodeVarint32(data, at)
        except IndexError:
            break
        if body + size > len(data):
            break
        records.append(AgentInfoActionPairProto.FromString(data[body : body + size]))
        at = body + size
    return records


def test_a_scripted_basic_recording_holds_each_decision_s_action_one_record_late(tmp_path):
    env = make("Basic", num_agents=1)
    path = tmp_path / "basic.demo"
    lines: list[str] = []
    with DemoWriter(path, env.spec) as writer:
        recorded = record_episodes(env, basic_expert, writer, 3, report=lines.append)
    assert recorded == Recorded(records=3 * BASIC_EPISODE, episodes=3)
    assert lines == [f"episode {n}: 7 decisions, return 0.93" for n in (1, 2, 3)]

    behavior, pairs, expected = load_demonstration(str(path))
    assert behavior.action_spec.discrete_branches == (3,)
    assert expected == len(pairs) == 3 * BASIC_EPISODE
    # The first record of each episode: cleared actions; then the previous decision's (2);
    # the terminal record holds the last decision's.
    assert actions(pairs) == ([0] + [2] * 7) * 3
    assert [position(p) for p in pairs] == list(range(10, 18)) * 3
    for pair in pairs:
        data = pair.agent_info.observations[0].float_data.data
        assert list(pair.agent_info.observations[0].shape) == [20]
        assert sorted(data) == [0.0] * 19 + [1.0]  # one-hot
    rewards = [p.agent_info.reward for p in pairs]
    np.testing.assert_allclose(rewards, ([0.0] + [-0.01] * 6 + [0.99]) * 3, rtol=1e-6)
    assert [p.agent_info.done for p in pairs] == ([False] * 7 + [True]) * 3
    assert not any(p.agent_info.max_step_reached for p in pairs)
    assert {p.agent_info.id for p in pairs} == {0}


def test_memory_expert_walks_to_the_cued_end_and_step_limits_are_recorded(tmp_path):
    env = MemoryEnv(num_agents=1)
    env.seed(5)
    path = tmp_path / "memory.demo"
    cues: list[int] = []
    expert = MemoryExpert()

    def watch(observations):
        if observations[0][LENGTH:].any():
            cues.append(int(np.argmax(observations[0][LENGTH:])))
        return expert(observations)

    with DemoWriter(path, env.spec) as writer:
        assert record_episodes(env, watch, writer, 6) == Recorded(6 * 7, 6)
    assert sorted(set(cues)) == [0, 1]  # both ends were cued
    _, pairs, _ = load_demonstration(str(path))
    for episode, cue in enumerate(cues):
        records = pairs[7 * episode : 7 * episode + 7]
        step = 1 if cue == 0 else 2
        assert actions(records) == [0] + [step] * 6
        ends = [
            int(np.argmax(r.agent_info.observations[0].float_data.data[:LENGTH])) for r in records
        ]
        assert ends == [START, START] + [START + (step * 2 - 3) * k for k in range(1, 6)]
        assert records[-1].agent_info.done and not records[-1].agent_info.max_step_reached
        assert records[-1].agent_info.reward == pytest.approx(0.99)

    # A player that stays: the episode is cut at 30 steps, recorded as max_step_reached.
    env = MemoryEnv(num_agents=1)
    with DemoWriter(tmp_path / "stay.demo", env.spec) as writer:
        record_episodes(env, lambda obs: [0], writer, 1)
    _, pairs, _ = load_demonstration(str(tmp_path / "stay.demo"))
    assert len(pairs) == 31 and [p.agent_info.done for p in pairs] == [False] * 30 + [True]
    assert pairs[-1].agent_info.max_step_reached and not pairs[-2].agent_info.max_step_reached


def test_a_player_that_quits_keeps_its_records_and_bad_actions_are_refused(tmp_path):
    env = make("Basic", num_agents=1)
    moves = iter([[2], [2], None])
    with DemoWriter(tmp_path / "quit.demo", env.spec) as writer:
        assert record_episodes(env, lambda obs: next(moves), writer, 5) == Recorded(3, 0)
    _, pairs, expected = load_demonstration(str(tmp_path / "quit.demo"))
    assert expected == 3 and actions(pairs) == [0, 2, 2] and [position(p) for p in pairs] == [
        10, 11, 12,
    ]  # fmt: skip
    with DemoWriter(tmp_path / "bad.demo", env.spec) as writer:
        with pytest.raises(ValueError, match=r"action: expected one per branch of sizes \(3,\)"):
            record_episodes(env, lambda obs: [3], writer, 1)
        with pytest.raises(ValueError, match="episodes: must be at least 1, got 0"):
            record_episodes(env, basic_expert, writer, 0)


def test_a_file_is_readable_while_it_is_recorded(tmp_path):
    env = make("Basic", num_agents=1)
    path = tmp_path / "live.demo"
    writer = DemoWriter(path, env.spec)
    thread = threading.Thread(
        target=record_episodes, args=(env, basic_expert, writer, 2), kwargs={"delay": 0.1}
    )
    thread.start()
    seen: list[int] = []
    try:
        while thread.is_alive():
            records = complete_records(path.read_bytes())
            if not seen or len(records) != seen[-1]:
                seen.append(len(records))
                # what is complete is what the player recorded so far, in order
                expected = (list(range(10, 18)) * 2)[: len(records)]
                assert [position(r) for r in records] == expected
            time.sleep(0.01)
    finally:
        thread.join()
        writer.close()
    assert len([n for n in seen if 0 < n < 2 * BASIC_EPISODE]) >= 3  # it grew while recorded
    _, pairs, expected = load_demonstration(str(path))
    assert expected == len(pairs) == 2 * BASIC_EPISODE


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*PLAYERS, *args], capture_output=True, text=True, timeout=60, **kwargs)


def test_the_command_line_records_into_a_folder_and_never_replaces_a_file(tmp_path):
    out = tmp_path / "demos"
    out.mkdir()
    first = run("basic", "--out", str(out), "--episodes", "2", "--name", "walk")
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.iterdir()) == ["walk.demo"]
    kept = (out / "walk.demo").read_bytes()
    assert f"wrote {out / 'walk.demo'}: 16 records, 2 episodes" in first.stdout
    second = run("Basic", "--out", str(out), "--episodes", "1", "--name", "walk")
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in out.iterdir()) == ["walk.demo", "walk_1.demo"]
    assert (out / "walk.demo").read_bytes() == kept
    assert load_demonstration(str(out / "walk.demo"))[2] == 16
    assert load_demonstration(str(out / "walk_1.demo"))[2] == 8
    memory = run("memory", "--out", str(tmp_path / "new" / "folder"), "--episodes", "1")
    assert memory.returncode == 0, memory.stderr
    assert load_demonstration(str(tmp_path / "new" / "folder" / "Memory.demo"))[2] == 7


BAD_ARGUMENTS = [
    (["3DBall"], "argument ENV: unknown environment '3DBall'; allowed: Basic, Memory"),
    (["basic", "--episodes", "0"], "argument --episodes: must be at least 1, got 0"),
    (["basic", "--delay", "-1"], "argument --delay: must be finite seconds >= 0, got -1"),
    (
        ["basic", "--player", "human"],
        "argument --player: invalid choice: 'human' (choose from 'scripted', 'terminal')",
    ),
    (
        ["basic", "--name", "a-name-far-too-long"],
        "argument --name: must be 1 to 13 letters, digits, '-' or '_' (the most Unity's "
        "demonstration metadata holds), got 'a-name-far-too-long'",
    ),
    (["basic", "--name", "../up"], "argument --name: must be 1 to 13 letters"),
    (
        ["basic", "--player", "terminal"],
        "argument --player: terminal reads keys from a terminal and stdin is not one; "
        "use --player scripted",
    ),
]


@pytest.mark.parametrize(("args", "line"), BAD_ARGUMENTS)
def test_bad_arguments_are_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, line):
    """In this process (the command's own exit is tested below): stdin is no terminal."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        players.main([*args, "--out", str(out)])
    assert exited.value.code == 2
    result = capsys.readouterr()
    assert result.out == ""
    assert result.err.startswith(f"mla-env-record: error: {line}")
    assert result.err.count("\n") == 1
    assert not out.exists()


def test_an_out_that_is_a_file_is_refused_and_kept(tmp_path):
    out = tmp_path / "a-file"
    out.write_text("kept")
    result = run("basic", "--out", str(out))
    assert result.returncode == 2
    assert result.stderr == (
        f"mla-env-record: error: argument --out: {str(out)!r} is a file; a folder is needed\n"
    )
    assert out.read_text() == "kept" and os.listdir(tmp_path) == ["a-file"]
    result = run("basic")
    assert result.returncode == 2
    assert result.stderr == ("mla-env-record: error: the following arguments are required: --out\n")


def test_ctrl_c_closes_the_file_cleanly(tmp_path):
    process = subprocess.Popen(
        [*PLAYERS, "basic", "--out", str(tmp_path), "--episodes", "1000", "--delay", "0.02"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    path = tmp_path / "Basic.demo"
    deadline = time.monotonic() + 30
    while len(complete_records(path.read_bytes()) if path.exists() else []) < 10:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # as Ctrl+C sends
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and stderr == "stopped by SIGINT\n"
    behavior, pairs, expected = load_demonstration(str(path))
    assert expected == len(pairs) >= 10
    assert f"wrote {path}: {len(pairs)} records" in stdout
    assert actions(pairs) == ([0] + [2] * 7) * (len(pairs) // 8) + ([0] + [2] * 7)[: len(pairs) % 8]


def test_keys_map_to_actions():
    for key, action in [("a", 1), ("A", 1), ("\x1b[D", 1), ("\x1bOD", 1), ("d", 2), ("D", 2),
                        ("\x1b[C", 2), ("s", 0), (" ", 0)]:  # fmt: skip
        assert key_action(key) == action, key
    for key in ("q", "Q", "\x03", "\x04"):
        assert key_action(key) == QUIT
    for key in ("x", "\n", "\x1b[A", "\x1b", "2"):
        assert key_action(key) is None, key
    assert split_keys("dd\x1b[Ca\x1bq") == ["d", "d", "\x1b[C", "a", "\x1b", "q"]
    assert split_keys("\x1b[") == ["\x1b", "["]


def test_state_lines():
    basic_obs = [np.eye(20, dtype=np.float32)[12]]
    assert basic_line(basic_obs) == "position 12  |.......s....@....G..|"
    env = MemoryEnv(num_agents=1)
    env.seed(0)
    first = env.reset().observations[0][0]
    cue = ("left", "right")[int(env.cue[0])]
    assert memory_line([first]) == f"position  5  |.....@.....|  cue: {cue}"
    _, decision = env.step(Actions(np.zeros((1, 0), np.float32), np.zeros((1, 1), np.int32)))
    assert memory_line([decision.observations[0][0]]).endswith("cue: hidden (remember it)")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_human_at_a_terminal_records_with_keys_and_the_terminal_is_restored(tmp_path):
    import termios

    leader, follower = os.openpty()
    before = termios.tcgetattr(follower)
    process = subprocess.Popen(
        [*PLAYERS, "basic", "--out", str(tmp_path), "--player", "terminal", "--episodes", "5"],
        stdin=follower,
        stdout=follower,
        stderr=subprocess.PIPE,
        text=True,
    )
    output = b""
    start = 0  # where the next expected text is searched from

    def read_until(text: bytes) -> None:
        nonlocal output, start
        deadline = time.monotonic() + 30
        while text not in output[start:]:
            assert time.monotonic() < deadline, output
            output += os.read(leader, 4096)
        start = output.index(text, start) + len(text)

    try:
        read_until(b"position 10")
        os.write(leader, b"a")  # left: 9
        read_until(b"position  9")
        os.write(leader, b"x\x1b[C")  # an unmapped key, then right: 10
        read_until(b"position 10  |.......s..@")
        os.write(leader, b"s")  # stay
        read_until(b"@......G")
        os.write(leader, b"q")
        process.wait(timeout=30)
        read_until(b"wrote")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        after = termios.tcgetattr(follower)
        os.close(leader)
        os.close(follower)
    assert process.returncode == 0, process.stderr.read()
    assert after == before  # echo and line mode are back
    _, pairs, expected = load_demonstration(str(tmp_path / "Basic.demo"))
    assert expected == 4
    assert actions(pairs) == [0, 1, 2, 0]  # each record: the previous key's action
    assert [position(p) for p in pairs] == [10, 9, 10, 10]
    assert b"wrote " + str(tmp_path / "Basic.demo").encode() + b": 4 records, 0 episodes" in output
