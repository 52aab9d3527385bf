"""Microphones of a real PulseAudio server, as a desktop has them: listed once each by their own names, and
the one chosen is the one recorded from."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from x11_helpers import have, start_pulse, stop

RECORD = """
import json, sys, time
import numpy as np
from voxtral_desk.app.audio_capture import SoundDeviceCapture, list_input_devices
devices = list_input_devices()
cap = SoundDeviceCapture()
cap.open(sys.argv[1])
cap.start()
print(json.dumps({"devices": [[d.name, d.setting, d.is_default] for d in devices], "opened": cap.device_name}),
      flush=True)
time.sleep(float(sys.argv[2]))
cap.stop()
heard = cap.ring.read()
cap.close()
np.save(sys.argv[3], heard)
"""


@pytest.fixture
def two_microphones(tmp_path):
    """PulseAudio with two virtual microphones ("Desk Mic", the default, and "Headset Mic"), each the
    monitor of its own null sink, so that a test can speak into either one."""
    missing = have("pulseaudio", "pactl", "paplay")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup.sh test installs them)")
    runtime = Path(tempfile.mkdtemp(prefix="vdm-"))
    runtime.chmod(0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), HOME=str(tmp_path))
    env.pop("PULSE_SERVER", None)
    env.pop("PULSE_SOURCE", None)
    mics = []
    for sink, source, label in (("desk", "deskmic", "Desk Mic"), ("head", "headmic", "Headset Mic")):
        mics += [f"module-null-sink sink_name={sink} rate=16000 channels=1",
                 f"module-remap-source source_name={source} master={sink}.monitor "
                 f"source_properties='device.description=\"{label}\"'"]
    pulse = start_pulse(env, mics, "deskmic")
    try:
        yield env
    finally:
        stop(pulse)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.e2e
def test_the_chosen_microphone_is_the_one_heard(two_microphones, tmp_path):
    env = two_microphones
    tone = tmp_path / "tone.wav"
    t = np.arange(16000 * 2) / 16000
    soundfile.write(tone, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    heard_path = tmp_path / "heard.npy"
    recorder = subprocess.Popen([sys.executable, "-c", RECORD, "pulse:headmic", "4", str(heard_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    report = json.loads(recorder.stdout.readline())
    assert report["devices"] == [["Desk Mic", "pulse:deskmic", True], ["Headset Mic", "pulse:headmic", False]]
    assert report["opened"] == "Headset Mic"
    time.sleep(1.5)  # PulseAudio delivers its first block 1-2 s after the stream starts
    subprocess.run(["paplay", "--device=head", str(tone)], env=env, check=True, timeout=30)
    recorder.wait(30)
    assert recorder.returncode == 0, recorder.stderr.read()
    heard = np.load(heard_path)
    assert np.max(np.abs(heard)) > 0.4  # the tone played into the headset reached us

    # The default microphone, chosen by "" (System default), hears nothing of it.
    recorder = subprocess.Popen([sys.executable, "-c", RECORD, "", "4", str(heard_path)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(recorder.stdout.readline())["opened"] == "Desk Mic"
    time.sleep(1.5)
    subprocess.run(["paplay", "--device=head", str(tone)], env=env, check=True, timeout=30)
    recorder.wait(30)
    assert recorder.returncode == 0
    assert np.max(np.abs(np.load(heard_path))) < 0.01
