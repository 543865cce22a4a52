"""`mla-plugin doctor`: real checks of this environment, and of broken ones made for real.

The command runs as a subprocess of this venv's `mla-plugin` (a healthy environment, then
one with a plugin that raises on import and a busy port); the protobuf failures run the
doctor's real child Python with the variables that break it.
"""

import os
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

from mla_plugin_core.cli import doctor, main
from mla_plugin_core.testing.learn import free_base_port
from mla_plugin_core.util.ports import port_free

CORE = Path(__file__).parents[2]
MLA_PLUGIN = Path(sys.executable).with_name("mla-plugin")
LINE = re.compile(r"^(ok  |note|warn|FAIL) \S.*?: .+")


def run_doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mla-plugin doctor ARGS` in this venv."""
    return subprocess.run(
        [str(MLA_PLUGIN), "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def report_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The finding lines (every line but the summary), each checked for the format."""
    lines = result.stdout.splitlines()[:-1]
    bad = [line for line in lines if not LINE.match(line)]
    assert not bad, f"lines not in the report format: {bad}\n{result.stdout}{result.stderr}"
    return lines


@pytest.fixture
def listening_port():
    """A port another program listens on (as a running mlagents-learn would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("localhost", free_base_port()))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def broken_plugin_path(tmp_path: Path) -> Path:
    """A folder with a `broken-plugin` distribution whose trainer module raises on import."""
    dist_info = tmp_path / "broken_plugin-0.0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[mlagents.trainer_type]\nbroken = broken_trainer:get_type_and_setting\n"
    )
    (tmp_path / "broken_trainer.py").write_text(
        "raise RuntimeError('the broken plugin cannot start')\n"
    )
    return tmp_path


def listed_trainer_types(lines: list[str]) -> dict[str, str]:
    """Trainer type -> distribution name, from the `ok   trainer types: ...` line."""
    (line,) = [line for line in lines if line.startswith("ok   trainer types: ")]
    listed = {}
    for group in line.removeprefix("ok   trainer types: ").split("; "):
        names, distribution = re.fullmatch(r"(.+) \((\S+) \S+\)", group).groups()
        listed.update(dict.fromkeys(names.split(", "), distribution))
    return listed


@pytest.fixture(scope="module")
def mlagents_trainer_types() -> set[str]:
    """The trainer types mlagents' own plugin registry offers in this venv."""
    from mlagents.plugins.trainer_type import register_trainer_plugins

    return set(register_trainer_plugins()[0])


def test_finding_lines_have_a_status_column_and_the_fix_at_the_end():
    assert doctor.Finding("ok", "grpcio 1.85.3", "imports").line() == "ok   grpcio 1.85.3: imports"
    line = doctor.Finding("FAIL", "port 5005", "in use", "--base-port 5105").line()
    assert line == "FAIL port 5005: in use -> fix: --base-port 5105"


def test_the_supported_mlagents_range_is_cores_own_dependency():
    pyproject = tomllib.loads((CORE / "pyproject.toml").read_text())
    declared = next(
        Requirement(r) for r in pyproject["project"]["dependencies"] if r.startswith("mlagents")
    )
    assert doctor.supported_mlagents() == declared.specifier


def test_python_above_mlagents_declared_range_is_a_note_not_a_failure():
    (finding,) = doctor.check_python()
    if sys.version_info[:2] == (3, 11):
        assert finding.status == doctor.NOTE, finding
        assert "Requires-Python" in finding.message and "uv.toml" in finding.message
    else:
        assert finding.status == doctor.OK, finding


@pytest.mark.parametrize(
    ("variables", "error", "fix"),
    [
        # protobuf 4+ has no C++ extension: importing any message fails.
        ({"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "cpp"}, "ImportError", "unset PROTOCOL_"),
        # mla-protobuf's hook off: mlagents' old-protoc modules on current protobuf.
        ({"MLA_PROTOBUF_HOOK": "0"}, "Descriptors cannot be created", "unset MLA_PROTOBUF_HOOK"),
        ({}, None, None),
    ],
)
def test_protobuf_that_fails_mlagents_messages_is_reported_with_its_fix(variables, error, fix):
    if error is not None and Version(metadata.version("protobuf")).major < 4:
        pytest.skip("these are failures of protobuf >= 4; protobuf < 4 loads the old modules")
    env = {**os.environ, **variables}
    found = doctor.probe_results(doctor.start_probe(env))
    finding = doctor.check_protobuf(found, env)
    if error is None:
        assert finding.status in (doctor.OK, doctor.NOTE), finding
        assert "messages import" in finding.message
        return
    assert finding.status == doctor.FAIL, finding
    assert error in finding.message and finding.fix is not None and fix in finding.fix, finding
    assert finding.subject.startswith("protobuf ")


def test_busy_ports_are_reported_with_a_free_base_port(listening_port):
    (busy, *_) = doctor.check_ports(listening_port, num_envs=1)
    assert busy.status == doctor.FAIL and busy.subject == f"port {listening_port}", busy
    assert "in use" in busy.message, busy
    suggested = int(re.search(r"--base-port (\d+)", busy.fix or "").group(1))
    assert suggested != listening_port and port_free(suggested)
    (second, *_) = doctor.check_ports(listening_port - 1, num_envs=2)
    assert second.status == doctor.FAIL and second.subject.endswith(f"-{listening_port}"), second
    assert second.message.startswith(f"{listening_port} in use"), second
    (free, *_) = doctor.check_ports(listening_port + 1, num_envs=1)
    assert free.status == doctor.OK, free


def test_ports_past_the_last_one_are_one_line(capsys):
    assert main(["doctor", "--base-port", "65535", "--num-envs", "2"]) == 2
    assert "past port 65535" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["doctor", "--base-port", "0"])
    assert "--base-port: 0 is not a port (1 to 65535)" in capsys.readouterr().err


def test_a_healthy_environment_passes_and_lists_the_trainer_types(mlagents_trainer_types):
    result = run_doctor("--base-port", str(free_base_port()))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = report_lines(result)
    assert not [line for line in lines if line.startswith("FAIL")], result.stdout
    listed = listed_trainer_types(lines)
    assert set(listed) == mlagents_trainer_types
    assert {"ppo", "sac", "poca"} <= set(listed)
    for name, distribution in (("dqn", "mla-dqn"), ("a2c", "mla-a2c")):
        if doctor._version(distribution) is not None:  # the dev venv; not core's nox cell
            assert listed[name] == distribution, listed
    checked = {line[5:].split(" ")[0].rstrip(":") for line in lines}
    assert checked >= {"python", "mlagents", "mlagents-envs", "protobuf", "grpcio", "onnx"}
    assert checked >= {"onnxruntime", "torch", "trainer", "port"}
    assert result.stdout.splitlines()[-1].startswith("no problems in ")


def test_a_plugin_that_fails_to_load_and_a_busy_port_fail_the_doctor(
    broken_plugin_path, listening_port, mlagents_trainer_types
):
    env = {**os.environ, "PYTHONPATH": str(broken_plugin_path)}
    result = run_doctor("--base-port", str(listening_port), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = report_lines(result)
    (plugin,) = [line for line in lines if line.startswith("FAIL plugin broken ")]
    assert "(broken-plugin 0.0.1, broken_trainer:get_type_and_setting)" in plugin
    assert "RuntimeError: the broken plugin cannot start" in plugin
    assert "-> fix: fix broken-plugin or uninstall it" in plugin
    (port,) = [line for line in lines if line.startswith(f"FAIL port {listening_port}:")]
    assert re.search(r"-> fix: .*--base-port \d+", port), port
    assert set(listed_trainer_types(lines)) == mlagents_trainer_types  # the others still load
    assert result.stdout.splitlines()[-1].startswith("2 problem(s) in ")
