"""The ``mla-plugin`` command: scaffold a plugin, find the configs plugins ship, print the
corrected mlagents install metadata."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from mla_plugin_core import doctor as doctor_checks
from mla_plugin_core.scaffold.generate import KINDS, PluginNames, generate
from mla_plugin_core.shipped_configs import config_path, shipped_configs


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


def _configs(args: argparse.Namespace) -> int:
    for name, path in shipped_configs().items():
        print(f"{name}\t{path}")
    return 0


def _config(args: argparse.Namespace) -> int:
    try:
        print(config_path(args.name))
    except LookupError as err:
        print(f"mla-plugin: {err}", file=sys.stderr)
        return 2
    return 0


def _uv_toml(args: argparse.Namespace) -> int:
    sys.stdout.write(resources.files("mla_plugin_core").joinpath("uv.toml").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mla-plugin", description="Tools for ML-Agents trainer plugins."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    new = commands.add_parser("new", help="write a new trainer plugin package")
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

    configs = commands.add_parser("configs", help="list the example YAMLs installed plugins ship")
    configs.set_defaults(handler=_configs)
    config = commands.add_parser("config", help="print the path of one shipped example YAML")
    config.add_argument("name", help="e.g. dqn_basic.yaml")
    config.set_defaults(handler=_config)

    uv_toml = commands.add_parser(
        "uv-toml",
        help="print the corrected dependency metadata mlagents needs on Python 3.11, for "
        "`uv pip install --config-file uv.toml` (e.g. mla-plugin uv-toml > uv.toml)",
    )
    uv_toml.set_defaults(handler=_uv_toml)

    doctor = commands.add_parser(
        "doctor",
        help="check this environment for mlagents-learn: one line per check, with the fix; "
        "exit 1 on a problem",
    )
    doctor_checks.add_arguments(doctor)
    doctor.set_defaults(handler=doctor_checks.command)

    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
