"""Read the documentation of a settings class, and keep README tables equal to it.

A hyperparameter is documented by the ``#:`` comment lines right above its field (the
form Sphinx autodoc reads), in the class that declares it or in a base class::

    #: Transitions per gradient step, >= 1.
    batch_size: int = hyperparameter(64, ge=1)

A README shows a settings class as a generated table between two markers naming it::

    <!-- hyperparameters: mla_dqn.settings:DQNSettings -->
    | key | default | meaning |
    ...
    <!-- /hyperparameters -->

``python -m mla_plugin_core.testing.hyperparameters README.md`` rewrites every such table
from the classes; :func:`readme_table_differences` (run by the conformance tests,
:class:`~mla_plugin_core.testing.conformance.PluginConformance`) says which tables are out
of date.
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import attr

from mla_plugin_core.settings import StrictBool

#: ``<!-- hyperparameters: module:Class -->`` ... ``<!-- /hyperparameters -->`` in a README.
TABLE_MARKERS = re.compile(
    r"(<!-- hyperparameters: (?P<target>[\w.]+:\w+) -->\n)(?P<table>.*?)(<!-- /hyperparameters -->)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Hyperparameter:
    """One key of a ``hyperparameters:`` block as its settings class declares it.

    :param name: the YAML key (the attrs field name).
    :param default: the field's default (``attr.NOTHING`` when the key is required, an
        ``attr.Factory`` when it is computed from other keys).
    :param doc: the ``#:`` comment above the field, lines joined by spaces; ``""`` if none.
    :param owner: the class whose body declares the field (the last override).
    """

    name: str
    default: Any
    doc: str
    owner: type


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> its ``#:`` comment, for the fields declared in ``cls``'s own body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # built in, or defined where the source is not on disk
        return {}
    lines = source.splitlines()
    (class_def,) = ast.parse(source).body
    comments = {}
    for node in class_def.body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc: list[str] = []
            row = node.lineno - 2  # the line above the field, 0-based
            while row >= 0 and lines[row].strip().startswith("#:"):
                doc.insert(0, lines[row].strip()[2:].strip())
                row -= 1
            comments[node.target.id] = " ".join(doc)
    return comments


def _owner(cls: type, name: str) -> type:
    """The class of ``cls``'s MRO whose own body annotates field ``name``."""
    for klass in cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return klass
    return cls


def hyperparameters(settings_cls: type) -> list[Hyperparameter]:
    """Every field of an attrs settings class, in attrs order, with its documentation.

    :param settings_cls: an ``attr.s`` class, e.g. ``DQNSettings``.
    """
    found = []
    for field in attr.fields(settings_cls):
        owner = _owner(settings_cls, field.name)
        doc = _field_comments(owner).get(field.name, "")
        found.append(Hyperparameter(field.name, field.default, doc, owner))
    return found


def undocumented(settings_cls: type) -> list[str]:
    """The fields of ``settings_cls`` without a ``#:`` comment (where they are declared)."""
    return [h.name for h in hyperparameters(settings_cls) if not h.doc]


def loose_booleans(settings_cls: type) -> list[str]:
    """The on/off fields not declared as :data:`~mla_plugin_core.settings.StrictBool`.

    cattrs turns any YAML value of a plain ``bool`` field into a bool (``"false"`` is true);
    declare such fields with :func:`~mla_plugin_core.settings.boolean` instead.
    """
    return [
        field.name
        for field in attr.fields(settings_cls)
        if isinstance(field.default, bool) and field.type is not StrictBool
    ]


def _format_default(default: Any) -> str:
    if default is attr.NOTHING:
        return "required"
    if isinstance(default, attr.Factory):  # type: ignore[arg-type]
        return "computed"
    if isinstance(default, bool):
        return "true" if default else "false"
    if default is None:
        return "none"
    if isinstance(default, enum.Enum):
        return f"`{default.value}`"
    if isinstance(default, str):
        return f"`{default}`"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _markdown(doc: str) -> str:
    """reST to markdown: ``x`` and :class:`~a.X` become `x` and `X`; ``|`` escaped."""
    doc = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"`\1`", doc)
    return doc.replace("``", "`").replace("|", "\\|")


def hyperparameter_table(settings_cls: type) -> str:
    """A markdown table ``| key | default | meaning |`` of every field, ending in a newline."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for h in hyperparameters(settings_cls):
        rows.append(f"| `{h.name}` | {_format_default(h.default)} | {_markdown(h.doc)} |")
    return "\n".join(rows) + "\n"


def _settings_class(target: str) -> type:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def readme_table_differences(readme: Path) -> list[str]:
    """The ``module:Class`` of each marked table of ``readme`` that differs from its class.

    :raises ValueError: if ``readme`` has no marked table at all.
    """
    text = Path(readme).read_text(encoding="utf-8")
    tables = list(TABLE_MARKERS.finditer(text))
    if not tables:
        raise ValueError(f"{readme}: no '<!-- hyperparameters: module:Class -->' table")
    return [
        m["target"]
        for m in tables
        if m["table"] != hyperparameter_table(_settings_class(m["target"]))
    ]


def update_readme_tables(readme: Path) -> None:
    """Rewrite every marked table of ``readme`` from its settings class."""
    text = Path(readme).read_text(encoding="utf-8")
    text = TABLE_MARKERS.sub(
        lambda m: m[1] + hyperparameter_table(_settings_class(m["target"])) + m[4], text
    )
    Path(readme).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    for path in sys.argv[1:]:
        update_readme_tables(Path(path))
