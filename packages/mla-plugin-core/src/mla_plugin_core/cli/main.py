"""The ``mla-plugin`` command: scaffold a plugin, find the configs installed packages ship,
print the corrected mlagents install metadata."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

# Only the standard library at import time: `mla-plugin uv-toml` must work where
# mla-plugin-core was installed alone with --no-deps (to get uv.toml before mlagents).
# The commands import what they need (yaml, packaging, torch) when they run.
from mla_plugin_core.cli import doctor as doctor_checks
from mla_plugin_core.cli.scaffold.generate import KINDS, PluginNames, generate
from mla_plugin_core.version import __version__

#: Column titles of ``mla-plugin configs``.
CONFIGS_COLUMNS = ("NAME", "PACKAGE", "TRAINER_TYPE", "PATH")


def _new(args: argparse.Namespace) -> int:
    destination = args.dir or (Path("packages") if Path("packages").is_dir() else Path("."))
    try:
        names = PluginNames.from_name(args.name, args.dist)
        written = generate(names, args.kind, destination)
    except (ValueError, FileExistsError) as err:
        print(f"mla-plugin: {err}", file=sys.stderr)
        return 2
    root = destination / names.distribution
    print(f"Wrote {len(written)} files to {root}")
    print("Next:")
    print(f"  pip install -e {root} mla-envs pytest   # (uv pip install --config-file uv.toml ...)")
    print(f"  pytest {root / 'tests'}")
    return 0


def configs_table(rows: list[tuple[str, str, str, str]]) -> str:
    """``rows`` (name, package, trainer types, path) under :data:`CONFIGS_COLUMNS`, each
    column as wide as its longest entry."""
    table = [CONFIGS_COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(CONFIGS_COLUMNS) - 1)]
    return "\n".join(
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]]
        )
        for row in table
    )


def _configs(args: argparse.Namespace) -> int:
    from mla_plugin_core.cli.shipped_configs import shipped_configs

    configs = shipped_configs()
    if not configs:
        print("no shipped configs installed (mla-dqn, mla-a2c and mla-envs ship some)")
        return 0
    rows = [(c.name, c.package, ",".join(c.trainer_types) or "-", str(c.path)) for c in configs]
    print(configs_table(rows))
    return 0


def _config(args: argparse.Namespace) -> int:
    try:
        from mla_plugin_core.cli.shipped_configs import config_path

        path = config_path(args.name)
    except LookupError as err:
        print(f"mla-plugin: {err}", file=sys.stderr)
        return 2
    if args.print:
        sys.stdout.write(path.read_text())
    else:
        print(path)
    return 0


def _shape(text: str) -> tuple[int, ...]:
    """``8`` or ``3x84x84`` (argparse type of ``--obs``)."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a shape as 8 or 3x84x84") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be >= 1")
    return shape


def _check_model(args: argparse.Namespace) -> int:
    from mla_plugin_core.io.model_check import Expected, check_model

    expected = Expected(
        observation_shapes=tuple(args.obs) if args.obs else None,
        continuous_actions=args.continuous,
        discrete_branches=tuple(args.branches) if args.branches else None,
    )
    if not args.file.is_file():
        print(f"mla-plugin: check-model: {args.file}: no such file", file=sys.stderr)
        return 2
    found = check_model(args.file, expected)
    for violation in found:
        print(f"{args.file}: {violation}")
    if not found:
        print(f"{args.file}: Unity's ML-Agents loads it (every check passed)")
    return 1 if found else 0


def _uv_toml(args: argparse.Namespace) -> int:
    sys.stdout.write(resources.files("mla_plugin_core").joinpath("uv.toml").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mla-plugin", description="Tools for ML-Agents trainer plugins."
    )
    parser.add_argument("--version", action="version", version=f"mla-plugin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    summary = "write a new trainer plugin package"
    new = commands.add_parser("new", help=summary, description=summary)
    new.add_argument("name", help="the trainer_type users will write in their YAML, e.g. my_algo")
    new.add_argument("--kind", choices=KINDS, required=True, help="base trainer to build on")
    new.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="folder to create the package in (default: ./packages if it exists, else .)",
    )
    new.add_argument("--dist", default=None, help="distribution name (default: mla-NAME)")
    new.set_defaults(handler=_new)

    summary = (
        "list the example YAMLs every installed package ships (name, package, trainer_type, path)"
    )
    configs = commands.add_parser("configs", help=summary, description=summary)
    configs.set_defaults(handler=_configs)
    summary = "print the path (or with --print the text) of one shipped example YAML"
    config = commands.add_parser("config", help=summary, description=summary)
    config.add_argument("name", help="its file name, e.g. dqn_basic.yaml (mla-plugin configs)")
    config.add_argument("--print", action="store_true", help="print the YAML, not its path")
    config.set_defaults(handler=_config)

    summary = (
        "check an ONNX model against the rules Unity's ML-Agents applies when it loads one; "
        "one line per broken rule, exit 1 if any"
    )
    check = commands.add_parser("check-model", help=summary, description=summary)
    check.add_argument("file", type=Path, help="the .onnx file")
    check.add_argument("--obs", type=_shape, action="append", metavar="SHAPE",
                       help="a sensor's observation shape, in sensor order, once per sensor "
                            "(8, or 3x84x84 for a camera: C x H x W)")  # fmt: skip
    check.add_argument("--continuous", type=int, default=None, metavar="N",
                       help="the behavior's number of continuous actions")  # fmt: skip
    check.add_argument("--branches", type=int, nargs="+", default=None, metavar="SIZE",
                       help="the behavior's discrete branch sizes")  # fmt: skip
    check.set_defaults(handler=_check_model)

    summary = (
        "print the corrected dependency metadata mlagents needs on Python 3.11, for "
        "`uv pip install --config-file uv.toml` (e.g. mla-plugin uv-toml > uv.toml)"
    )
    uv_toml = commands.add_parser("uv-toml", help=summary, description=summary)
    uv_toml.set_defaults(handler=_uv_toml)

    summary = (
        "check this environment for mlagents-learn: one line per check, with the fix; "
        "exit 1 on a problem"
    )
    doctor = commands.add_parser("doctor", help=summary, description=summary)
    doctor_checks.add_arguments(doctor)
    doctor.set_defaults(handler=doctor_checks.command)

    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
