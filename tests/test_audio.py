import os
import struct

import numpy as np
import pytest
import soundfile

from voxtral_desk.audio import (AudioFile, AudioFileError, FrameStream, LogMel, audio_info, frames_in_span,
                                libmpg123_silenced, load_audio)
from voxtral_desk.loader import load_model
from voxtral_desk.pipeline import open_session, transcribe_file

transformers = pytest.importorskip("transformers")


def offline_mel(mel: LogMel, padded: np.ndarray) -> np.ndarray:
    """All frames of a padded stream, as upstream computes them offline (centre padding of zeros on both
    sides, last STFT frame dropped)."""
    centre = np.zeros(mel.n_fft // 2, np.float32)
    return mel.features(np.concatenate([centre, padded, centre]))[:, : len(padded) // mel.hop]


@pytest.fixture
def front_end(model_dir):
    cfg = load_model(model_dir("tiny", 0)).config
    return LogMel(cfg.audio, cfg.encoder.n_mels)


def test_filterbank_check_values(front_end):
    f = front_end.filters  # [201, 128]
    assert f.shape == (201, 128)
    assert f.sum() == pytest.approx(3.19099, abs=1e-4)
    assert f[:, 0].sum() == pytest.approx(0.012374, abs=1e-6)
    assert f[:, 127].sum() == pytest.approx(0.024936, abs=1e-6)
    assert (f.sum(axis=0) > 0).all()


def test_mel_matches_transformers_feature_extractor(front_end, clips):
    fe = transformers.VoxtralRealtimeFeatureExtractor()
    for name, audio in clips.items():
        padded = np.concatenate([np.zeros(40960, np.float32), audio,
                                 np.zeros((-len(audio)) % 1280 + 17 * 1280, np.float32)])
        ours = offline_mel(front_end, padded)
        theirs = fe(padded, sampling_rate=16000, return_tensors="np").input_features[0]
        assert ours.shape == theirs.shape == (128, len(padded) // 160)
        np.testing.assert_allclose(ours, theirs, atol=1e-4, err_msg=name)  # torch computes the STFT in float32


def test_streamed_frames_equal_offline(front_end, clips):
    """FrameStream's spans, pushed in random chunk sizes, hold whole tokens of frames whose log-mel is
    the offline computation's, and the stream's end cuts them where told."""
    audio = clips["speech"]
    whole = offline_mel(front_end, audio)
    cfg = front_end.cfg
    stream = FrameStream(cfg)
    rng = np.random.default_rng(0)
    parts, i = [], 0
    while i < len(audio):
        n = int(rng.integers(1, 3000))
        span = stream.push(audio[i : i + n])
        if len(span):
            assert frames_in_span(len(span), cfg) % cfg.mel_frames_per_token == 0
            parts.append(front_end.features(span))
        i += n
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape[1] == stream.frames_done > whole.shape[1] - 2 * cfg.mel_frames_per_token
    np.testing.assert_array_equal(streamed, whole[:, : streamed.shape[1]])
    end = stream.frames_done + cfg.mel_frames_per_token + 3
    last = stream.push(np.zeros(5000, np.float32), total_frames=end)
    assert frames_in_span(len(last), cfg) == cfg.mel_frames_per_token  # the 3 past a whole token wait
    assert len(stream.push(np.zeros(5000, np.float32), total_frames=end)) == 0


def test_spans_of_partial_frames_are_refused(front_end):
    with pytest.raises(ValueError, match="whole tokens"):
        frames_in_span(400 + 160 * 6, front_end.cfg)  # 7 frames
    with pytest.raises(ValueError, match="whole tokens"):
        frames_in_span(400 + 160 * 7 + 1, front_end.cfg)
    assert frames_in_span(400 + 160 * 15, front_end.cfg) == 16


def test_silence_is_minus_0_625(front_end):
    frames = offline_mel(front_end, np.zeros(16000, np.float32))
    assert frames.shape == (128, 100)
    np.testing.assert_allclose(frames, -0.625)


def test_load_any_format_rate_and_channels(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1).astype(np.float32) * 0.5
    for ext in ("wav", "flac", "ogg", "mp3"):
        path = tmp_path / f"a.{ext}"
        soundfile.write(str(path), stereo, 44100)
        mono = load_audio(path, 16000)
        assert mono.dtype == np.float32 and mono.ndim == 1
        assert abs(len(mono) - 16000) < 1200, ext  # lossy codecs pad a little
        assert 0.3 < np.abs(mono).max() < 0.7, ext


def test_unreadable_audio_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioFileError, match="bad.wav"):
        load_audio(bad, 16000)
    with pytest.raises(AudioFileError, match="no such file"):
        load_audio(tmp_path / "missing.flac", 16000)


def _tone(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _wav_with_rate(path, rate: int, frames: int = 1600):
    """A WAV whose header claims `rate` (soundfile refuses to write some of them, so the field is patched)."""
    soundfile.write(str(path), _tone(frames / 16000), 16000, subtype="FLOAT")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"fmt ") + 12, rate)
    path.write_bytes(bytes(data))


def _cut_wav(path):
    soundfile.write(str(path), _tone(), 16000)
    path.write_bytes(path.read_bytes()[:30])  # the header without its data chunk


def _damaged_flac(path):
    soundfile.write(str(path), _tone(3.0), 16000)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 2000] = np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes()
    path.write_bytes(bytes(data))


NOT_AUDIO = "is not an audio file Voxtral Desk can read (format not recognised)"
# (file name, how the test makes it, words the message must hold): every caller says the same true thing.
CORPUS = [
    ("missing.flac", lambda p: None, "no such file"),
    ("a folder.wav", lambda p: p.mkdir(), "is a folder"),
    ("pipe.wav", lambda p: os.mkfifo(p), "is not a regular file (a pipe or a device)"),
    ("empty.wav", lambda p: p.write_bytes(b""), "the file is empty"),
    ("notes.mp3", lambda p: p.write_text("hello, these are my notes\n"), NOT_AUDIO),
    ("zeros.mp3", lambda p: p.write_bytes(bytes(100)), NOT_AUDIO),
    ("notes.wav", lambda p: p.write_text("not audio at all"), NOT_AUDIO),
    ("cut.wav", _cut_wav, "No 'data' chunk"),  # libsndfile's own detail says what is wrong
    ("one-hertz.wav", lambda p: _wav_with_rate(p, 1), "1 Hz"),
    ("999-hertz.wav", lambda p: _wav_with_rate(p, 999), "999 Hz"),
    ("damaged.flac", _damaged_flac, "the file may be damaged or cut short"),
]


@pytest.fixture(scope="module")
def tiny_session(model_dir):
    return open_session(model_dir("tiny", 0), "reference")


@pytest.mark.parametrize("name,make,words", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_audio_files_are_described_truly(tmp_path, tiny_session, name, make, words):
    path = tmp_path / name
    make(path)
    readers = {"load_audio": lambda: load_audio(path, 16000), "audio_info": lambda: audio_info(path),
               "transcribe_file": lambda: transcribe_file(tiny_session, path)}
    if name == "damaged.flac":  # its header is fine: only decoding finds the damage
        del readers["audio_info"]
    for reader, call in readers.items():
        with pytest.raises(AudioFileError) as e:
            call()
        message = str(e.value)
        assert message.startswith(f"{path}: ") and words in message, reader
        for internal in ("possibly a pipe", "Error opening", "System error", "Libsndfile", "Format not recognised"):
            assert internal not in message, (reader, message)


def test_a_device_is_not_an_audio_file():
    with pytest.raises(AudioFileError, match=r"/dev/zero: this is not a regular file \(a pipe or a device\)"):
        load_audio("/dev/zero", 16000)


def test_libmpg123_lines_are_dropped_and_everything_else_on_stderr_is_kept(capfd):
    with libmpg123_silenced():
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 15.\nsomething else said meanwhile\n"
                    b"[src/libmpg123/parse.c:do_readahead():1083] warning: Cannot read next header\n"
                    b"Warning: Xing stream size off by more than 1%, fuzzy seeking may be even more fuzzy\nlast\n")
    assert capfd.readouterr().err == "something else said meanwhile\nlast\n"
    os.write(2, b"Note: after the block, nothing is filtered\n")
    assert capfd.readouterr().err == "Note: after the block, nothing is filtered\n"


def test_non_numbers_in_a_file_become_silence_and_are_counted(tmp_path):
    audio = np.stack([_tone(), _tone()], axis=1)
    audio[100, 0], audio[5000, 1], audio[9000] = np.nan, np.inf, [-np.inf, np.nan]
    soundfile.write(str(tmp_path / "nan.wav"), audio, 44100, subtype="FLOAT")
    with AudioFile(tmp_path / "nan.wav") as f:
        data = f.read()
        assert f.nonfinite_samples == 4
    assert np.isfinite(data).all() and data[100, 0] == 0 and data[9000, 1] == 0 and data[101, 0] == audio[101, 0]
    assert np.isfinite(load_audio(tmp_path / "nan.wav", 16000)).all()  # resampling did not spread them
