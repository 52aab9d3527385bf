"""GPU tests run on whatever wgpu adapter exists (lavapipe in CI). Without any adapter every test here
is skipped with the reason. The tiny models and the clips come from tests/conftest.py; here they are
converted to Q4_0 GGUF once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from gpu_testlib import PRESETS, SEEDS, STAGE_REPORT

HERE = Path(__file__).parent


def _open_gpu():
    from voxtral_desk.gpu.device import GPUUnavailableError, default_device

    try:
        return default_device(), None
    except GPUUnavailableError as e:
        return None, str(e)


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if HERE in Path(str(item.fspath)).parents]
    if not mine:
        return
    gpu, why = _open_gpu()
    for item in mine:
        item.add_marker(pytest.mark.gpu)
        if gpu is None:
            item.add_marker(pytest.mark.skip(reason=f"no wgpu adapter can be created: {why}"))


def pytest_terminal_summary(terminalreporter):
    if STAGE_REPORT:
        terminalreporter.write_sep("-", "GPU vs reference: max relative error per stage")
        for line in STAGE_REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def gpu():
    device, why = _open_gpu()
    assert device is not None, why
    return device


@pytest.fixture(scope="session")
def models(model_dir, tmp_path_factory):
    """(preset, seed) -> a loaded Q4_0 GGUF of a random tiny model. Both engines then run the same 4-bit
    weights (the reference dequantises them), so their tokens can be compared exactly; from an
    original checkpoint the GPU engine would quantise at load and the reference would not."""
    from voxtral_desk.convert import convert_checkpoint
    from voxtral_desk.loader import load_model

    root = tmp_path_factory.mktemp("gguf")
    return {(preset, seed): load_model(convert_checkpoint(model_dir(preset, seed), root / f"{preset}-{seed}", None)[0])
            for preset in PRESETS for seed in SEEDS}
