"""End to end, as a person uses it: Xvfb, a PulseAudio virtual microphone, the real app.

Spoken audio (espeak-ng) is played into the virtual microphone while the push-to-talk hotkey is held.
It flows through sounddevice -> ring buffer -> dictation worker -> engine -> window text; on release the
text is pasted into another application. The tokens the window shows must equal an offline
StreamingSession run over the exact samples the app captured (the app saves them with keep_recordings)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from x11_helpers import have, start_pulse, start_xvfb, stop

HERE = Path(__file__).parent
BACKENDS = ["reference", "gpu"]


@pytest.fixture
def desktop(app_dirs):
    """Xvfb + a PulseAudio server with a null sink 'vsink' whose monitor is the default source 'vmic'."""
    missing = have("Xvfb", "pulseaudio", "pactl", "paplay", "xdotool", "espeak-ng", "sox")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup.sh test installs them)")
    runtime = Path(tempfile.mkdtemp(prefix="vdx-"))  # short: the socket path must fit in 108 bytes
    runtime.chmod(0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), HOME=str(app_dirs["home"]))
    env.pop("PULSE_SERVER", None)
    xvfb, display = start_xvfb()
    pulse = start_pulse(env, ["module-null-sink sink_name=vsink rate=16000 channels=1",
                              "module-remap-source source_name=vmic master=vsink.monitor"], "vmic")
    try:
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_SESSION_TYPE="x11")
        env.pop("WAYLAND_DISPLAY", None)
        yield env
    finally:
        stop(pulse)
        stop(xvfb)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_microphone_to_window_to_focused_app(desktop, backend, tiny_model, speech_wav, tmp_path):
    speech16k = tmp_path / "speech16k.wav"
    subprocess.run(["sox", str(speech_wav), "-r", "16000", "-c", "1", "-b", "16", str(speech16k)], check=True)
    result_json = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(HERE / "e2e_driver.py"), str(tiny_model), backend, str(speech16k),
                          str(result_json)], env=desktop, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    r = json.loads(result_json.read_text())
    assert r["engine"].startswith("reference") == (backend == "reference"), r["engine"]

    # The app heard the speech, sample for sample (16-bit PCM through PulseAudio is exact).
    captured, rate = soundfile.read(r["audio_path"], dtype="float32")
    played, _ = soundfile.read(speech16k, dtype="float32")
    assert rate == 16000 and r["dropped"] == 0 and r["device"]
    assert len(captured) > len(played)
    start = int(np.argmax(np.abs(captured) > 0))  # silence until the speech arrives
    first = int(np.argmax(np.abs(played) > 0))
    np.testing.assert_array_equal(captured[start:start + len(played) - first], played[first:])

    # The window's tokens are exactly the offline transcription of those samples.
    from voxtral_desk.pipeline import open_session

    session = open_session(tiny_model, backend)
    assert session.engine.name == r["engine"]
    session.feed(captured)
    session.flush()
    assert r["tokens"] == [[t.id, t.index] for t in session.tokens]
    assert r["text"] == session.text and r["text"]

    # Text grew while the person was still talking, and it all reached the window, history and target app.
    assert len(r["partials_while_talking"]) >= 2 and r["shown_while_talking"]
    assert r["text"].startswith(r["shown_while_talking"][:20])
    assert r["editor"] == r["text"] == r["history_text"]
    assert r["target_text"] == r["text"]
    assert r["clipboard_after"] == "what the user had copied before"
    assert r["states"][:1] == ["recording"] and r["states"][-1] == "idle"
