"""Render the package templates for a new trainer plugin."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mla_plugin_core.util.naming import distribution_name
from mla_plugin_core.version import __version__ as CORE_VERSION

KINDS = ("on-policy", "off-policy")
TEMPLATE_SUFFIX = ".tmpl"


@dataclass(frozen=True)
class PluginNames:
    """Every spelling of a plugin's name the templates need.

    :param trainer_type: what users write as ``trainer_type:`` (``my_algo``).
    :param distribution: the pip name (``mla-my-algo``).
    :param package: the import name (``mla_my_algo``).
    :param class_prefix: prefix of its classes (``MyAlgo``).
    """

    trainer_type: str
    distribution: str
    package: str
    class_prefix: str

    @classmethod
    def from_name(cls, name: str, distribution: str | None = None) -> PluginNames:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(
                f"NAME {name!r} must start with a lowercase letter and hold only lowercase "
                "letters, digits and underscores (it becomes the YAML trainer_type)"
            )
        distribution = distribution or distribution_name(name)
        package = distribution.replace("-", "_")
        if not package.isidentifier():
            raise ValueError(f"distribution {distribution!r} does not give a valid import name")
        prefix = "".join(part.capitalize() for part in name.split("_"))
        return cls(name, distribution, package, prefix)

    def substitutions(self) -> dict[str, str]:
        core_minor = ".".join(CORE_VERSION.split(".")[:2])
        major, minor = (int(x) for x in core_minor.split("."))
        return {
            "__TRAINER_TYPE__": self.trainer_type,
            "__DISTRIBUTION__": self.distribution,
            "__PACKAGE__": self.package,
            "__CLASS__": self.class_prefix,
            "__CORE_RANGE__": f">={core_minor},<{major}.{minor + 1}",
        }


def _render(text: str, substitutions: dict[str, str]) -> str:
    for placeholder, value in substitutions.items():
        text = text.replace(placeholder, value)
    return text


def generate(names: PluginNames, kind: str, destination: Path) -> list[Path]:
    """Write the package for ``names`` of ``kind`` into ``destination/<distribution>``.

    :raises FileExistsError: if that folder exists (nothing is overwritten).
    :return: the files written.
    """
    if kind not in KINDS:
        raise ValueError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    root = destination / names.distribution
    if root.exists():
        raise FileExistsError(f"{root} already exists; choose another NAME or --dir")
    substitutions = names.substitutions()
    written: list[Path] = []
    templates = resources.files("mla_plugin_core.cli.scaffold") / "templates"
    for layer in ("common", kind):
        base = templates / layer
        for template in _walk(base):
            relative = _render(template[0], substitutions).removesuffix(TEMPLATE_SUFFIX)
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_render(template[1], substitutions))
            written.append(target)
    _write_hyperparameter_table(root, names)
    return written


def _write_hyperparameter_table(root: Path, names: PluginNames) -> None:
    """Fill the README's table from the new package's settings (imported from ``root/src``
    for the moment, then forgotten, so that the installed package is the one tests see)."""
    import sys

    from mla_plugin_core.testing.hyperparameters import update_readme_tables

    sys.path.insert(0, str(root / "src"))
    try:
        update_readme_tables(root / "README.md")
    except Exception:  # noqa: BLE001, S110 - e.g. mlagents not installed here: the table
        pass  # stays empty, and the conformance test says to write it
    finally:
        sys.path.remove(str(root / "src"))
        for module in [m for m in sys.modules if m.split(".")[0] == names.package]:
            del sys.modules[module]


def _walk(folder, prefix: str = "") -> list[tuple[str, str]]:
    """(relative path, text) of every template file under ``folder``."""
    found: list[tuple[str, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            found += _walk(entry, path + "/")
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append((path, entry.read_text()))
    return found
