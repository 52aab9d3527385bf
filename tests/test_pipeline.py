"""File transcription through a real session: bounded feeds whatever the file's rate, refused rates, and
samples that are not numbers."""
from __future__ import annotations

import struct
import tracemalloc

import numpy as np
import pytest
import soundfile

from voxtral_desk import audio
from voxtral_desk.audio import AudioFileError
from voxtral_desk.models.errors import Cancelled, ModelManagerError
from voxtral_desk.pipeline import FILE_BLOCK_SECONDS, open_session, transcribe_file


@pytest.fixture(scope="module")
def session(model_dir):
    return open_session(model_dir("tiny", 0), "reference")


@pytest.fixture
def feeds(session, monkeypatch):
    """The length of every block transcribe_file hands to the session."""
    sizes: list[int] = []
    real = session.feed

    def feed(samples):
        sizes.append(len(samples))
        return real(samples)

    monkeypatch.setattr(session, "feed", feed)
    return sizes


def noise(frames: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((frames, channels)) * 0.1).astype(np.float32)


def wav_claiming_rate(path, rate: int, frames: int) -> None:
    """A float WAV whose header says `rate` Hz (soundfile refuses to write some rates, so the field is patched)."""
    soundfile.write(str(path), noise(frames), 16000, subtype="FLOAT")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"fmt ") + 12, rate)
    path.write_bytes(bytes(data))


def test_a_rate_below_speech_audio_is_refused_naming_file_and_rate(session, tmp_path):
    wav_claiming_rate(tmp_path / "odd.wav", 1, 806)
    with pytest.raises(AudioFileError, match=r"odd\.wav: .*1 Hz"):
        transcribe_file(session, tmp_path / "odd.wav")


def test_feeds_stay_bounded_when_the_resampler_hands_over_everything_at_the_end(session, feeds, tmp_path,
                                                                                 monkeypatch):
    # At 1 Hz soxr keeps every sample until the last block (12 s here); the floor is lowered to reach that case.
    monkeypatch.setattr(audio, "MIN_SAMPLE_RATE", 1, raising=False)
    wav_claiming_rate(tmp_path / "slow.wav", 1, 12)
    transcript = transcribe_file(session, tmp_path / "slow.wav")
    assert sum(feeds) == 12 * 16000 and transcript.meta["duration"] == 12.0
    assert max(feeds) <= FILE_BLOCK_SECONDS * 16000


def peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_rate_is_read_in_bounded_blocks(session, tmp_path, monkeypatch):
    """A header claiming 2 GHz made "10 seconds" the whole file, read at once whatever its size."""
    monkeypatch.setattr("voxtral_desk.pipeline.MAX_READ_SAMPLES", 50_000, raising=False)  # 200 KB per read
    wav_claiming_rate(tmp_path / "short.wav", 2_000_000_000, 1000)
    wav_claiming_rate(tmp_path / "long.wav", 2_000_000_000, 1_000_000)  # 4 MB of samples
    short = peak_bytes(lambda: transcribe_file(session, tmp_path / "short.wav"))
    long = peak_bytes(lambda: transcribe_file(session, tmp_path / "long.wav"))
    assert long < short + 1_000_000  # a read and the one after it, not the 4 MB


def test_non_numbers_are_counted_and_transcribed_as_silence(session, tmp_path):
    clean = noise(44100, channels=2, seed=1)
    poisoned = clean.copy()
    poisoned[100, 0], poisoned[20000] = np.nan, [np.inf, -np.inf]
    silenced = clean.copy()
    silenced[100, 0], silenced[20000] = 0.0, 0.0
    soundfile.write(str(tmp_path / "poisoned.wav"), poisoned, 44100, subtype="FLOAT")
    soundfile.write(str(tmp_path / "silenced.wav"), silenced, 44100, subtype="FLOAT")
    got = transcribe_file(session, tmp_path / "poisoned.wav")
    expected = transcribe_file(session, tmp_path / "silenced.wav")
    assert got.meta["nonfinite_samples"] == 3
    assert "nonfinite_samples" not in expected.meta
    assert [t.id for t in got.tokens] == [t.id for t in expected.tokens]


def test_blocks_and_resampling_give_the_tokens_of_the_whole_file(session, feeds, tmp_path, monkeypatch):
    """Reading 1-second blocks (split again before the session) changes nothing against decoding it at once."""
    stereo = noise(44100 * 3, channels=2, seed=2)
    soundfile.write(str(tmp_path / "clip.flac"), stereo, 44100)
    whole = transcribe_file(session, tmp_path / "clip.flac")
    monkeypatch.setattr("voxtral_desk.pipeline.FILE_BLOCK_SECONDS", 1.0)
    feeds.clear()
    blocked = transcribe_file(session, tmp_path / "clip.flac")
    assert len(feeds) >= 3 and max(feeds) <= 16000
    assert [t.id for t in blocked.tokens] == [t.id for t in whole.tokens]
    session.reset()
    session.feed(audio.load_audio(tmp_path / "clip.flac", 16000))
    session.flush()
    assert [t.id for t in session.tokens] == [t.id for t in whole.tokens]


def test_a_stop_between_blocks_is_the_one_cancelled(session, tmp_path):
    """One "the user cancelled" for the whole app: a file transcription stopped between blocks (to pause it, or
    cancelled) raises the model manager's Cancelled, which every handler of a cancel already knows."""
    soundfile.write(str(tmp_path / "clip.wav"), noise(16000), 16000)
    with pytest.raises(Cancelled) as stopped:
        transcribe_file(session, tmp_path / "clip.wav", cancelled=lambda: True)
    assert isinstance(stopped.value, ModelManagerError) and str(stopped.value) == str(tmp_path / "clip.wav")
