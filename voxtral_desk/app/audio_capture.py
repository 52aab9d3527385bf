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

import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

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


SERVER_PREFIX = "pulse:"  # a sound-server source in Settings: "pulse:<source name>"
# ALSA's names for "whatever the system uses": the same microphones again, under technical names.
VIRTUAL_PCMS = {"default", "sysdefault", "pulse", "pipewire", "jack", "dmix", "dsnoop", "lavrate", "samplerate",
                "speexrate", "upmix", "vdownmix", "oss", "usbstream"}


@dataclass(frozen=True)
class InputDevice:
    index: int  # PortAudio's device index; for a sound-server source, the "pulse" device that reaches it
    name: str  # what the user sees
    default_samplerate: float
    is_default: bool
    key: str = ""  # what Settings keeps ("" = the name; "pulse:<source>" for a PulseAudio/PipeWire source)

    @property
    def setting(self) -> str:
        return self.key or self.name


@dataclass(frozen=True)
class ServerSource:
    name: str
    description: str


def _sounddevice():
    try:
        import sounddevice
    except OSError as e:  # the PortAudio shared library itself is missing
        raise CaptureError(f"Audio input is unavailable: {e}. "
                           "Install PortAudio (libportaudio2 on Debian/Ubuntu).") from None
    return sounddevice


def server_sources(run=subprocess.run) -> tuple[list[ServerSource], str] | None:
    """The microphones of a PulseAudio or PipeWire sound server (pactl, which both answer) by their human
    names, without the monitors of outputs, and the default source's name; None when there is no server."""
    if shutil.which("pactl") is None:
        return None
    try:
        listed = run(["pactl", "--format=json", "list", "sources"], capture_output=True, text=True, timeout=3)
        default = run(["pactl", "get-default-source"], capture_output=True, text=True, timeout=3)
        if listed.returncode != 0:
            return None
        rows = json.loads(listed.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        log.info("no sound server sources: %s", e)
        return None
    sources = [ServerSource(str(r["name"]), str(r.get("description") or r["name"])) for r in rows
               if isinstance(r, dict) and r.get("name") and not r.get("monitor_source")
               and (r.get("properties") or {}).get("device.class") != "monitor"]
    return sources, default.stdout.strip() if default.returncode == 0 else ""


def list_input_devices(sources=server_sources) -> list[InputDevice]:
    """The microphones to offer, each once, by its human name: a sound server's sources when there is one
    (PortAudio only sees it as "pulse" and "default"), else PortAudio's devices without ALSA's aliases.
    Raises CaptureError when audio input is unavailable."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except sd.PortAudioError as e:
        raise CaptureError(f"Cannot list audio devices: {explain_portaudio_error(e)}") from None
    inputs = [InputDevice(i, d["name"], float(d["default_samplerate"]), i == default_in)
              for i, d in enumerate(devices) if d["max_input_channels"] > 0]
    via = next((d for d in inputs if d.name == "pulse"), None)
    server = sources() if via is not None else None
    if server is not None:
        found, default = server
        return [InputDevice(via.index, s.description, 16000.0, s.name == default, SERVER_PREFIX + s.name)
                for s in found]
    real = [d for d in inputs if d.name.split(":")[0].strip().lower() not in VIRTUAL_PCMS]
    if real or not inputs:
        return real
    return [d for d in inputs if d.name == "default"] or inputs[:1]  # only aliases: one of them stands for all


def explain_portaudio_error(e: Exception) -> str:
    """What a PortAudio error means for the user, in place of its codes ("[PaErrorCode -9999]")."""
    text = str(e)
    code = next((c for c in (-9999, -9998, -9997, -9996, -9993, -9985) if f"{c}" in text), None)
    return {
        -9999: "the sound system refused to open it (no microphone connected, or it is disabled or in use in "
               "your sound settings)",
        -9998: "it cannot record in mono",
        -9997: "it does not support the sample rate",
        -9996: "it is not available any more (unplugged?)",
        -9993: "it does not support the requested format",
        -9985: "it is in use by another program or not available",
    }.get(code, text.split("[PaErrorCode")[0].strip().rstrip(":") or "an unknown sound-system error")


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
        """device_name: what Settings keeps (InputDevice.setting); "" for the system default."""
        sd = _sounddevice()
        devices = list_input_devices()
        if not devices:
            raise CaptureError("No microphone found. Connect one (or enable it in your system's sound settings), "
                               "then try again.")
        if device_name:
            matches = [d for d in devices if device_name in (d.setting, d.name)]
            if not matches:
                raise CaptureError(f"The microphone “{device_name.removeprefix(SERVER_PREFIX)}” is not available "
                                   "(unplugged?). Choose another input device, or “System default”.")
            device = matches[0]
        else:
            defaults = [d for d in devices if d.is_default]
            device = defaults[0] if defaults else devices[0]
        self.device_name = device.name
        if device.key.startswith(SERVER_PREFIX):
            # The sound server's client library reads the source to record from here when the stream opens.
            os.environ["PULSE_SOURCE"] = device.key.removeprefix(SERVER_PREFIX)
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
            log.warning("cannot open %s: %s", device.name, e)
            raise CaptureError(f"Cannot open the microphone “{device.name}”: {explain_portaudio_error(e)}. "
                               "Check that it is connected and not muted or disabled in your sound settings, "
                               "or choose another one.") from None

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
            log.warning("cannot start %s: %s", self.device_name, e)
            raise CaptureError(f"Cannot start the microphone “{self.device_name}”: {explain_portaudio_error(e)}. "
                               "Check that it is connected and not muted or disabled in your sound settings, "
                               "or choose another one.") from None

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
