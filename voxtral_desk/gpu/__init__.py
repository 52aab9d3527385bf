"""The GPU backend: the model as our own WGSL compute shaders (top-level `shaders/`), run by wgpu-py on
any adapter (Vulkan, Metal, D3D12, OpenGL; software ones like lavapipe too).

From the bottom up: device.py (the adapter and what is kept per device), native.py (wgpu-native's private
API), pipelines.py (WGSL assembly, pipelines), program.py (buffers, programs, profiling), formats.py (weight
formats: layout and kernel choice), ops.py (one helper per kernel), subgroups.py (the subgroup probe),
encoder.py and decoder.py (the model's stages), engine.py (GPUEngine); checks.py runs every kernel against
numpy (tests, --self-test)."""
from __future__ import annotations

import sys
from pathlib import Path


def shaders_dir() -> Path:
    """Where the WGSL sources are: the repository's `shaders/` when running from a checkout, a copy
    inside the package in a wheel, or the PyInstaller bundle's copy."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "shaders", here.parents[1] / "shaders"]
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        candidates.append(Path(sys._MEIPASS) / "shaders")
    for c in candidates:
        if (c / "q4_matvec.wgsl").is_file():
            return c
    raise FileNotFoundError("WGSL shaders not found; looked in " + ", ".join(str(c) for c in candidates))
