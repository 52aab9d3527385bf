import numpy as np
import pytest
import soundfile

from voxtral_desk.audio import AudioFileError, FrameStream, LogMel, frames_in_span, load_audio
from voxtral_desk.loader import load_model

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
        padded = np.concatenate([np.zeros(40960, np.float32), audio, np.zeros((-len(audio)) % 1280 + 17 * 1280, np.float32)])
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
