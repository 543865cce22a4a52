"""Turn failures of a run's environment into one message that says what to do.

Two failures of ``mlagents-learn`` happen after the configuration is read, in the process
that runs the environment (a worker of mlagents' ``SubprocessEnvManager``), and reach the
console as a traceback:

- a port in use: mlagents raises ``UnityWorkerInUseException``, which names a "worker number"
  but neither the port nor ``--base-port``; the worker logs it with its traceback, and since
  the exception cannot be pickled back as it was, its message comes out twice in one;
- an environment that exits with an error: ``Environment shut down with return code 2.``,
  while what the environment said went to its log file (``-logFile``, by default
  ``results/<run-id>/run_logs/Player-<worker>.log``) and its output to ``/dev/null``.

:func:`install` wraps mlagents' ``create_environment_factory``, so that every environment the
run creates, in whichever process, raises a :class:`RunError` instead: a
``UnityEnvironmentException`` (the worker passes it on quietly and mlagents' restart rules
treat it as before) whose message is what :mod:`.config_errors` prints as
``mlagents-learn: <message>``, with no traceback. It also makes the main process read that
error when the worker has already gone (mlagents reports "send failed" instead). The
messages:

- ``port 5005 is in use (another mlagents-learn or environment?): pass --base-port N
  with a free port``;
- ``the environment exited with code 2; last lines of <log>:`` and the last lines of
  the log, indented.
"""

from __future__ import annotations

import functools
import inspect
import shlex
import signal
from collections.abc import Callable, Sequence
from typing import Any

import mlagents.trainers.subprocess_env_manager as mla_env_manager
import mlagents_envs.environment as mla_environment
from mlagents_envs.exception import (
    UnityCommunicationException,
    UnityEnvironmentException,
    UnityWorkerInUseException,
)

from mla_plugin_core.util.log_files import tail_lines

#: Indentation of the log lines under the message's first line.
LOG_INDENT = "    "


class RunError(UnityEnvironmentException):
    """An environment of the run failed; the message says why and what to do.

    ``mlagents-learn`` prints it as one ``mlagents-learn: <message>`` (see
    :mod:`.config_errors`). The message is the only argument, so the exception travels
    unchanged from the environment's worker process to the main one.
    """


class PortInUseError(RunError):
    """The port an environment of the run needs is taken."""


class EnvironmentExitedError(RunError):
    """The environment's process exited; the message ends with the last lines of its log."""


def port_in_use_message(port: int, worker_id: int = 0, *, editor: bool = False) -> str:
    """What to do when ``port`` is taken.

    :param port: the port in use.
    :param worker_id: the environment that needed it (``--base-port + worker_id``).
    :param editor: the run has no ``--env``: it listens on the Unity Editor's port, which
        ``--base-port`` does not change.
    """
    if editor:
        return (
            f"port {port} is in use (another mlagents-learn waiting for the Unity Editor?): "
            f"without --env mlagents-learn always listens on {port} (--base-port applies only "
            "with --env); stop the other run, or train with --env <executable>"
        )
    where = f" (environment {worker_id} uses --base-port + {worker_id})" if worker_id else ""
    return (
        f"port {port} is in use (another mlagents-learn or environment?): "
        f"pass --base-port N with a free port{where}"
    )


def log_file_of(command: Sequence[str]) -> str | None:
    """The value of the last ``-logFile`` option of an environment's ``command``, if any.

    mlagents adds ``-logFile <run_logs>/Player-<worker>.log`` unless ``--env-args`` has one
    (the option name is compared case-insensitively, as mlagents does).
    """
    found = None
    for option, value in zip(command, command[1:], strict=False):
        if option.lower() == "-logfile":
            found = value
    return found


def exit_status(returncode: int) -> str:
    """``exited with code 2``, or ``was killed by SIGSEGV`` for a negative ``returncode``."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            pass
    return f"exited with code {returncode}"


def environment_exited_message(
    returncode: int, command: Sequence[str], tail: Sequence[str] | None
) -> str:
    """What the console shows when the environment ``command`` ended with ``returncode``.

    :param tail: the last lines of its log file (:func:`tail_lines`); ``None`` or empty
        when it wrote none: the message then says how to run it alone to see its error.
    """
    status = f"the environment {exit_status(returncode)}"
    log = log_file_of(command)
    if tail:
        lines = "\n".join(LOG_INDENT + line for line in tail)
        return f"{status}; last lines of {log}:\n{lines}"
    wrote = f"wrote nothing to {log}" if log else "was given no -logFile"
    return f"{status} and {wrote}; run it alone to see its error: {shlex.join(command)}"


def _explaining_poll_process(poll_process: Callable[[Any], None]) -> Callable[[Any], None]:
    """``UnityEnvironment._poll_process`` raising :class:`EnvironmentExitedError`."""

    def poll(env: Any) -> None:
        try:
            poll_process(env)
        except UnityEnvironmentException:
            process = env._process
            if process is None or process.returncode is None:
                raise
            command = [str(arg) for arg in process.args]
            log = log_file_of(command)
            tail = tail_lines(log) if log else None
            message = environment_exited_message(process.returncode, command, tail)
            raise EnvironmentExitedError(message) from None

    poll._mla_wrapped = True  # type: ignore[attr-defined]
    return poll


class _ExplainingFactory:
    """An environment factory of ``mlagents-learn`` whose failures are :class:`RunError`.

    mlagents sends the factory to each environment worker (with cloudpickle), so the
    worker itself explains its environment's exits, whatever its start method.

    :param factory: mlagents' ``create_unity_environment(worker_id, side_channels)``.
    :param base_port: the first port (``--base-port``; ``None`` without ``--env``).
    :param editor: no ``--env``: the run waits for the Unity Editor.
    """

    def __init__(self, factory: Callable[..., Any], base_port: int | None, editor: bool):
        self.factory = factory
        self.base_port = base_port
        self.editor = editor

    def __call__(self, worker_id: int, side_channels: list[Any]) -> Any:
        environment = mla_environment.UnityEnvironment
        if not getattr(environment._poll_process, "_mla_wrapped", False):
            environment._poll_process = _explaining_poll_process(environment._poll_process)
        try:
            return self.factory(worker_id, side_channels)
        except UnityWorkerInUseException:
            default = (
                environment.DEFAULT_EDITOR_PORT
                if self.editor
                else environment.BASE_ENVIRONMENT_PORT
            )
            port = (default if self.base_port is None else self.base_port) + worker_id
            raise PortInUseError(port_in_use_message(port, worker_id, editor=self.editor)) from None


def _explaining_factories(create: Callable[..., Any]) -> Callable[..., Any]:
    """mlagents' ``create_environment_factory``, returning an :class:`_ExplainingFactory`."""
    signature = inspect.signature(create)

    @functools.wraps(create)  # its signature stays mlagents' (callers may inspect it)
    def create_explaining(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind(*args, **kwargs).arguments
        return _ExplainingFactory(
            create(*args, **kwargs), given.get("start_port"), given.get("env_path") is None
        )

    create_explaining._mla_wrapped = True  # type: ignore[attr-defined]
    return create_explaining


def _send_telling_why(send: Callable[..., None]) -> Callable[..., None]:
    """``UnityEnvWorker.send`` raising the worker's own error when it has already exited.

    A worker whose environment fails at once (a port in use) sends its error and closes its
    end of the pipe, often before the main process sends its first command: mlagents then
    raises ``UnityCommunicationException: UnityEnvironment worker: send failed.`` and the
    worker's error stays unread in the pipe.
    """

    def send_or_tell_why(worker: Any, *args: Any, **kwargs: Any) -> None:
        try:
            send(worker, *args, **kwargs)
        except UnityCommunicationException:
            try:
                response = worker.conn.recv() if worker.conn.poll() else None
            except (OSError, EOFError):
                response = None
            if (
                response is not None
                and response.cmd == mla_env_manager.EnvironmentCommand.ENV_EXITED
            ):
                raise response.payload from None
            raise

    send_or_tell_why._mla_wrapped = True  # type: ignore[attr-defined]
    return send_or_tell_why


def install(learn_modules: Sequence[Any]) -> None:
    """Make the environments of ``mlagents-learn`` fail with a :class:`RunError`.

    :param learn_modules: ``mlagents.trainers.learn`` as loaded (see
        :mod:`.config_errors`); calling it again does nothing.
    """
    for learn in learn_modules:
        create = getattr(learn, "create_environment_factory", None)
        if create is not None and not getattr(create, "_mla_wrapped", False):
            learn.create_environment_factory = _explaining_factories(create)
    worker = mla_env_manager.UnityEnvWorker
    if not getattr(worker.send, "_mla_wrapped", False):
        worker.send = _send_telling_why(worker.send)  # type: ignore[method-assign]
