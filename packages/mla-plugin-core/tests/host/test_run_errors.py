"""Messages of run-time failures: a port in use, an environment that exited (run_errors)."""

import inspect
import multiprocessing
import pickle
import subprocess
import sys
from types import SimpleNamespace

import cloudpickle
import pytest
from mlagents.trainers.subprocess_env_manager import (
    EnvironmentCommand,
    EnvironmentResponse,
    UnityEnvWorker,
)
from mlagents_envs.environment import UnityEnvironment
from mlagents_envs.exception import (
    UnityCommunicationException,
    UnityEnvironmentException,
    UnityWorkerInUseException,
)

from mla_plugin_core.host import config_errors, run_errors
from mla_plugin_core.host.run_errors import (
    EnvironmentExitedError,
    PortInUseError,
    RunError,
    environment_exited_message,
    exit_status,
    log_file_of,
    port_in_use_message,
)
from mla_plugin_core.util import log_files
from mla_plugin_core.util.log_files import tail_lines


def test_port_in_use_names_the_port_and_base_port():
    assert port_in_use_message(5005) == (
        "port 5005 is in use (another mlagents-learn or environment?): "
        "pass --base-port N with a free port"
    )
    assert "(environment 2 uses --base-port + 2)" in port_in_use_message(5007, 2)


def test_editor_port_in_use_says_base_port_does_not_apply():
    message = port_in_use_message(5004, editor=True)
    assert message.startswith(
        "port 5004 is in use (another mlagents-learn waiting for the Unity Editor?)"
    )
    assert "--base-port applies only with --env" in message


def test_log_file_is_read_from_the_command():
    command = ["env", "-nographics", "--mlagents-port", "5005", "-logFile", "/r/Player-0.log"]
    assert log_file_of(command) == "/r/Player-0.log"
    assert (
        log_file_of([*command, "-logfile", "/mine.log"]) == "/mine.log"
    )  # the user's, via --env-args
    assert log_file_of(["env", "--mlagents-port", "5005"]) is None
    assert log_file_of(["env", "-logFile"]) is None


def test_tail_lines(tmp_path):
    log = tmp_path / "Player-0.log"
    log.write_text("".join(f"line {i}\n" for i in range(40)) + "\n  \n")
    assert tail_lines(str(log), 3) == ["line 37", "line 38", "line 39"]
    assert tail_lines(str(log), 0) == []
    assert tail_lines(str(tmp_path / "missing.log")) is None
    log.write_bytes(b"")
    assert tail_lines(str(log)) == []
    log.write_bytes(b"caf\xe9\n")
    assert tail_lines(str(log)) == ["caf\ufffd"]


def test_tail_of_a_large_log_reads_only_its_end(tmp_path):
    log = tmp_path / "Player-0.log"
    lines = [f"{i:07d} " + "x" * 92 for i in range(2 * log_files.LOG_TAIL_BYTES // 100)]
    log.write_text("\n".join(lines) + "\n")
    tail = tail_lines(str(log), 10_000)
    assert tail == lines[-len(tail) :]  # whole lines only, the cut first one left out
    assert 0 < len(tail) <= log_files.LOG_TAIL_BYTES // 100


def test_exit_status():
    assert exit_status(2) == "exited with code 2"
    assert exit_status(-11) == "was killed by SIGSEGV"
    assert exit_status(-1000) == "exited with code -1000"


def test_environment_exited_message_shows_the_log_tail():
    command = ["/bin/mla-env-gym", "-logFile", "/r/run_logs/Player-0.log", "Nope-v0"]
    message = environment_exited_message(2, command, ["first", "mla-env-gym: error: unknown"])
    assert message == (
        "the environment exited with code 2; last lines of /r/run_logs/Player-0.log:\n"
        "    first\n"
        "    mla-env-gym: error: unknown"
    )


def test_environment_exited_message_without_a_log_says_how_to_see_the_error():
    command = ["/bin/my env", "-logFile", "/r/Player-0.log"]
    assert environment_exited_message(1, command, []) == (
        "the environment exited with code 1 and wrote nothing to /r/Player-0.log; "
        "run it alone to see its error: '/bin/my env' -logFile /r/Player-0.log"
    )
    assert "was given no -logFile" in environment_exited_message(-9, ["/bin/env"], None)


@pytest.mark.parametrize(
    "error", [PortInUseError("port 5005 is in use"), EnvironmentExitedError("a\n    b")]
)
def test_errors_cross_processes_unchanged(error):
    """mlagents pickles a worker's exception to the main process (its own came out garbled)."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert isinstance(copy, UnityEnvironmentException)  # the worker passes it on quietly


def test_excepthook_prints_the_message_alone(capsys):
    hook = config_errors._excepthook(lambda *args: None)
    error = RunError("the environment exited with code 2; last lines of /r/p.log:\n    boom")
    hook(type(error), error, None)
    assert capsys.readouterr().err == f"mlagents-learn: {error}\n"


def _create_environment_factory(env_path, start_port, log_folder):
    """Stands for mlagents' function of the same name (the wrapper binds by parameter names)."""

    def create(worker_id, side_channels):
        raise UnityWorkerInUseException(worker_id)

    return create


@pytest.mark.parametrize(
    ("env_path", "start_port", "worker_id", "port", "editor"),
    [
        ("/bin/env", 6000, 1, 6001, False),
        (None, None, 0, UnityEnvironment.DEFAULT_EDITOR_PORT, True),
    ],
)
def test_factory_names_the_port_in_use(monkeypatch, env_path, start_port, worker_id, port, editor):
    # The factory wraps UnityEnvironment._poll_process in the worker: undone after the test.
    monkeypatch.setattr(UnityEnvironment, "_poll_process", UnityEnvironment._poll_process)
    monkeypatch.setattr(UnityEnvWorker, "send", UnityEnvWorker.send)
    learn = SimpleNamespace(create_environment_factory=_create_environment_factory)
    run_errors.install([learn])
    run_errors.install([learn])  # a second time changes nothing
    # the wrapper keeps mlagents' signature: callers that pass only the parameters a release
    # accepts (mla-ray's workers) read it with inspect
    wrapped = inspect.signature(learn.create_environment_factory)
    assert list(wrapped.parameters) == ["env_path", "start_port", "log_folder"]
    factory = learn.create_environment_factory(env_path, start_port=start_port, log_folder="/r")
    factory = cloudpickle.loads(cloudpickle.dumps(factory))  # as mlagents sends it to a worker
    with pytest.raises(PortInUseError) as raised:
        factory(worker_id, [])
    assert str(raised.value) == port_in_use_message(port, worker_id, editor=editor)


def test_poll_process_shows_the_log_of_an_environment_that_exited(tmp_path):
    log = tmp_path / "Player-0.log"
    code = f"open({str(log)!r}, 'w').write('starting\\nmy-env: error: bad option\\n'); raise SystemExit(2)"
    process = subprocess.Popen([sys.executable, "-c", code, "-logFile", str(log)])
    process.wait()
    environment = SimpleNamespace(
        _process=process, _returncode_to_env_message=UnityEnvironment._returncode_to_env_message
    )
    poll = run_errors._explaining_poll_process(UnityEnvironment._poll_process)
    with pytest.raises(EnvironmentExitedError) as raised:
        poll(environment)
    assert str(raised.value) == (
        f"the environment exited with code 2; last lines of {log}:\n"
        "    starting\n"
        "    my-env: error: bad option"
    )
    environment._process = None  # no process (the Editor): nothing to say
    poll(environment)


def test_a_worker_that_already_exited_tells_why(monkeypatch):
    """Its error waits in the pipe, closed; mlagents' send fails first ("send failed")."""
    monkeypatch.setattr(UnityEnvWorker, "send", UnityEnvWorker.send)  # undone after the test
    run_errors.install([])
    ours, theirs = multiprocessing.Pipe()
    error = PortInUseError(port_in_use_message(5005))
    theirs.send(EnvironmentResponse(EnvironmentCommand.ENV_EXITED, 0, error))
    theirs.close()
    worker = UnityEnvWorker(None, 0, ours)
    with pytest.raises(PortInUseError, match="port 5005 is in use"):
        worker.send(EnvironmentCommand.RESET)
    with pytest.raises(UnityCommunicationException, match="send failed"):
        worker.send(EnvironmentCommand.RESET)  # nothing more to read: mlagents' own error
