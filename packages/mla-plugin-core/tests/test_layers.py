"""mla-plugin-core's layers only point down, and no module imports itself back.

The layers, lowest first (the package docstring says what each holds). A module may import
modules of its own layer and of the layers before it, never one after it: trainer code does
not import the patches of mlagents-learn (``host``), the data structures know no trainer.
Every import counts, those under ``TYPE_CHECKING`` and inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mla_plugin_core

LAYERS = ["util", "replay", "settings", "networks", "io", "trainers", "host", "testing", "cli"]
#: Modules of the package's top level: which layer they count as.
TOP_LEVEL = {"version": "util", "_moved": "util", "__init__": "cli"}
#: The only other distributions of this repository core may import: its own dependency.
OTHER_DISTRIBUTIONS_ALLOWED = {"mla_protobuf"}

SOURCE = Path(mla_plugin_core.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return TOP_LEVEL["__init__"]
    return TOP_LEVEL.get(parts[1], parts[1])


def imports_of_core() -> dict[str, set[str]]:
    """Module -> the mla_* modules it imports (absolute names)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        module = _module_name(path)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{module}: relative import (use the absolute path)"
                base = node.module or ""
                found.add(base)
                # `from package import submodule` imports the submodule
                found.update(
                    f"{base}.{alias.name}"
                    for alias in node.names
                    if (SOURCE.parent / (base + "." + alias.name).replace(".", "/")).exists()
                    or (
                        SOURCE.parent / ((base + "." + alias.name).replace(".", "/") + ".py")
                    ).exists()
                )
        graph[module] = {name for name in found if name.startswith("mla_")}
    return graph


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in graph.items():
        for name in imported:
            if not name.startswith("mla_plugin_core") or name == module:
                continue
            if name == "mla_plugin_core":
                wrong.append(f"{module} imports the package's top level (name the module)")
            elif LAYERS.index(_layer(name)) > LAYERS.index(_layer(module)):
                wrong.append(f"{module} ({_layer(module)}) imports {name} ({_layer(name)})")
    return wrong


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    visiting: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        if module in visiting:
            cycles.append([*visiting[visiting.index(module) :], module])
            return
        if module in done:
            return
        visiting.append(module)
        for name in sorted(graph[module]):
            # a package importing its own modules (its __init__'s re-exports) is no cycle
            if name in graph and not name.startswith(module + ".") and name != module:
                visit(name)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    return cycles


def test_every_module_is_in_a_layer():
    for module in imports_of_core():
        assert _layer(module) in LAYERS, f"{module} is in no layer of {LAYERS}"


def test_layers_only_import_the_layers_below_them():
    assert layer_violations(imports_of_core()) == []


def test_no_import_cycle():
    assert import_cycles(imports_of_core()) == []


def test_core_imports_no_plugin():
    """Core names none of its plugins: its only mla_* imports are its own modules and its
    dependency mla-protobuf."""
    others = {
        name.split(".")[0]
        for imported in imports_of_core().values()
        for name in imported
        if not name.startswith("mla_plugin_core")
    }
    assert others <= OTHER_DISTRIBUTIONS_ALLOWED


def test_the_checks_see_a_wrong_import_and_a_cycle():
    """What the checks are for: a trainer module importing the host layer (0.1's
    ``plugin_trainer`` -> ``config_errors``), and 0.1's replay <-> nstep cycle."""
    graph = imports_of_core()
    base, host = "mla_plugin_core.trainers.base", "mla_plugin_core.host.config_errors"
    assert layer_violations({**graph, base: graph[base] | {host}}) == [
        f"{base} (trainers) imports {host} (host)"
    ]
    buffer, nstep = "mla_plugin_core.replay.buffer", "mla_plugin_core.replay.nstep"
    cycles = import_cycles({**graph, buffer: graph[buffer] | {nstep}})
    assert [buffer, nstep, buffer] in cycles or [nstep, buffer, nstep] in cycles
