"""Runs the real app for test_e2e_microphone.py, in its own process (it needs the xcb platform, while the
other tests run offscreen): real window on Xvfb, real sounddevice capture from the PulseAudio virtual
microphone, the global hotkey held with xdotool while speech plays into the microphone, and the text
pasted into another application on release.

usage: e2e_driver.py MODEL BACKEND SPEECH_WAV RESULT_JSON"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).parent))
from x11_helpers import focus_window, start_target, stop, wait_until, xdotool  # noqa: E402

from voxtral_desk.app.history import History  # noqa: E402
from voxtral_desk.app.main_window import MainWindow  # noqa: E402
from voxtral_desk.app.settings import SettingsStore  # noqa: E402

PREVIOUS_CLIPBOARD = "what the user had copied before"


def main() -> int:
    model, backend, speech_wav, result_path = sys.argv[1:5]
    app = QApplication(sys.argv[:1])
    store = SettingsStore()
    settings = store.load()
    settings.model_path, settings.backend, settings.delay_ms = model, backend, 480
    settings.keep_recordings = True  # the exact 16 kHz samples fed to the session, for the offline check
    settings.hotkey, settings.hotkey_enabled, settings.injection = "ctrl+alt+space", True, "paste"
    store.save(settings)
    window = MainWindow(store, settings, History())
    window.show()
    window.start()
    # Until the loader thread has finished the app is still "busy" (its end emits "idle").
    host = window.model_host
    wait_until(app, lambda: (window.engine is not None and host.loader is None) or bool(host.load_error), 120,
               "the model")
    if window.engine is None:
        raise RuntimeError(host.load_error)
    if not window.hotkeys.active:
        raise RuntimeError(f"hotkey not active: {window.hotkey_label.toolTip()}")

    disp = os.environ["DISPLAY"]
    target_out = Path(result_path).with_suffix(".target.txt")
    target = start_target(disp, target_out)
    try:
        focus_window(disp, "voxtral-test-target")
        QGuiApplication.clipboard().setText(PREVIOUS_CLIPBOARD)
        states = []
        window.app_state_changed.connect(states.append)

        xdotool(disp, "keydown", "ctrl+alt+space")  # hold to talk
        d = window.dictation
        wait_until(app, lambda: d.state == "recording", 20, "recording")
        # PulseAudio delivers the first block 1-2 s after the stream starts; play only once it flows.
        wait_until(app, lambda: d.thread is not None and d.thread.capture.ring is not None
                   and d.thread.capture.ring.written > 0, 20, "the first audio block")
        player = subprocess.Popen(["paplay", "--device=vsink", speech_wav])
        wait_until(app, lambda: player.poll() is not None, 60, "paplay")
        end = time.monotonic() + 1.0  # the tail of the speech still travels through the server's buffers
        wait_until(app, lambda: time.monotonic() > end, 5, "the audio tail")
        partial_while_talking = [p[0] for p in d.partials]
        shown_while_talking = d.editor.toPlainText()
        xdotool(disp, "keyup", "space")  # release: stop, flush, paste into the focused application
        xdotool(disp, "keyup", "ctrl+alt")
        wait_until(app, lambda: d.state == "idle" and d.last_result is not None, 60, "the final text")
        result = d.last_result
        wait_until(app, lambda: target_out.read_text() == result.text, 20, "the pasted text")
        # The clipboard comes back once the paste is done.
        wait_until(app, lambda: QGuiApplication.clipboard().text() == PREVIOUS_CLIPBOARD, 10, "clipboard restore")
        doc = {
            "tokens": [[t.id, t.index] for t in result.tokens],
            "text": result.text,
            "editor": d.editor.toPlainText(),
            "audio_path": result.audio_path,
            "seconds": result.seconds,
            "dropped": result.dropped_seconds,
            "device": result.device_name,
            "partials_while_talking": partial_while_talking,
            "shown_while_talking": shown_while_talking,
            "target_text": target_out.read_text(),
            "clipboard_after": QGuiApplication.clipboard().text(),
            "states": states,
            "history_text": window.history.get(result.history_id).text,
            "engine": window.engine.session.engine.name,
        }
        Path(result_path).write_text(json.dumps(doc))
    finally:
        stop(target)
        window.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
