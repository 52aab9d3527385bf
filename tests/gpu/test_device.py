"""Adapter choice and what the user is told about it."""
from __future__ import annotations

import pytest

from voxtral_desk.gpu import shaders_dir
from voxtral_desk.gpu.device import list_adapters
from voxtral_desk.gpu.engine import GPUEngine
from voxtral_desk.pipeline import create_engine

pytestmark = pytest.mark.gpu


def test_best_adapter_first_and_limits_requested(gpu):
    adapters = list_adapters()
    order = {"DiscreteGPU": 0, "IntegratedGPU": 1, "VirtualGPU": 2, "Unknown": 3, "CPU": 4}
    ranks = [order.get(a.info.get("adapter_type"), 3) for a in adapters]
    assert ranks == sorted(ranks)
    assert gpu.info["adapter_type"] == adapters[0].info["adapter_type"]
    # the device got the adapter's binding limit, not WebGPU's default
    assert gpu.max_binding_size == adapters[0].limits["max-storage-buffer-binding-size"]


def test_software_adapter_is_reported(gpu):
    summary = gpu.adapter_summary
    assert gpu.name in summary
    if gpu.info.get("adapter_type") == "CPU":
        assert gpu.is_software
        assert "software" in summary and "slowly" in summary


def test_pipeline_creates_the_gpu_engine_by_default(models):
    engine = create_engine(models["tiny", 0])
    assert isinstance(engine, GPUEngine)
    assert engine.name.startswith("gpu: ") and engine.gpu.name in engine.name


def test_shaders_found():
    folder = shaders_dir()
    assert (folder / "q4_matvec.wgsl").is_file()
    assert folder.name == "shaders" and folder.parent.name != "voxtral_desk"
