"""Microphone capture: a sounddevice InputStream writes into a preallocated float32 ring buffer.

PortAudio calls the callback on its own real-time thread. The callback only copies the block into
memory allocated up front: no new arrays, no locks, no waiting on the consumer. The ring has a single
writer (the callback) and a single reader (the dictation worker): each side only moves its own counter,
so no lock is needed. When the reader falls behind and the ring is full, the newest samples are dropped
and counted (`overflow_samples`) rather than overwriting audio that has not been read yet.

Qt never appears here; the dictation worker is the only consumer. Anything with the same interface as
SoundDeviceCapture (open/start/stop/close, ring, samplerate, error, device_name) can stand in for it,
which is how the tests inject a fake microphone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODEL_RATE = 16000
RING_SECONDS = 120.0  # how far the worker may fall behind (model loading, a file job yielding) before audio is dropped
BLOCK_SECONDS = 0.05  # 50 ms callbacks: low latency without waking the worker needlessly


class CaptureError(Exception):
    """A microphone problem the user can act on; the message says what happened and what to do."""


class RingBuffer:
    """Single-producer single-consumer float32 ring buffer over one preallocated array."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self.written = 0  # total samples ever written (producer-owned)
        self.read_count = 0  # total samples ever read (consumer-owned)
        self.overflow_samples = 0  # samples dropped because the ring was full (producer-owned)

    @property
    def available(self) -> int:
        return self.written - self.read_count

    def write(self, data: np.ndarray) -> None:
        """Producer side, called from the audio callback: copy what fits, count the rest as dropped."""
        n = data.shape[0]
        free = self.capacity - (self.written - self.read_count)
        if n > free:
            self.overflow_samples += n - free
            n = free
        if n <= 0:
            return
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        np.copyto(self._buf[start:start + first], data[:first], casting="same_kind")
        if first < n:
            np.copyto(self._buf[:n - first], data[first:n], casting="same_kind")
        # Publish only after the data is in place: the reader never sees half a block.
        self.written += n

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """Consumer side: copy out up to max_samples of the oldest unread samples."""
        n = self.written - self.read_count
        if max_samples is not None:
            n = min(n, max_samples)
        out = np.empty(n, dtype=np.float32)
        if n:
            start = self.read_count % self.capacity
            first = min(n, self.capacity - start)
            out[:first] = self._buf[start:start + first]
            if first < n:
                out[first:] = self._buf[:n - first]
            self.read_count += n
        return out


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    default_samplerate: float
    is_default: bool


def _sounddevice():
    try:
        import sounddevice
    except OSError as e:  # the PortAudio shared library itself is missing
        raise CaptureError(f"Audio input is unavailable: {e}. Install PortAudio (libportaudio2 on Debian/Ubuntu).") from None
    return sounddevice


def list_input_devices() -> list[InputDevice]:
    """Input devices PortAudio knows about; raises CaptureError when audio input is unavailable."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except sd.PortAudioError as e:
        raise CaptureError(f"Cannot list audio devices: {e}") from None
    return [InputDevice(i, d["name"], float(d["default_samplerate"]), i == default_in)
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def refresh_devices() -> None:
    """PortAudio reads the device list once; re-initialise it so a newly plugged microphone shows up.
    Only call this while no stream is open."""
    sd = _sounddevice()
    sd._terminate()
    sd._initialize()


class SoundDeviceCapture:
    """One microphone stream. open() picks the device and rate, start()/stop() run it.

    The stream asks the device for 16 kHz mono; a device that cannot do 16 kHz is opened at its own
    default rate and the worker resamples (never the callback)."""

    def __init__(self, ring_seconds: float = RING_SECONDS):
        self.ring_seconds = ring_seconds
        self.ring: RingBuffer | None = None
        self.samplerate = MODEL_RATE
        self.device_name = ""
        self.device_overflows = 0  # PortAudio reported input overflows (the OS buffer overran)
        self._stream = None
        self._stopping = False
        self._error: str | None = None

    @property
    def error(self) -> str | None:
        """Set when the stream died on its own (device unplugged, server gone)."""
        if self._error is None and self._stream is not None and not self._stopping and not self._stream.active:
            self._error = f"The microphone “{self.device_name}” stopped delivering audio (unplugged?)."
        return self._error

    def open(self, device_name: str = "") -> None:
        sd = _sounddevice()
        devices = list_input_devices()
        if not devices:
            raise CaptureError("No microphone found. Connect one (or enable it in your system's sound settings), then try again.")
        if device_name:
            matches = [d for d in devices if d.name == device_name]
            if not matches:
                raise CaptureError(f"The microphone “{device_name}” is not available (unplugged?). "
                                   "Choose another input device, or “System default”.")
            device = matches[0]
        else:
            defaults = [d for d in devices if d.is_default]
            device = defaults[0] if defaults else devices[0]
        self.device_name = device.name
        try:
            sd.check_input_settings(device=device.index, samplerate=MODEL_RATE, channels=1, dtype="float32")
            rate = MODEL_RATE
        except sd.PortAudioError:
            rate = int(device.default_samplerate)
        self.samplerate = rate
        self.ring = RingBuffer(int(rate * self.ring_seconds))
        try:
            self._stream = sd.InputStream(device=device.index, samplerate=rate, channels=1, dtype="float32",
                                          blocksize=int(rate * BLOCK_SECONDS), callback=self._callback,
                                          finished_callback=self._finished)
        except (sd.PortAudioError, ValueError) as e:
            raise CaptureError(f"Cannot open the microphone “{device.name}”: {e}") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        # Real-time thread: copy into the preallocated ring, nothing else.
        if status.input_overflow:
            self.device_overflows += 1
        self.ring.write(indata[:, 0])

    def _finished(self) -> None:
        if not self._stopping and self._error is None:
            self._error = f"The microphone “{self.device_name}” stopped (unplugged or taken by another program?)."

    def start(self) -> None:
        try:
            self._stream.start()
        except Exception as e:  # PortAudioError, or the device vanished between open and start
            raise CaptureError(f"Cannot start the microphone “{self.device_name}”: {e}") from None

    def stop(self) -> None:
        """Stop and wait until PortAudio has delivered every buffer it already recorded."""
        self._stopping = True
        if self._stream is not None:
            try:
                self._stream.stop()
            except Exception:  # the device may already be gone; what was captured is in the ring
                pass

    def close(self) -> None:
        self._stopping = True
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:
                pass
            self._stream = None
