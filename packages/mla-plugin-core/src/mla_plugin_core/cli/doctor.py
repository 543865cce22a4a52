"""``mla-plugin doctor``: check this Python environment for ``mlagents-learn``, one line each.

Every check prints one line (``ok``, ``note``, ``warn`` or ``FAIL``), and a problem's line
ends with its fix. ``FAIL`` means ``mlagents-learn`` (or one of its plugins) would not work;
the command then exits 1. Checks never raise: an unexpected error in one becomes its
``FAIL`` line and the others still run.

What is checked: the Python version against what the installed mlagents declares; mlagents
in the range mla-plugin-core supports (its own dependency metadata) and mlagents-envs of the
same version; protobuf, its implementation and whether mlagents' messages import; grpcio;
onnx where torch's ONNX export needs it, onnxruntime (optional); the torch build and device;
the trainer types the ``mlagents.trainer_type`` entry points register, and every plugin that
fails to load (mlagents drops it with one log line); the ports ``mlagents-learn`` listens on.

Imports that could break (protobuf, grpc, onnx) run in a child Python (:func:`probe`), so
a broken one cannot take the doctor down; the child runs while torch is imported here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from mla_plugin_core.util.ports import port_free, ports_free

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet

OK = "ok"
NOTE = "note"
WARN = "warn"
FAIL = "FAIL"

#: mlagents' port for ``--env`` worker 0 (``UnityEnvironment.BASE_ENVIRONMENT_PORT``).
DEFAULT_BASE_PORT = 5005
#: The highest TCP port.
MAX_PORT = 65535
#: The mlagents release install commands suggest (the newest supported one).
RECOMMENDED_MLAGENTS = "1.1.0"
#: The port ``mlagents-learn`` without ``--env`` waits on for the Unity Editor (fixed).
EDITOR_PORT = 5004
#: The entry-point group of mlagents' trainer plugins (``mlagents.plugins``).
TRAINER_TYPE_GROUP = "mlagents.trainer_type"
#: The variable protobuf reads to choose its implementation.
PROTOBUF_IMPLEMENTATION_VARIABLE = "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"
#: The first torch whose ``torch.onnx.export`` defaults to the dynamo exporter (onnxscript).
DYNAMO_EXPORT_TORCH = "2.9"
#: The first torch whose TorchScript exporter imports the onnx package.
ONNX_PACKAGE_TORCH = "2.0"
#: The onnx versions that install on Python 3.11 and work with mlagents' export (uv.toml).
ONNX_REQUIREMENT = "onnx>=1.15"
#: How long the child Python of :func:`probe` may take.
PROBE_TIMEOUT_S = 60.0
#: The module of mlagents' messages the probe imports (it imports the others).
MESSAGES_MODULE = "mlagents_envs.communicator_objects.unity_to_external_pb2"


@dataclass(frozen=True)
class Finding:
    """One line of the report.

    :param status: :data:`OK`, :data:`NOTE` (worth knowing, not a problem), :data:`WARN`
        (may bite in some uses) or :data:`FAIL` (``mlagents-learn`` would not work).
    :param subject: what was checked, with its version (``protobuf 7.36.2 (upb)``).
    :param message: what was found.
    :param fix: what to do, for a problem.
    """

    status: str
    subject: str
    message: str
    fix: str | None = None

    def line(self) -> str:
        """``<status> <subject>: <message> -> fix: <fix>``, the status in a 4-wide column."""
        text = f"{self.status:<4} {self.subject}: {self.message}"
        return f"{text} -> fix: {self.fix}" if self.fix else text


@dataclass(frozen=True)
class Options:
    """What the checks look at.

    :param base_port: the ``--base-port`` of the runs to check for (mlagents' default 5005).
    :param num_envs: their ``--num-envs``: ports ``base_port .. base_port + num_envs - 1``.
    :param env: the environment of the child Python (``None``: this process's).
    """

    base_port: int = DEFAULT_BASE_PORT
    num_envs: int = 1
    env: dict[str, str] | None = None


# ---- helpers -------------------------------------------------------------------------------


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _error_text(error: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _ranged(specifier: SpecifierSet | str) -> str:
    """A specifier with its lower bounds first: ``>=0.30.0,<1.2``."""
    from packaging.specifiers import SpecifierSet

    parts = sorted(str(s) for s in SpecifierSet(str(specifier)))
    return ",".join(sorted(parts, key=lambda s: not s.startswith(">")))


def _declared_python(distribution: str) -> SpecifierSet | None:
    from packaging.specifiers import SpecifierSet

    requires = metadata.metadata(distribution).get_all("Requires-Python") or []
    return SpecifierSet(requires[0]) if requires else None


def install_command(*requirements: str) -> str:
    """The command that installs ``requirements`` with mlagents on this Python.

    On Python 3.10 (what mlagents declares) plain pip works; on 3.11 mlagents' own
    metadata refuses to install, and the corrected metadata of ``uv.toml`` is needed.
    """
    quoted = " ".join(f'"{r}"' if any(c in r for c in "<>=!~ ") else r for r in requirements)
    if sys.version_info[:2] == (3, 10):
        return f"pip install {quoted}"
    return f"uv pip install --config-file uv.toml {quoted} (mla-plugin uv-toml > uv.toml)"


# ---- the checks ----------------------------------------------------------------------------


def check_python() -> Iterator[Finding]:
    """This Python against mlagents' Requires-Python and mla-plugin-core's."""
    from packaging.version import Version

    python = Version(platform.python_version())
    subject = f"python {python}"
    core = _declared_python("mla-plugin-core")
    if core is not None and python not in core:
        yield Finding(
            FAIL,
            subject,
            f"mla-plugin-core needs Python {_ranged(core)}",
            "use Python 3.10 or 3.11 (python3.11 -m venv .venv)",
        )
        return
    mlagents_version = _version("mlagents")
    declared = _declared_python("mlagents") if mlagents_version else None
    if declared is None or python in declared:
        where = f"mlagents {mlagents_version} declares {_ranged(declared)}" if declared else ""
        yield Finding(OK, subject, where or sys.executable)
    elif (python.major, python.minor) == (3, 11):
        yield Finding(
            NOTE,
            subject,
            f"above mlagents {mlagents_version}'s Requires-Python {_ranged(declared)}, as "
            "expected: mla-plugins supports 3.11 through the corrected metadata of uv.toml",
        )
    else:
        yield Finding(
            WARN,
            subject,
            f"outside mlagents {mlagents_version}'s Requires-Python {_ranged(declared)}; "
            "mla-plugins tests 3.10 and 3.11",
            "use Python 3.11 (or 3.10) if anything below fails",
        )


def supported_mlagents() -> SpecifierSet:
    """The mlagents range mla-plugin-core declares (its own dependency metadata)."""
    from packaging.requirements import Requirement

    for line in metadata.requires("mla-plugin-core") or []:
        requirement = Requirement(line)
        if requirement.name == "mlagents" and requirement.marker is None:
            return requirement.specifier
    raise LookupError("mla-plugin-core's metadata lists no mlagents requirement")


def check_mlagents() -> Iterator[Finding]:
    """mlagents in the supported range, mlagents-envs of the same version."""
    from packaging.version import Version

    supported = supported_mlagents()
    newest = (f"mlagents=={RECOMMENDED_MLAGENTS}", f"mlagents-envs=={RECOMMENDED_MLAGENTS}")
    installed = _version("mlagents")
    if installed is None:
        yield Finding(
            FAIL,
            "mlagents",
            "not installed",
            install_command(*newest),
        )
        return
    subject = f"mlagents {installed}"
    if Version(installed) in supported:
        yield Finding(OK, subject, f"in mla-plugin-core's supported range {_ranged(supported)}")
    else:
        yield Finding(
            FAIL,
            subject,
            f"outside mla-plugin-core's supported range {_ranged(supported)} (0.30.0, 1.0.0 "
            "and 1.1.0 have the trainer plugin API)",
            install_command(*newest),
        )
    envs = _version("mlagents-envs")
    if envs == installed:
        yield Finding(OK, f"mlagents-envs {envs}", "matches mlagents")
    else:
        found = "not installed" if envs is None else f"differs from mlagents {installed}"
        yield Finding(
            FAIL,
            f"mlagents-envs {envs or ''}".strip(),
            found,
            install_command(f"mlagents-envs=={installed}"),
        )


def probe() -> None:
    """Run in a child Python: import protobuf, mlagents' messages, grpc, onnx, onnxruntime.

    Prints one JSON object: per name, ``{"version": ..., "error": ...}`` (and protobuf's
    implementation, and whether mla-protobuf's hook built the messages).
    """
    found: dict[str, dict[str, Any]] = {}

    def attempt(name: str, action: Callable[[], dict[str, Any]]) -> None:
        try:
            found[name] = action()
        except BaseException as error:  # noqa: BLE001 - reported, whatever it is
            found[name] = {"error": _error_text(error)}

    def protobuf() -> dict[str, Any]:
        import google.protobuf
        from google.protobuf.internal import api_implementation

        return {"version": google.protobuf.__version__, "implementation": api_implementation.Type()}

    def messages() -> dict[str, Any]:
        import importlib

        importlib.import_module(MESSAGES_MODULE)
        try:
            import mla_protobuf
        except ImportError:
            return {"hooked": False}
        return {"hooked": bool(mla_protobuf.status()["loaded"])}

    def version_of(module_name: str) -> Callable[[], dict[str, Any]]:
        def load() -> dict[str, Any]:
            import importlib

            module = importlib.import_module(module_name)
            return {"version": getattr(module, "__version__", None)}

        return load

    attempt("protobuf", protobuf)
    attempt("messages", messages)
    attempt("grpc", version_of("grpc"))
    attempt("onnx", version_of("onnx"))
    attempt("onnxruntime", version_of("onnxruntime"))
    sys.stdout.write(json.dumps(found) + "\n")


def start_probe(env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start :func:`probe` in a child of this Python (read it with :func:`probe_results`)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from mla_plugin_core.cli.doctor import probe; probe()"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def probe_results(child: subprocess.Popen[str]) -> dict[str, dict[str, Any]]:
    """What :func:`probe` printed; every name maps to an error if the child died."""
    try:
        out, err = child.communicate(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        failure = f"the probe (a child Python) took over {PROBE_TIMEOUT_S:.0f} s"
    else:
        try:
            return dict(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            tail = " ".join(err.strip().splitlines()[-1:]) or "no output"
            failure = f"the probe (a child Python) exited {child.returncode}: {tail}"
    names = ("protobuf", "messages", "grpc", "onnx", "onnxruntime")
    return {name: {"error": failure} for name in names}


def protobuf_fix(error: str, env: Mapping[str, str] | None = None) -> str:
    """How to make mlagents' messages import again, from the error importing them."""
    if env is None:
        env = os.environ
    implementation = env.get(PROTOBUF_IMPLEMENTATION_VARIABLE, "")
    if implementation and implementation.strip().lower() != "python":
        return (
            f"unset {PROTOBUF_IMPLEMENTATION_VARIABLE} (it is {implementation!r}; current "
            "protobuf is compiled 'upb' by default, 'python' is the slow fallback)"
        )
    if "Descriptors cannot be created directly" in error:
        try:
            from mla_protobuf.hook import DISABLE_VARIABLE, OFF_VALUES
        except ImportError:
            pass
        else:
            if env.get(DISABLE_VARIABLE, "").strip().lower() in OFF_VALUES:
                return f"unset {DISABLE_VARIABLE} (it turns mla-protobuf's hook off)"
        if _version("mla-protobuf") is None:
            return (
                "pip install mla-protobuf (loads mlagents' messages on protobuf >= 4; "
                "mla-plugin-core depends on it), or go back to what mlagents pins: "
                "pip install 'protobuf<3.21'"
            )
        return "pip install 'protobuf<3.21' (what mlagents pins), and report this to mla-protobuf"
    if "No module named 'google" in error:
        return 'pip install "protobuf>=3.20.3" (uv.toml\'s range; mla-protobuf makes >= 4 work)'
    return (
        "reinstall with the corrected metadata, which lifts mlagents' protobuf<3.21 cap: "
        + install_command(
            f"mlagents=={_version('mlagents') or RECOMMENDED_MLAGENTS}", "mla-protobuf"
        )
    )


def check_protobuf(found: dict[str, dict[str, Any]], env: Mapping[str, str] | None) -> Finding:
    """protobuf's version and implementation, and whether mlagents' messages import."""
    protobuf = found["protobuf"]
    messages = found["messages"]
    if "error" in protobuf and _version("protobuf") is None:
        return Finding(FAIL, "protobuf", "not installed", protobuf_fix("No module named 'google'"))
    version = protobuf.get("version") or _version("protobuf")
    implementation = protobuf.get("implementation", "?")
    subject = f"protobuf {version} ({implementation})"
    if "error" in messages:
        return Finding(
            FAIL,
            subject,
            f"mlagents' messages do not import: {messages['error']}",
            protobuf_fix(messages["error"], env),
        )
    how = " through mla-protobuf" if messages.get("hooked") else ""
    if implementation == "python":
        return Finding(
            NOTE,
            subject,
            f"mlagents' messages import{how}, in pure Python (~100x slower per message than "
            "upb); protobuf >= 5 with mla-protobuf is compiled (uv.toml allows it)",
        )
    return Finding(OK, subject, f"mlagents' messages import{how}")


def check_grpc(found: dict[str, dict[str, Any]]) -> Finding:
    """grpcio, which carries every message between mlagents-learn and the environment."""
    version = _version("grpcio")
    if version is None:
        return Finding(
            FAIL,
            "grpcio",
            "not installed: mlagents-learn talks to environments through it",
            'pip install "grpcio>=1.11"',
        )
    if "error" in found["grpc"]:
        return Finding(
            FAIL,
            f"grpcio {version}",
            f"does not import: {found['grpc']['error']}",
            'pip install --force-reinstall "grpcio>=1.11"',
        )
    return Finding(OK, f"grpcio {version}", "imports")


def check_onnx(found: dict[str, dict[str, Any]]) -> Iterator[Finding]:
    """onnx where torch's ONNX export needs it; onnxruntime, optional."""
    from packaging.version import Version

    torch_version = _version("torch")
    needed = torch_version is not None and Version(torch_version) >= Version(ONNX_PACKAGE_TORCH)
    torch_subject = f"torch {torch_version}"
    onnx_version = _version("onnx")
    if onnx_version is None:
        if needed:
            yield Finding(
                FAIL,
                "onnx",
                f"not installed, and {torch_subject}'s ONNX export imports it: runs train, "
                "then stop at the first checkpoint ('Module onnx is not installed!')",
                f'pip install "{ONNX_REQUIREMENT}"',
            )
        else:
            yield Finding(OK, "onnx", f"not installed, not needed by {torch_subject}")
    elif "error" in found["onnx"]:
        yield Finding(
            FAIL if needed else WARN,
            f"onnx {onnx_version}",
            f"does not import: {found['onnx']['error']}",
            _protobuf_line(found, found["onnx"]["error"])
            or _onnx_protobuf_fix(onnx_version)
            or f'pip install --force-reinstall "{ONNX_REQUIREMENT}"',
        )
    else:
        exporter = ""
        if torch_version and Version(torch_version) >= Version(DYNAMO_EXPORT_TORCH):
            exporter = " (TorchScript exporter, selected by mla-plugin-core: no onnxscript needed)"
        yield Finding(OK, f"onnx {onnx_version}", f"{torch_subject} exports ONNX with it{exporter}")
    runtime = _version("onnxruntime")
    if runtime is None:
        yield Finding(
            NOTE,
            "onnxruntime",
            "not installed (optional: runs the exported .onnx models outside Unity; with "
            "mla-protobuf, the protobuf it brings keeps mlagents working)",
        )
    elif "error" in found["onnxruntime"]:
        yield Finding(
            WARN,
            f"onnxruntime {runtime}",
            f"does not import: {found['onnxruntime']['error']} (optional)",
            _protobuf_line(found, found["onnxruntime"]["error"])
            or "pip install --force-reinstall onnxruntime, or pip uninstall onnxruntime",
        )
    else:
        yield Finding(OK, f"onnxruntime {runtime}", "imports (optional: runs .onnx models)")


def _protobuf_line(found: dict[str, dict[str, Any]], error: str) -> str | None:
    """ "see the protobuf line" when ``error`` comes from the protobuf that fails mlagents."""
    broken = found.get("messages", {}).get("error")
    if broken and (error == broken or "protobuf" in error):
        return "see the protobuf line"
    return None


def _onnx_protobuf_fix(onnx_version: str) -> str | None:
    """A fix when onnx's declared protobuf range excludes the installed protobuf."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    protobuf = _version("protobuf")
    for line in metadata.requires("onnx") or []:
        requirement = Requirement(line)
        if requirement.name == "protobuf" and protobuf is not None:
            if Version(protobuf) not in requirement.specifier:
                wanted = _ranged(requirement.specifier)
                return (
                    f"onnx {onnx_version} needs protobuf{wanted}, {protobuf} is installed: "
                    f'pip install "protobuf{wanted}" (mla-protobuf keeps mlagents working on it)'
                )
    return None


def check_torch() -> Finding:
    """The torch build (CPU, CUDA, ROCm) and the device mlagents-learn trains on."""
    if _version("torch") is None:
        return Finding(
            FAIL,
            "torch",
            "not installed",
            'pip install "torch==2.13.0+cpu" --find-links <folder with CPU torch wheels> '
            "(or uv's --torch-backend cpu)",
        )
    try:
        import torch
    except Exception as error:  # noqa: BLE001 - a broken install is a finding
        version = _version("torch")
        return Finding(
            FAIL,
            f"torch {version}",
            f"does not import: {_error_text(error)}",
            f'pip install --force-reinstall "torch=={version}"',
        )

    subject = f"torch {torch.__version__}"
    cuda = getattr(torch.version, "cuda", None)
    hip = getattr(torch.version, "hip", None)
    if not cuda and not hip:
        return Finding(OK, f"{subject} (CPU build)", "trains on cpu")
    build = f"CUDA {cuda}" if cuda else f"ROCm {hip}"
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        name = torch.cuda.get_device_name(0)
        return Finding(
            OK,
            f"{subject} ({build} build)",
            f"{count} GPU(s), {name}: mlagents-learn trains on cuda (--torch-device cpu to not)",
        )
    return Finding(
        NOTE,
        f"{subject} ({build} build)",
        f"no GPU visible: trains on cpu (the CPU build, torch=={torch.__version__.split('+')[0]}+cpu, "
        "is GBs smaller)",
    )


@dataclass(frozen=True)
class LoadedPlugin:
    """One ``mlagents.trainer_type`` entry point, loaded the way mlagents loads it.

    :param name: the entry point's name.
    :param value: where it points (``module:function``).
    :param distribution: ``name version`` of the distribution declaring it.
    :param trainer_types: the trainer types it registered.
    :param error: ``Type: message`` when loading or calling it raised (mlagents then drops
        it with one log line).
    """

    name: str
    value: str
    distribution: str
    trainer_types: tuple[str, ...] = ()
    error: str | None = None


def load_trainer_plugins() -> list[LoadedPlugin]:
    """Load and call every ``mlagents.trainer_type`` entry point, as mlagents does.

    mlagents (``mlagents/plugins/trainer_type.py``) loads each entry point, calls it, expects
    ``({name: trainer class}, {name: settings class})`` and catches any exception, logging
    one line and dropping the plugin. Here the exception is kept.
    """
    plugins = []
    for entry_point in metadata.entry_points(group=TRAINER_TYPE_GROUP):
        dist = getattr(entry_point, "dist", None)
        distribution = f"{dist.metadata['Name']} {dist.version}" if dist else "?"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer_types, settings = entry_point.load()()
                names = tuple(dict(trainer_types))
                dict(settings)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - mlagents catches BaseException too
            plugins.append(
                LoadedPlugin(
                    entry_point.name, entry_point.value, distribution, error=_error_text(error)
                )
            )
        else:
            plugins.append(LoadedPlugin(entry_point.name, entry_point.value, distribution, names))
    return plugins


def plugin_fix(plugin: LoadedPlugin) -> str:
    """How to make a plugin that fails to load load, or go."""
    error = plugin.error or ""
    package = plugin.distribution.split(" ")[0]
    if "pkg_resources" in error:
        return 'pip install "setuptools<81" (mlagents imports pkg_resources, gone in 81)'
    if "Descriptors cannot be created" in error or "google.protobuf" in error:
        return "see the protobuf line"
    return f"fix {package} or uninstall it (pip uninstall {package})"


def check_trainer_types() -> Iterator[Finding]:
    """The trainer types every plugin registers, and each plugin that fails to load."""
    plugins = load_trainer_plugins()
    providers: dict[str, str] = {}
    for plugin in plugins:
        for name in plugin.trainer_types:
            if name in providers and providers[name] != plugin.distribution:
                yield Finding(
                    WARN,
                    f"trainer type {name}",
                    f"registered by {providers[name]} and by {plugin.distribution}: the one "
                    "loaded last wins",
                    "uninstall one of them",
                )
            providers[name] = plugin.distribution
    by_distribution: dict[str, list[str]] = {}
    for name, distribution in providers.items():
        by_distribution.setdefault(distribution, []).append(name)
    order = sorted(by_distribution, key=lambda dist: (not dist.startswith("mlagents "), dist))
    listed = "; ".join(f"{', '.join(by_distribution[dist])} ({dist})" for dist in order)
    if listed:
        yield Finding(OK, "trainer types", listed)
    else:
        yield Finding(
            FAIL,
            "trainer types",
            f"no {TRAINER_TYPE_GROUP} entry point registered any",
            "make the plugins below load"
            if any(plugin.error for plugin in plugins)
            else install_command(f"mlagents=={RECOMMENDED_MLAGENTS}", "mla-dqn"),
        )
    for plugin in plugins:
        if plugin.error is not None:
            yield Finding(
                FAIL,
                f"plugin {plugin.name} ({plugin.distribution}, {plugin.value})",
                f"does not load: {plugin.error} (mlagents-learn drops it with one log line: what "
                "it registers is missing)",
                plugin_fix(plugin),
            )


def _free_base_port(count: int, start: int) -> int | None:
    """The first ``p >= start`` with ``p .. p + count - 1`` free, for a suggestion."""
    for base in range(start, min(start + 1000, MAX_PORT + 2 - count)):
        if ports_free(base, count):
            return base
    return None


def check_ports(base_port: int, num_envs: int) -> Iterator[Finding]:
    """``--base-port .. + num_envs - 1`` (``--env`` runs) and 5004 (the Editor) are free."""
    ports = list(range(base_port, base_port + num_envs))
    busy = [port for port in ports if not port_free(port)]
    shown = f"{ports[0]}" if num_envs == 1 else f"{ports[0]}-{ports[-1]}"
    if busy:
        other = _free_base_port(num_envs, base_port + 100)
        flag = f"--base-port {other}" if other else "--base-port N (a free port)"
        yield Finding(
            FAIL,
            f"port {shown}",
            f"{'in use' if num_envs == 1 else ', '.join(map(str, busy)) + ' in use'}, so "
            "mlagents-learn --env ... would stop with UnityWorkerInUseException (another run "
            "or program listens there)",
            f"give each run its own ports: mlagents-learn ... {flag}",
        )
    else:
        yield Finding(OK, f"port {shown}", "free for mlagents-learn --env (--base-port)")
    if EDITOR_PORT in ports:
        return
    if port_free(EDITOR_PORT):
        yield Finding(OK, f"port {EDITOR_PORT}", "free for training with the Unity Editor")
    else:
        yield Finding(
            WARN,
            f"port {EDITOR_PORT}",
            "in use: mlagents-learn without --env waits for the Editor here, as a run "
            "probably does now; runs with --env do not use it",
            "stop the other run before training with the Editor",
        )


# ---- running them --------------------------------------------------------------------------


def _guarded(subject: str, check: Callable[[], Any]) -> list[Finding]:
    """The findings of ``check``; an exception becomes one ``FAIL`` line."""
    try:
        result = check()
        return [result] if isinstance(result, Finding) else list(result)
    except Exception as error:  # noqa: BLE001 - the doctor never crashes
        return [
            Finding(
                FAIL,
                subject,
                f"the check itself failed: {_error_text(error)}",
                "report this to mla-plugin-core with the line above",
            )
        ]


def _import_quietly(module: str) -> None:
    """Import ``module`` ahead of its check (in a thread); its check reports any error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            __import__(module)
    except BaseException:  # noqa: BLE001, S110 - the check imports it again and says why
        pass


def iter_checks(options: Options | None = None) -> Iterator[Finding]:
    """Every check's findings, in report order, each as soon as it is known.

    The probe (a child Python) and the import of torch (seconds; the trainer types need it
    too) start first and run while the quick checks are made.
    """
    options = options or Options()
    threading.Thread(target=_import_quietly, args=("torch",), daemon=True).start()
    try:
        probing: subprocess.Popen[str] | None = start_probe(options.env)
    except OSError as error:
        probing = None
        yield Finding(FAIL, "probe", f"cannot start a child Python: {_error_text(error)}")
    yield from _guarded("python", check_python)
    yield from _guarded("mlagents", check_mlagents)
    if probing is not None:
        found = probe_results(probing)
        yield from _guarded("protobuf", lambda: check_protobuf(found, options.env))
        yield from _guarded("grpcio", lambda: check_grpc(found))
        yield from _guarded("onnx", lambda: check_onnx(found))
    yield from _guarded("torch", check_torch)
    yield from _guarded("trainer types", check_trainer_types)
    yield from _guarded("ports", lambda: check_ports(options.base_port, options.num_envs))


def run_checks(options: Options | None = None) -> list[Finding]:
    """Every finding of :func:`iter_checks`."""
    return list(iter_checks(options))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1 to {MAX_PORT})")
    return port


def _count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count} is not allowed: must be >= 1")
    return count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mla-plugin doctor``."""
    parser.add_argument(
        "--base-port",
        type=_port,
        default=DEFAULT_BASE_PORT,
        help=f"the --base-port of the runs to check for (default {DEFAULT_BASE_PORT}, mlagents')",
    )
    parser.add_argument(
        "--num-envs",
        type=_count,
        default=1,
        help="their --num-envs: the ports from --base-port on that must be free (default 1)",
    )


def command(args: argparse.Namespace) -> int:
    """``mla-plugin doctor``: print every finding, a summary; 1 if anything FAILed."""
    if args.base_port + args.num_envs - 1 > MAX_PORT:
        print(
            f"mla-plugin doctor: --base-port {args.base_port} with --num-envs {args.num_envs} "
            f"goes past port {MAX_PORT}",
            file=sys.stderr,
        )
        return 2
    failed = 0
    try:
        for finding in iter_checks(Options(base_port=args.base_port, num_envs=args.num_envs)):
            print(finding.line(), flush=True)
            failed += finding.status == FAIL
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    if failed:
        print(f"{failed} problem(s) in {sys.prefix}: fix the FAIL lines above")
        return 1
    print(f"no problems in {sys.prefix}")
    return 0
