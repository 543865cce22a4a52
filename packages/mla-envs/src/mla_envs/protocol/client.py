"""The Unity side of one ML-Agents connection: handshake, then reset/step until quit.

:class:`UnityClient` connects to the trainer's gRPC server (``mlagents-learn`` or
``mlagents_envs.UnityEnvironment``), introduces itself, then answers every input of the
trainer with the environments' next batch of agent infos.

A handshake reply without the trainer's initialization input means another environment
already holds that trainer: the client says the port is in use and ends at once.

It ends, returning an exit code, when the trainer closes (status 400 or QUIT), when
*any* gRPC error occurs (the trainer stopped its server or died), after ``idle_timeout``
seconds without a reply, or when :meth:`UnityClient.stop` is called from another thread
(signal handler, :class:`~mla_envs.protocol.lifeline.Lifeline`).
"""

from __future__ import annotations

import logging
import threading
import time

import grpc
from mlagents_envs.communicator_objects.command_pb2 import QUIT, RESET
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.communicator_objects.unity_to_external_pb2 import (
    DESCRIPTOR as SERVICE_FILE,
)

from mla_envs.envs.base import AgentBatch, BehaviorSpec, VectorEnv
from mla_envs.parameters import EnvironmentParameters
from mla_envs.protocol import messages
from mla_envs.protocol.side_channels import SideChannels
from mla_envs.version import __version__

logger = logging.getLogger(__name__)

_EXCHANGE = SERVICE_FILE.services_by_name["UnityToExternalProto"].methods_by_name["Exchange"]
#: gRPC path of ``UnityToExternalProto.Exchange``, read from mlagents' descriptor.
EXCHANGE_PATH = f"/{_EXCHANGE.containing_service.full_name}/{_EXCHANGE.name}"
#: Key of the throughput this side reports through the stats side channel.
ENV_STEPS_PER_SECOND = "Environment Side/Agent Steps per Busy Second"

EXIT_OK = 0
EXIT_NO_TRAINER = 1
EXIT_ENV_ERROR = 3
EXIT_PORT_IN_USE = 4
#: Error of an env whose trainer port is taken; %-args: the port, what the server did.
PORT_IN_USE = (
    "Port %d is in use: the trainer there %s; "
    "give each run its own port (mlagents-learn --base-port)"
)
#: Handshake failures that mean nobody serves the port (yet), not a busy one.
NO_SERVER = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


class UnityClient:
    """Serve one trainer connection with a set of environments, one per behavior.

    :param envs: the environments; their behavior names must be unique.
    :param parameters: shared by ``envs``; updated by the trainer's side channel.
    :param port: the trainer's port (``--mlagents-port``; 5004 for the "Editor").
    :param seed: overrides the seed the trainer sends, when not None.
    :param connect_timeout: seconds to wait for the trainer's server.
    :param idle_timeout: seconds to wait for any later reply; the trainer may spend
        long in updates, so keep it well above an update's duration.
    :param stats_period: seconds between reports to the stats side channel.
    """

    def __init__(
        self,
        envs: list[VectorEnv],
        parameters: EnvironmentParameters,
        port: int = 5004,
        seed: int | None = None,
        connect_timeout: float = 60.0,
        idle_timeout: float = 3600.0,
        stats_period: float = 5.0,
        log_path: str = "",
    ) -> None:
        names = [env.spec.name for env in envs]
        if len(set(names)) != len(names):
            raise ValueError(f"behavior names must be unique, got {names}")
        self.envs = envs
        self.side_channels = SideChannels(parameters)
        self.port = port
        self.seed_override = seed
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.stats_period = stats_period
        self.log_path = log_path
        self.seconds_per_step = max(env.seconds_per_step for env in envs)
        self._channel: grpc.Channel | None = None
        self._stop_reason: str | None = None
        self._lock = threading.RLock()  # stop() may run in a signal handler
        self._has_reset = False
        # Throughput bookkeeping: agent steps and busy seconds since the last report.
        self._busy = 0.0
        self._agent_steps = 0
        self._last_report = time.monotonic()
        self._next_due = 0.0

    def stop(self, reason: str) -> None:
        """End :meth:`run` from another thread: cancels the call in flight."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
            if self._channel is not None:
                self._channel.close()

    def run(self) -> int:
        """Connect, serve the trainer until it leaves, return an exit code."""
        with self._lock:
            if self._stop_reason is not None:
                return EXIT_OK
            self._channel = grpc.insecure_channel(
                f"localhost:{self.port}",
                options=[
                    ("grpc.max_send_message_length", -1),
                    ("grpc.max_receive_message_length", -1),
                ],
            )
        exchange = self._channel.unary_unary(EXCHANGE_PATH)
        connected = False
        try:
            reply = self._call(
                exchange,
                messages.handshake_message("mla-envs", __version__, self.log_path),
                timeout=self.connect_timeout,
                wait_for_ready=True,
            )
            connected = True
            if not reply.unity_input.rl_initialization_input.communication_version:
                # The trainer there answered another environment's call: it is taken.
                logger.error(PORT_IN_USE, self.port, "already serves another environment")
                return EXIT_PORT_IN_USE
            self._on_handshake(reply)
            reply = self._call(exchange, messages.empty_message(), self.idle_timeout)
            while True:
                if reply.header.status != messages.STATUS_OK:
                    logger.info("Trainer closed (status %d)", reply.header.status)
                    return EXIT_OK
                start = time.perf_counter()
                message = self._answer(reply)
                if message is None:
                    logger.info("Trainer sent QUIT")
                    return EXIT_OK
                payload = message.SerializeToString()
                self._busy += time.perf_counter() - start
                self._pace()
                reply = self._call(exchange, payload, self.idle_timeout)
        except (grpc.RpcError, ValueError) as error:
            # ValueError: the channel was closed by stop() between two calls.
            if self._stop_reason is not None:
                logger.info("Stopping: %s", self._stop_reason)
                return EXIT_OK
            code = error.code() if isinstance(error, grpc.RpcError) else error
            if not connected and code not in NO_SERVER:
                # A server answered and failed the call: another environment's exchange
                # with that trainer got in the way (or it is no ML-Agents trainer).
                logger.error(PORT_IN_USE, self.port, f"failed the handshake ({code})")
                return EXIT_PORT_IN_USE
            if not connected:
                logger.error(
                    "No trainer answered on port %d within %.0f s (%s)",
                    self.port,
                    self.connect_timeout,
                    code,
                )
                return EXIT_NO_TRAINER
            logger.info("Trainer gone (%s): exiting", code)
            return EXIT_OK
        except KeyboardInterrupt:
            logger.info("Interrupted")
            return EXIT_OK
        except Exception:
            logger.exception("Environment failed")
            return EXIT_ENV_ERROR
        finally:
            self._channel.close()
            for env in self.envs:
                env.close()

    def _call(self, exchange, message, timeout: float, wait_for_ready: bool = False):
        """One ``Exchange``: serialize (unless bytes), call, parse the reply."""
        if isinstance(message, UnityMessageProto):
            message = message.SerializeToString()
        raw = exchange(message, timeout=timeout, wait_for_ready=wait_for_ready)
        start = time.perf_counter()
        reply = UnityMessageProto.FromString(raw)
        self._busy += time.perf_counter() - start
        return reply

    def _on_handshake(self, reply: UnityMessageProto) -> None:
        init = reply.unity_input.rl_initialization_input
        logger.info(
            "Connected to trainer: mlagents-envs %s, communication %s, seed %d",
            init.package_version,
            init.communication_version,
            init.seed,
        )
        theirs = init.communication_version.split(".")[0]
        ours = messages.COMMUNICATION_VERSION.split(".")[0]
        if theirs != ours:
            logger.warning(
                "Trainer speaks communication version %s, this env %s",
                init.communication_version,
                messages.COMMUNICATION_VERSION,
            )
        seed = init.seed if self.seed_override is None else self.seed_override
        for env in self.envs:
            env.seed(seed)

    def _answer(self, reply: UnityMessageProto) -> UnityMessageProto | None:
        """The reply to one trainer input, or None on QUIT."""
        rl_input = reply.unity_input.rl_input
        self.side_channels.receive(rl_input.side_channel)
        if rl_input.command == QUIT:
            return None
        reset = rl_input.command == RESET or not self._has_reset
        steps: list[tuple[BehaviorSpec, AgentBatch, AgentBatch]] = []
        for env in self.envs:
            if reset:
                terminal, decision = env.empty_batch(), env.reset()
            else:
                actions = messages.read_actions(rl_input, env.spec, env.num_agents)
                terminal, decision = env.step(actions)
            steps.append((env.spec, terminal, decision))
            self._agent_steps += len(decision)
        self._has_reset = True
        self._report_stats()
        return messages.output_message(steps, self.side_channels.take_outgoing(), with_specs=reset)

    def _report_stats(self) -> None:
        now = time.monotonic()
        if now - self._last_report < self.stats_period:
            return
        if self._busy > 0:
            rate = self._agent_steps / self._busy
            self.side_channels.queue_stat(ENV_STEPS_PER_SECOND, rate)
            logger.info("Env-side throughput: %.0f agent steps per busy second", rate)
        for env in self.envs:
            for key, value in env.stats().items():
                self.side_channels.queue_stat(key, value)
        self._busy, self._agent_steps, self._last_report = 0.0, 0, now

    def _pace(self) -> None:
        """Advance simulated time no faster than ``time_scale`` x wall time, like Unity.

        Each reply stands for :attr:`seconds_per_step` simulated seconds (3DBall: 0.1 s,
        so at ``mlagents-learn``'s default time scale 20 at most 200 replies a second;
        ``--time-scale 1`` gives real time). A slow trainer is never made up for with
        bursts: lost time stays lost. Time scale 0 (not set) means unpaced.
        """
        time_scale = self.side_channels.engine.time_scale
        if time_scale <= 0:
            return
        now = time.monotonic()
        if self._next_due > now:
            time.sleep(self._next_due - now)
            now = self._next_due
        self._next_due = now + self.seconds_per_step / time_scale
