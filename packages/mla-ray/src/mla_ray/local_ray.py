"""Start Ray nodes on this machine that survive a slow start.

A raylet whose dashboard agent and runtime-env agent were given port 0 waits a fixed 15 s
for them to write their chosen ports to files, then aborts ("The current node timed out
during startup"; ray-project/ray#65983). On a loaded machine those Python agents can take
longer than that to import. Given fixed ports, the raylet does not wait for the files, so
every node started here gets its own reserved agent ports (:mod:`mla_ray.ports`). Ray's
Python side does not hand the raylet the agent's HTTP port (``dashboard_agent_listen_port``,
a flag the raylet has), so :func:`_pass_listen_port` adds it to the raylet's command line.

``ray.init()`` cannot pass those ports; :class:`ray.cluster_utils.Cluster` (Ray's own way to
run one or several nodes in this process tree) can. Its nodes are stopped when this
process exits, and by Ray's reaper process if this process is killed.

Ray puts its Unix sockets under its temp folder (``$RAY_TMPDIR``, else ``$TMPDIR``, else
``/tmp``, plus ``/ray``), and a socket path may be at most 107 bytes (103 on macOS). Under a
deep ``$TMPDIR`` (nox's ``.nox/<session>/tmp`` in a long checkout path, a job scheduler's
per-job folder) the head node would fail with "AF_UNIX path length cannot exceed 107 bytes";
:func:`ray_temp_dir` then picks a short folder instead.
"""

from __future__ import annotations

import logging
from typing import Any

from mla_ray.ports import PortReservation

logger = logging.getLogger(__name__)

#: The agent ports a raylet would otherwise wait for (RayParams names).
AGENT_PORTS = (
    "metrics_agent_port",
    "metrics_export_port",
    "dashboard_agent_listen_port",
    "runtime_env_agent_port",
)
#: Object store per node: a sweep passes only small results through it.
OBJECT_STORE_BYTES = 200 * 1024 * 1024
#: Health checks of the nodes: Ray's defaults (10 s timeout, 5 misses) declare a node dead
#: on a machine whose cores the trials keep busy; a node here dies only with this process.
HEALTH_CHECKS = {"health_check_timeout_ms": 30_000, "health_check_failure_threshold": 20}


#: What Ray appends to its temp folder for its longest socket path, with a 7-digit pid:
#: ``/session_2026-12-02_07-46-22_419875_4194304/sockets/plasma_store``.
SOCKET_SUFFIX_BYTES = 64
#: The shortest limit of a Unix socket path among the systems Ray runs on (macOS), less the NUL.
SOCKET_PATH_MAX_BYTES = 103


def ray_temp_dir() -> str | None:
    """The temp folder for nodes started here: ``None`` (Ray's default) when Ray's socket
    paths fit under it, else ``/tmp/ray-<uid>`` (:func:`start_cluster` sets ``$RAY_TMPDIR``
    to it); ``$RAY_TMPDIR``, when set, is always kept."""
    import os
    import sys

    if "RAY_TMPDIR" in os.environ:
        return None
    # Ray's own choice (ray._common.utils.get_default_ray_temp_dir): $TMPDIR only on Linux
    base = os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None
    default = os.path.join(base or os.path.join(os.sep, "tmp"), "ray")
    fits = len(os.fsencode(default)) + SOCKET_SUFFIX_BYTES <= SOCKET_PATH_MAX_BYTES
    return None if fits else os.path.join(os.sep, "tmp", f"ray-{os.getuid()}")


def _pass_listen_port() -> None:
    """Give every raylet started from this process its ``--dashboard_agent_listen_port``."""
    from ray._private import services

    original = services.start_ray_process
    if getattr(original, "_mla_ray", False):
        return

    def start_ray_process(command: list[str], process_type: str, *args: Any, **kwargs: Any) -> Any:
        if command and command[0] == services.RAYLET_EXECUTABLE:
            flag = "--dashboard_agent_listen_port"
            if not any(part.startswith(flag) for part in command):
                listen = next(
                    (p.split("=", 1)[1] for p in command if p.startswith("--listen-port=")), None
                )
                if listen is None:
                    listen = _listen_port_of(command)
                if listen not in (None, "0"):
                    command = [*command, f"{flag}={listen}"]
        return original(command, process_type, *args, **kwargs)

    start_ray_process._mla_ray = True  # type: ignore[attr-defined]
    services.start_ray_process = start_ray_process


def _listen_port_of(command: list[str]) -> str | None:
    """The ``--listen-port`` given to the dashboard agent inside the raylet's command."""
    for part in command:
        if "--listen-port=" in part:
            return part.split("--listen-port=", 1)[1].split()[0].strip("'\"")
    return None


#: Agent port reservations of the nodes started by this process (released by stop_cluster).
_RESERVATIONS: list[PortReservation] = []


def node_args(num_cpus: int | None, **extra: Any) -> dict[str, Any]:
    """``Cluster.add_node`` arguments for one node with fixed, reserved agent ports."""
    import os

    reservation = PortReservation(len(AGENT_PORTS))
    _RESERVATIONS.append(reservation)
    ports = {name: reservation.base + i for i, name in enumerate(AGENT_PORTS)}
    # The ports stay reserved while this process (and so the node it started) lives.
    args: dict[str, Any] = {
        "num_cpus": num_cpus if num_cpus is not None else os.cpu_count() or 1,
        "object_store_memory": OBJECT_STORE_BYTES,
        "include_dashboard": False,
        **ports,
    }
    args.update(extra)
    return args


def start_cluster(num_cpus: int | None = None, worker_cpus: tuple[int, ...] = ()) -> Any:
    """A Ray head node on this machine with ``num_cpus`` CPUs, plus one worker node per
    entry of ``worker_cpus``; returns the :class:`ray.cluster_utils.Cluster`."""
    import os

    from ray.cluster_utils import Cluster

    _pass_listen_port()
    temp_dir = ray_temp_dir()
    if temp_dir is not None:
        # for all of Ray in this process tree (Cluster also writes its address file there)
        os.environ["RAY_TMPDIR"] = temp_dir
    # The system config is the cluster's: the head node sets it for all.
    head = node_args(num_cpus, _system_config=dict(HEALTH_CHECKS))
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for cpus in worker_cpus:
        cluster.add_node(**node_args(cpus))
    return cluster


def stop_cluster(cluster: Any) -> None:
    """Stop the nodes of ``cluster`` and give their agent ports back."""
    cluster.shutdown()
    while _RESERVATIONS:
        _RESERVATIONS.pop().release()


#: The cluster :func:`connect` started on this machine, if it started one.
_LOCAL_CLUSTER: list[Any] = []


def connect(address: str | None, num_cpus: int | None = None, **init_args: Any) -> None:
    """Join the Ray cluster at ``address``, or start one on this machine (``num_cpus`` CPUs;
    default all of them) and join that; ``init_args`` go to ``ray.init``."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, **init_args)
        return
    cluster = start_cluster(num_cpus)
    _LOCAL_CLUSTER.append(cluster)
    # Ray would log "Connecting to existing Ray cluster" for the one just started here
    ray_logger = logging.getLogger("ray._private.worker")
    quiet = _DropMessage("Connecting to existing Ray cluster")
    ray_logger.addFilter(quiet)
    try:
        ray.init(address=cluster.address, **init_args)
    finally:
        ray_logger.removeFilter(quiet)
    logger.info(f"Started Ray on this machine for this run ({cluster.address})")


class _DropMessage(logging.Filter):
    """Drops the log records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def disconnect() -> None:
    """If :func:`connect` started Ray here: leave it and stop its nodes (a cluster joined by
    address is left to the caller, which may still use it)."""
    import ray

    while _LOCAL_CLUSTER:
        ray.shutdown()
        stop_cluster(_LOCAL_CLUSTER.pop())
