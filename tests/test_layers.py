"""Clean layers: no import cycles among the package's modules (late imports included: a
function-level import is how a cycle hides), and the check catalogue imports no check
module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "conformance"
PACKAGES = (PACKAGE, ROOT / "loadtests", ROOT / "realservers")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in its body."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the module pkg.sub; ``from mod import x``, mod.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    # A module's own packages are initialised before it anyway: no cycle through them.
    return {t for t in found if not name.startswith(t + ".")}


def import_graph(packages: tuple[Path, ...] = PACKAGES) -> dict[str, set[str]]:
    paths = {_module_name(p): p for package in packages for p in package.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or [])


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", ["conformance.face.catalog", "conformance.face.runner"])
def test_tools_import_no_check_module(module: str) -> None:
    assert not {m for m in import_graph()[module] if m.startswith("conformance.checks.")}


def test_catalogue_lists_the_optional_field_battery() -> None:
    """The catalogue lists what the battery sends (both read conformance.api.request_fields)."""
    from conformance.checks.params import OPTIONAL
    from conformance.face.catalog import FIELD_RULES

    sent = {f for fields in OPTIONAL.values() for f in fields}
    assert set(FIELD_RULES["params.optional_field"]) == sent


#: conformance's layers, bottom first: a module imports only from its own layer or below.
#: The reference server stands beside them (it imports the API model only); the face
#: starts it, so the face may import it.
LAYERS = ("transport", "verdicts", "api", "exchanges", "checks", "face")
BESIDE = {"reference": {"api", "transport"}}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "conformance" and len(parts) > 2 else None


def _allowed(source: str, target: str) -> bool:
    if source in BESIDE:
        return target in BESIDE[source] or target == source
    if target in BESIDE:
        return source == "face"
    return LAYERS.index(target) <= LAYERS.index(source)


def test_conformance_imports_only_downward() -> None:
    graph = import_graph()
    upward = sorted(
        f"{module} -> {dep}"
        for module, deps in graph.items()
        if (src := _layer(module))
        for dep in deps
        if (dst := _layer(dep)) and not _allowed(src, dst)
    )
    assert upward == []


def test_installed_package_needs_no_project_module() -> None:
    """What ships in the wheel (conformance, the Locust kit) never imports the real-server
    launchers, and the kit never imports the self-benchmark that measures it."""
    graph = import_graph()
    shipped = [m for m in graph if m.startswith("conformance")]
    kit = [
        m for m in graph if m.startswith("loadtests") and not m.startswith("loadtests.selfbench")
    ]
    assert [f"{m} -> {d}" for m in shipped for d in graph[m] if d.startswith("realservers")] == []
    assert [
        f"{m} -> {d}"
        for m in kit
        for d in graph[m]
        if d.startswith(("loadtests.selfbench", "realservers"))
    ] == []
