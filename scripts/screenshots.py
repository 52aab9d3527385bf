#!/usr/bin/env python3
"""Take the README screenshots under Xvfb: the main window, a dictation in progress, the file queue and the
tray menu, saved as docs/screenshots/{main_window,dictation,file_queue,tray_menu}.png.

    .venv/bin/python scripts/screenshots.py [--model PATH] [--backend reference|gpu] [--out docs/screenshots]

Needs Xvfb, trayer (a system tray for the X server) and espeak-ng. Without --model a tiny random-weight
test model is made, so the recognised "text" is gibberish: the screenshots show the app, not the model.
The microphone is a speech file played into the app's ring buffer at real-time pace (this script's
PlaybackCapture), so the shots do not depend on a sound server. Settings and history go to a temporary
folder; nothing in your home folder is touched.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "app"))
from x11_helpers import die_with_parent, start_xvfb, wait_until  # noqa: E402  (shared with the e2e test)
SPEECH = ("Voxtral Desk turns speech into text on your own computer. The words appear while you are still "
          "talking, and nothing ever leaves the machine.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder or GGUF (default: a tiny random test model)")
    ap.add_argument("--backend", default="reference", choices=["reference", "gpu"])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    missing = [b for b in ("Xvfb", "trayer", "espeak-ng") if shutil.which(b) is None]
    if missing:
        print(f"error: {', '.join(missing)} not installed (scripts/setup.sh test installs them)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="voxtral-shots-"))
    xvfb, display = start_xvfb()
    trayer = None
    try:
        os.environ.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_SESSION_TYPE="x11",
                          VOXTRAL_DESK_CONFIG_DIR=str(work / "config"), VOXTRAL_DESK_DATA_DIR=str(work / "data"))
        os.environ.pop("WAYLAND_DISPLAY", None)
        trayer = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                                   "--height", "28", "--transparent", "false", "--tint", "0x2b2f36",
                                   "--SetDockType", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=die_with_parent)
        return take(args, work)
    finally:
        if trayer is not None:
            trayer.terminate()
        xvfb.terminate()
        shutil.rmtree(work, ignore_errors=True)


class PlaybackCapture:
    """Stands in for the microphone: plays 16 kHz samples into the ring buffer in 50 ms blocks at
    real-time pace, like PortAudio's callback would. Same interface as SoundDeviceCapture."""

    def __init__(self, samples):
        from voxtral_desk.app.audio_capture import RingBuffer

        self.samples = samples
        self.samplerate = 16000
        self.ring = RingBuffer(16000 * 120)
        self.device_name = "Demo microphone (speech file)"
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)

    def open(self, device_name=""):
        pass

    def start(self):
        self._thread.start()

    def _play(self):
        block = 800
        t0 = time.monotonic()
        for i in range(0, len(self.samples), block):
            if self._stop.is_set():
                return
            self.ring.write(self.samples[i:i + block])
            time.sleep(max(0.0, t0 + (i + block) / 16000 - time.monotonic()))
        while not self._stop.wait(0.05):  # silence after the speech, as a live microphone would hear
            self.ring.write(self._zeros())

    def _zeros(self):
        import numpy as np

        return np.zeros(800, dtype=np.float32)

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def close(self):
        self.stop()


def take(args, work: Path) -> int:
    import numpy as np
    import soundfile
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication

    from voxtral_desk.app.audio_capture import InputDevice
    from voxtral_desk.app.history import History
    from voxtral_desk.app.main_window import MainWindow
    from voxtral_desk.app.resources import icon
    from voxtral_desk.app.settings import SettingsStore
    from voxtral_desk.audio import load_audio

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from voxtral_desk.testmodel import make_test_model

        model = work / "tiny"
        make_test_model(model, "tiny", 0)
    speech_wav = work / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(speech_wav), SPEECH], check=True)
    speech = load_audio(speech_wav, 16000)
    # Files for the queue: a finished one, a long one caught mid-way, a queued one and a broken one.
    files = work / "audio"
    files.mkdir()
    shutil.copy(speech_wav, files / "meeting-notes.wav")
    soundfile.write(files / "interview-2024-03-12.flac", np.tile(speech, 12), 16000)
    soundfile.write(files / "voice-memo.ogg", speech[: 16000 * 3], 16000)
    (files / "slides.pdf.wav").write_bytes(b"%PDF-1.7 not audio")

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Voxtral Desk")
    app.setWindowIcon(icon("voxtral-desk"))
    store = SettingsStore()
    settings = store.load()
    settings.model_path, settings.backend = str(model), args.backend
    store.save(settings)
    # A plain desktop behind everything (Xvfb's root window is black), lowered under the tray bar.
    from PySide6.QtWidgets import QWidget

    desktop = QWidget()
    desktop.setStyleSheet("background: qlineargradient(x1:0, y1:0, x2:1, y2:1, stop:0 #5b6b8c, stop:1 #2f3a52);")
    desktop.setGeometry(app.primaryScreen().geometry())
    desktop.show()
    desktop.lower()
    devices = [InputDevice(0, "Demo microphone (speech file)", 16000.0, True),
               InputDevice(1, "USB Headset", 48000.0, False)]
    window = MainWindow(store, settings, History(), capture_factory=lambda: PlaybackCapture(speech),
                        device_lister=lambda refresh: devices)
    window.resize(960, 660)
    window.move(1280 - 960 - 24, 44)
    window.show()
    window.start()

    def wait(condition, timeout=120.0, what="the app"):
        wait_until(app, condition, timeout, what)

    def settle(seconds=0.3):
        end = time.monotonic() + seconds
        wait(lambda: time.monotonic() > end)

    wait(lambda: window.engine is not None, what="the model")
    d = window.dictation

    # 1. A dictation in progress: recording state, level meter, clock, text growing.
    d.start()
    wait(lambda: d.state == "recording" and len(d.text().split()) >= 6, what="live text")
    settle(0.2)
    window.grab().save(str(out / "dictation.png"))
    print("wrote", out / "dictation.png")

    # 4. The tray menu, while recording (taken from the whole screen: the menu is its own window).
    tray_rect = window.tray.icon.geometry()
    window.tray.menu.popup(QPoint(tray_rect.left() - 150, tray_rect.bottom() + 4))
    settle(0.5)
    screen = app.primaryScreen().grabWindow(0)
    menu_geo = window.tray.menu.geometry()
    left = max(0, min(menu_geo.left(), tray_rect.left()) - 220)
    crop = screen.copy(left, 0, screen.width() - left, max(menu_geo.bottom(), tray_rect.bottom()) + 60)
    crop.save(str(out / "tray_menu.png"))
    print("wrote", out / "tray_menu.png")
    window.tray.menu.hide()

    # 2. The main window after the dictation: the whole text, ready for the next one.
    wait(lambda: d.thread is not None and d.thread.capture.ring.written > len(speech) + 8000, what="the speech")
    d.stop()
    wait(lambda: d.state == "idle", what="the end of the dictation")
    settle(0.3)
    window.grab().save(str(out / "main_window.png"))
    print("wrote", out / "main_window.png")

    # 3. The file queue: one done and selected, one in progress, one waiting, one that failed.
    q = window.files
    window.tabs.setCurrentWidget(q)
    q.add_files([str(files / "meeting-notes.wav"), str(files / "slides.pdf.wav"),
                 str(files / "interview-2024-03-12.flac"), str(files / "voice-memo.ogg")])
    wait(lambda: q.jobs[2].status == "running" and q.jobs[2].progress >= 0.3, what="the long file")
    q.table.clearSelection()
    q.item(q.jobs[0]).setSelected(True)
    settle(0.1)
    window.grab().save(str(out / "file_queue.png"))
    print("wrote", out / "file_queue.png")
    for job in list(q.jobs):
        q.cancel(job)
    window.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
