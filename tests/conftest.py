"""Shared fixtures: tiny random models (made once per run) and test audio (espeak speech, noise, silence)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/xdg-{os.getuid()}")
Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)

SPEECH_TEXT = "Hello world. This is a test of live dictation on your own computer."


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """model_dir(preset, seed) -> folder of a random model in Mistral's original layout (cached)."""
    from voxtral_desk.testmodel import make_test_model

    root = tmp_path_factory.mktemp("models")
    made = {}

    def get(preset: str = "tiny", seed: int = 0) -> Path:
        if (preset, seed) not in made:
            out = root / f"{preset}-{seed}"
            make_test_model(out, preset, seed)
            made[preset, seed] = out
        return made[preset, seed]

    return get


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run scripts/setup.sh test")
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), SPEECH_TEXT], check=True)
    return path


@pytest.fixture(scope="session")
def clips(speech_wav) -> dict[str, np.ndarray]:
    """16 kHz mono float32 inputs that cover the streaming edge cases."""
    from voxtral_desk.audio import load_audio

    speech = load_audio(speech_wav, 16000)
    rng = np.random.default_rng(1234)
    return {
        "speech": speech,  # ~4 s: longer than both tiny encoder windows
        "noise": (rng.standard_normal(24000) * 0.1).astype(np.float32),
        "silence": np.zeros(20000, dtype=np.float32),
        "short": speech[8000:12000].copy(),  # 250 ms, less than the 562.5 ms first step
    }
