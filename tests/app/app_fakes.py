"""A fake microphone for the app tests: the same interface as audio_capture.SoundDeviceCapture, and the
same RingBuffer, but the test decides what is 'heard' and when the device fails."""
from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import Qt

from voxtral_desk.app.audio_capture import CaptureError, InputDevice, RingBuffer

BLOCK = 800  # 50 ms at 16 kHz, like the real stream's callbacks


def fake_devices(refresh: bool = False) -> list[InputDevice]:
    return [InputDevice(0, "Fake Microphone", 16000.0, True), InputDevice(1, "USB Headset", 48000.0, False)]


class FakeCapture:
    def __init__(self, samplerate: int = 16000, fail_open: str | None = None, ring_seconds: float = 120.0):
        self.samplerate = samplerate
        self.fail_open = fail_open
        self.ring_seconds = ring_seconds
        self.ring: RingBuffer | None = None
        self.device_name = ""
        self.opened = threading.Event()
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.closed = False
        self.in_flight = np.zeros(0, dtype=np.float32)  # delivered by stop(), as PortAudio's last buffers
        self._error: str | None = None
        self.pushed: list[np.ndarray] = []

    @property
    def error(self) -> str | None:
        return self._error

    def open(self, device_name: str = "") -> None:
        if self.fail_open:
            raise CaptureError(self.fail_open)
        self.device_name = device_name or "Fake Microphone"
        self.ring = RingBuffer(int(self.samplerate * self.ring_seconds))
        self.opened.set()

    def start(self) -> None:
        self.started.set()

    def push(self, samples: np.ndarray) -> None:
        """Deliver samples the way the audio callback does: block by block into the ring."""
        samples = np.asarray(samples, dtype=np.float32)
        self.pushed.append(samples)
        for i in range(0, len(samples), BLOCK):
            self.ring.write(samples[i:i + BLOCK])

    def unplug(self, message: str = "The microphone “Fake Microphone” stopped (unplugged?).") -> None:
        self._error = message

    def stop(self) -> None:
        if not self.stopped.is_set() and len(self.in_flight):
            self.push(self.in_flight)
        self.stopped.set()

    def close(self) -> None:
        self.closed = True

    def all_pushed(self) -> np.ndarray:
        return np.concatenate(self.pushed) if self.pushed else np.zeros(0, dtype=np.float32)


def dictate(qtbot, window, fake_mic, samples, halfway=None):
    """Click Start, 'speak' samples into the fake microphone, click Stop, wait for the final text."""
    d = window.dictation
    qtbot.mouseClick(d.record_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: d.state == "recording", timeout=10000)
    cap = fake_mic.last
    cap.push(samples[: len(samples) // 2])
    qtbot.waitUntil(lambda: len(d.partials) >= 1, timeout=10000)
    if halfway:
        halfway(d)
    cap.push(samples[len(samples) // 2:])
    with qtbot.waitSignal(d.finished, timeout=30000) as blocker:
        qtbot.mouseClick(d.record_button, Qt.LeftButton)  # Stop
    return blocker.args[0]
