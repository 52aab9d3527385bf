"""The package's modules form no import cycle: each imports on its own in a fresh interpreter, and no chain of
imports (those inside functions included) leads from a module back to itself."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import voxtral_desk

PACKAGE = Path(voxtral_desk.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    """module name -> (its file, whether it is a package's __init__)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(name: str, path: Path, is_package: bool, modules: dict) -> set[str]:
    """The package's modules that `name` imports anywhere in its code (not under `if TYPE_CHECKING:`), with
    the packages that importing them runs first."""
    package = name if is_package else name.rpartition(".")[0]
    named: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", getattr(test, "attr", "")) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
            else:
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            named.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import module`

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    edges = set()
    for module in named & modules.keys():
        parts = module.split(".")
        edges.update(m for i in range(1, len(parts) + 1) if (m := ".".join(parts[:i])) in modules)
    edges.discard(name)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                groups.append(sorted(group + [v]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_chain_of_imports_leads_back_to_its_module():
    modules = _modules()
    graph = {name: _imports(name, path, is_package, modules) for name, (path, is_package) in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_imports_on_its_own():
    """Each module imported first, with no other module of the package loaded before it (the third-party
    libraries stay loaded, so this takes seconds, not minutes)."""
    names = sorted(n for n in _modules() if not n.endswith("__main__"))
    script = (
        "import importlib, sys, traceback\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'voxtral_desk' or m.startswith('voxtral_desk.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=-3))\n"
        "print('\\n'.join(failed))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
