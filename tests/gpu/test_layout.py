"""How the GPU layer is put together: no import of the numpy reference (the maths both share is
model_math.py), and wgpu-native's private API used by native.py alone. (No module of the package is in an
import cycle: tests/test_imports.py.)"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import voxtral_desk

PACKAGE = Path(voxtral_desk.__file__).parent
GPU = PACKAGE / "gpu"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(path: Path) -> set[str]:
    """The package's modules that a module imports, anywhere in its code (relative imports resolved)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            stem = ".".join(p for p in (base, node.module or "") if p)
            found |= {stem} | {f"{stem}.{alias.name}" for alias in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules and name != module_name(path)}


def test_the_gpu_layer_never_imports_the_reference():
    for path in sorted(GPU.glob("*.py")):
        assert "voxtral_desk.reference" not in module_imports(path), path.name
    code = ("import pkgutil, sys, voxtral_desk.gpu as g; [__import__(f'voxtral_desk.gpu.{m.name}') "
            "for m in pkgutil.iter_modules(g.__path__)]; print('voxtral_desk.reference' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_only_native_uses_wgpu_natives_private_api():
    for path in sorted(GPU.glob("*.py")):
        if path.name != "native.py":
            text = path.read_text()
            for private in ("wgpu_native._api", "wgpu_native._ffi", "._internal", "native_lib", "native_ffi"):
                assert private not in text, f"{path.name} uses {private}: it belongs in native.py"
