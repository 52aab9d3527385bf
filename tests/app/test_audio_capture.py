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


def _fake_portaudio(monkeypatch, devices, default=0):
    import sounddevice

    monkeypatch.setattr(sounddevice, "query_devices", lambda: devices)
    monkeypatch.setattr(sounddevice.default, "device", [default, default])


def _dev(name, inputs=32, rate=44100.0):
    return {"name": name, "max_input_channels": inputs, "default_samplerate": rate}


def test_a_sound_servers_microphones_replace_alsas_aliases(monkeypatch):
    _fake_portaudio(monkeypatch, [_dev("pulse"), _dev("default")], default=1)
    sources = [audio_capture.ServerSource("alsa_input.usb-Blue_Yeti", "Yeti Stereo Microphone"),
               audio_capture.ServerSource("alsa_input.pci-0000_00_1f.3", "Built-in Audio Analog Stereo")]
    found = audio_capture.list_input_devices(lambda: (sources, "alsa_input.pci-0000_00_1f.3"))
    assert [(d.name, d.setting, d.is_default, d.index) for d in found] == [
        ("Yeti Stereo Microphone", "pulse:alsa_input.usb-Blue_Yeti", False, 0),
        ("Built-in Audio Analog Stereo", "pulse:alsa_input.pci-0000_00_1f.3", True, 0)]


def test_without_a_sound_server_alsa_aliases_are_hidden(monkeypatch):
    _fake_portaudio(monkeypatch, [_dev("HDA Intel PCH: ALC892 Analog (hw:0,0)"), _dev("sysdefault"), _dev("default"),
                                  _dev("HDMI 0 (hw:0,3)", inputs=0)], default=2)
    found = audio_capture.list_input_devices(lambda: None)
    assert [d.name for d in found] == ["HDA Intel PCH: ALC892 Analog (hw:0,0)"]
    _fake_portaudio(monkeypatch, [_dev("pulse"), _dev("default")], default=1)  # a server we cannot ask
    assert [d.name for d in audio_capture.list_input_devices(lambda: None)] == ["default"]


def test_pactl_sources_without_the_monitors_of_outputs():
    rows = [{"name": "vsink.monitor", "description": "Monitor of Null Output", "monitor_source": "vsink",
             "properties": {"device.class": "monitor"}},
            {"name": "vmic", "description": "Virtual Microphone", "monitor_source": "", "properties": {}}]

    def run(cmd, **kw):
        out = __import__("json").dumps(rows) if "list" in cmd else "vmic\n"
        return SimpleNamespace(returncode=0, stdout=out)

    sources, default = audio_capture.server_sources(run)
    assert sources == [audio_capture.ServerSource("vmic", "Virtual Microphone")] and default == "vmic"
    assert audio_capture.server_sources(lambda cmd, **kw: SimpleNamespace(returncode=1, stdout="")) is None


def test_portaudio_errors_become_words():
    for raw in ("Error opening InputStream: Unanticipated host error [PaErrorCode -9999]: 'Invalid argument' "
                "[ALSA error -22]", "Error querying device -1 [PaErrorCode -9996]"):
        text = audio_capture.explain_portaudio_error(Exception(raw))
        assert "PaErrorCode" not in text and "ALSA" not in text and len(text) > 20


def test_a_device_that_cannot_be_opened_says_what_to_do(monkeypatch):
    import sounddevice

    monkeypatch.delenv("PULSE_SOURCE", raising=False)  # restored after the test

    monkeypatch.setattr(audio_capture, "list_input_devices",
                        lambda: [InputDevice(0, "Built-in Audio", 16000.0, True, "pulse:builtin")])
    monkeypatch.setattr(sounddevice, "check_input_settings", lambda **kw: None)

    def refuse(**kw):
        raise sounddevice.PortAudioError("Error opening InputStream: Unanticipated host error [PaErrorCode -9999]")

    monkeypatch.setattr(sounddevice, "InputStream", refuse)
    with pytest.raises(CaptureError) as e:
        SoundDeviceCapture().open("pulse:builtin")
    assert "Built-in Audio" in str(e.value) and "sound settings" in str(e.value) and "PaErrorCode" not in str(e.value)
    import os
    assert os.environ["PULSE_SOURCE"] == "builtin"
