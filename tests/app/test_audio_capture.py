"""Ring buffer and sounddevice capture, without a sound card: the callback is called directly."""
from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from voxtral_desk.app import audio_capture
from voxtral_desk.app.audio_capture import CaptureError, InputDevice, RingBuffer, SoundDeviceCapture


def test_ring_returns_samples_in_order_across_the_wrap():
    ring = RingBuffer(1000)
    data = np.arange(5000, dtype=np.float32)
    out = []
    for i in range(0, 5000, 300):  # writes of 300 and reads of 290 move the wrap point around
        ring.write(data[i:i + 300])
        out.append(ring.read(290))
    out.append(ring.read())
    assert ring.overflow_samples == 0
    np.testing.assert_array_equal(np.concatenate(out), data)


def test_ring_drops_and_counts_what_does_not_fit_and_keeps_unread_audio():
    ring = RingBuffer(1000)
    ring.write(np.ones(800, dtype=np.float32))
    ring.write(np.full(500, 2.0, dtype=np.float32))  # only 200 fit
    assert ring.overflow_samples == 300
    got = ring.read()
    np.testing.assert_array_equal(got, np.concatenate([np.ones(800), np.full(200, 2.0)]).astype(np.float32))
    assert ring.available == 0


def _capture_with_ring(seconds=2.0):
    cap = SoundDeviceCapture()
    cap.ring = RingBuffer(int(16000 * seconds))
    return cap


def test_callback_copies_blocks_without_allocating():
    cap = _capture_with_ring()
    block = np.random.default_rng(0).standard_normal((1600, 1)).astype(np.float32)
    status = SimpleNamespace(input_overflow=False)
    cap._callback(block, 1600, None, status)  # warm up
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(10):
            cap._callback(block, 1600, None, status)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A copy of one block would be 6400 bytes; only small view objects may come and go.
    assert peak - before < block.nbytes / 2
    assert after - before < 1024
    assert cap.ring.written == 11 * 1600
    np.testing.assert_array_equal(cap.ring.read()[-1600:], block[:, 0])


def test_callback_counts_device_overflows_and_full_ring():
    cap = _capture_with_ring(seconds=0.15)  # 2400 samples
    block = np.zeros((1600, 1), dtype=np.float32)
    cap._callback(block, 1600, None, SimpleNamespace(input_overflow=True))
    cap._callback(block, 1600, None, SimpleNamespace(input_overflow=False))
    assert cap.device_overflows == 1
    assert cap.ring.overflow_samples == 800


def test_no_input_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(audio_capture, "list_input_devices", lambda: [])
    with pytest.raises(CaptureError, match="No microphone found"):
        SoundDeviceCapture().open("")


def test_missing_chosen_device_names_it(monkeypatch):
    monkeypatch.setattr(audio_capture, "list_input_devices",
                        lambda: [InputDevice(3, "Built-in Mic", 48000.0, True)])
    with pytest.raises(CaptureError, match="“USB Headset” is not available"):
        SoundDeviceCapture().open("USB Headset")


def test_missing_portaudio_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(CaptureError, match="libportaudio2"):
        audio_capture.list_input_devices()


def test_stream_that_stops_on_its_own_reports_the_device():
    cap = _capture_with_ring()
    cap.device_name = "USB Headset"
    cap._stream = SimpleNamespace(active=False)
    assert "USB Headset" in cap.error
    stopped = _capture_with_ring()
    stopped._stream = SimpleNamespace(active=False)
    stopped._stopping = True  # we stopped it: not an error
    assert stopped.error is None
