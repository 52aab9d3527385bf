"""GPU tests run on whatever wgpu adapter exists (lavapipe in CI). Without any adapter every test here
is skipped with the reason; with one, the tiny test models are made once per session."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

if "XDG_RUNTIME_DIR" not in os.environ:  # Mesa complains on every call without it
    _xdg = Path(f"/tmp/xdg-{os.getuid()}")
    _xdg.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(_xdg)

from gpu_testlib import PRESETS, SEEDS, STAGE_REPORT

HERE = Path(__file__).parent
SPEECH = "Hello world, this is a test of live dictation on your own computer."


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
def model_paths(tmp_path_factory) -> dict[tuple[str, int], Path]:
    """(preset, seed) -> a Q4_0 GGUF of a random tiny model. Both engines then run the same 4-bit
    weights (the reference dequantises them), so their tokens can be compared exactly."""
    from voxtral_desk.convert import convert_checkpoint
    from voxtral_desk.testmodel import make_test_model

    root = tmp_path_factory.mktemp("models")
    paths = {}
    for preset in PRESETS:
        for seed in SEEDS:
            src = root / f"{preset}-{seed}"
            make_test_model(src, preset, seed)
            files = convert_checkpoint(src, root / f"{preset}-{seed}-gguf", None)
            paths[preset, seed] = files[0]
    return paths


@pytest.fixture(scope="session")
def models(model_paths):
    from voxtral_desk.loader import load_model

    return {key: load_model(path) for key, path in model_paths.items()}


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, np.ndarray]:
    """16 kHz test audio: espeak-ng speech, white noise, digital silence."""
    from voxtral_desk.audio import load_audio

    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is needed for the speech clip (apt-get install espeak-ng)"
    wav = tmp_path_factory.mktemp("audio") / "speech.wav"
    subprocess.run([espeak, "-v", "en-us", "-w", str(wav), SPEECH], check=True, capture_output=True)
    rng = np.random.default_rng(7)
    return {
        "speech": load_audio(wav, 16000),
        "noise": (0.1 * rng.standard_normal(40000)).astype(np.float32),
        "silence": np.zeros(32000, dtype=np.float32),
    }
