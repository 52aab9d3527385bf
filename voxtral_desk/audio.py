"""Audio in: files of any common format, rate and channel count become 16 kHz mono float32; a stream of
samples is cut into STFT frames, and frames become log-mel features exactly as upstream computes them
offline (MODEL.md §3)."""
from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile
import soxr
from mistral_common.audio import mel_filter_bank

from .config import AudioConfig

MIN_SAMPLE_RATE = 1000  # below this a file holds no speech: its header is damaged, or it is not sound at all
# libsndfile's words that are wrong or empty once the checks below have passed (a regular, non-empty file).
_NOT_RECOGNISED = ("Format not recognised.", "System error.",
                   "File does not exist or is not a regular file (possibly a pipe?).")
# libmpg123 (inside libsndfile) prints these straight to the process's stderr while it decodes.
_LIBMPG123_LINE = re.compile(rb"(Note: |Warning: |\[src/libmpg123/)")
_stderr_lock = threading.RLock()  # fd 2 is the whole process's: one capture at a time, nested ones pass through
_stderr_depth = 0


class AudioFileError(Exception):
    pass


@contextmanager
def libmpg123_silenced() -> Iterator[None]:
    """Capture fd 2 while libsndfile works, then write back everything but libmpg123's diagnostic lines, so
    nothing else said on stderr in that moment is lost."""
    global _stderr_depth
    with _stderr_lock:
        if _stderr_depth:
            yield
            return
        if sys.stderr:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all (a GUI process): nothing to keep clean
            yield
            return
        _stderr_depth += 1
        try:
            with tempfile.TemporaryFile() as capture:
                os.dup2(capture.fileno(), 2)
                try:
                    yield
                finally:
                    if sys.stderr:
                        sys.stderr.flush()
                    os.dup2(saved, 2)
                    capture.seek(0)
                    kept = [line for line in capture.read().splitlines(keepends=True)
                            if not _LIBMPG123_LINE.match(line)]
                    if kept:
                        os.write(2, b"".join(kept))
        finally:
            os.close(saved)
            _stderr_depth -= 1


def _check_path(path: Path) -> None:
    """What is wrong with a path before any decoder sees it, in the user's words (libsndfile's are often wrong
    here: a folder is "not recognised", a missing file a "system error")."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AudioFileError(f"{path}: no such file") from None
    except OSError as e:
        raise AudioFileError(f"{path}: cannot open it ({e.strerror or e})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioFileError(f"{path}: this is a folder, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioFileError(f"{path}: this is not a regular file (a pipe or a device)")
    if info.st_size == 0:
        raise AudioFileError(f"{path}: the file is empty")
    try:
        open(path, "rb").close()  # a regular file: opening cannot block, and says why it cannot be read
    except OSError as e:
        raise AudioFileError(f"{path}: cannot open it ({e.strerror or e})") from None


def _detail(error: Exception) -> str:
    text = getattr(error, "error_string", None) or str(error)
    return text.removeprefix("Error : ").strip().rstrip(".")


class AudioFile:
    """An audio file open for reading: the one way Voxtral Desk opens audio, so a file's problems read the same
    in the CLI, the app and the tests. Samples that are not numbers (NaN/Inf) come out as 0 and are counted
    in `nonfinite_samples`, before any mixing or resampling can spread them."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        _check_path(self.path)
        try:
            with libmpg123_silenced():
                self._file = soundfile.SoundFile(str(self.path))
        except (RuntimeError, TypeError, ValueError) as e:  # soundfile.LibsndfileError is a RuntimeError
            detail = "format not recognised" if getattr(e, "error_string", None) in _NOT_RECOGNISED else _detail(e)
            raise AudioFileError(f"{self.path}: this is not an audio file Voxtral Desk can read ({detail})") from None
        self.samplerate, self.channels, self.frames = self._file.samplerate, self._file.channels, self._file.frames
        if self.samplerate < MIN_SAMPLE_RATE:
            self.close()
            raise AudioFileError(f"{self.path}: its header says {self.samplerate} Hz, which is not speech audio "
                                 f"(Voxtral Desk needs at least {MIN_SAMPLE_RATE} Hz); the file may be damaged")
        self.nonfinite_samples = 0

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate

    def read(self, frames: int = -1) -> np.ndarray:
        """The next `frames` frames (-1: all that are left) as float32 [n, channels]; empty at the end."""
        try:
            with libmpg123_silenced():
                data = self._file.read(frames, dtype="float32", always_2d=True)
        except (RuntimeError, TypeError, ValueError) as e:
            raise AudioFileError(f"{self.path}: the audio cannot be decoded ({_detail(e)}); the file may be damaged "
                                 "or cut short") from None
        bad = ~np.isfinite(data)
        if bad.any():
            self.nonfinite_samples += int(bad.sum())
            data[bad] = 0.0
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_audio(path: Path | str, sampling_rate: int) -> np.ndarray:
    """Decode a file to mono float32 at `sampling_rate` (channels averaged, soxr HQ resampling, no gain)."""
    with AudioFile(path) as f:
        return to_model_rate(f.read(), f.samplerate, sampling_rate)


def to_model_rate(data: np.ndarray, rate: int, sampling_rate: int) -> np.ndarray:
    mono = data.mean(axis=1) if data.ndim == 2 else data
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if rate != sampling_rate:
        mono = soxr.resample(mono, rate, sampling_rate, quality="HQ").astype(np.float32)
    return mono


def audio_info(path: Path | str) -> tuple[float, int, int]:
    """(duration in seconds, sample rate, channels) without decoding the whole file."""
    with AudioFile(path) as f:
        return f.duration, f.samplerate, f.channels


class LogMel:
    """The front end's numbers in numpy float64 (MODEL.md §3): the readable reference for the GPU's log-mel
    kernel (shaders/log_mel.wgsl), and the reference engine's front end."""

    def __init__(self, cfg: AudioConfig, n_mels: int):
        self.cfg = cfg
        self.n_fft = cfg.window_size
        self.hop = cfg.hop_length
        n = np.arange(self.n_fft)
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * n / self.n_fft)  # periodic Hann
        self.filters = mel_filter_bank(
            num_frequency_bins=self.n_fft // 2 + 1, num_mel_bins=n_mels, min_frequency=0.0,
            max_frequency=cfg.sampling_rate / 2, sampling_rate=cfg.sampling_rate,
        ).astype(np.float64)  # [n_bins, n_mels]
        self.floor = cfg.global_log_mel_max - 8.0

    def features(self, span: np.ndarray) -> np.ndarray:
        """span: float32 samples [(n - 1) * hop + n_fft] holding n frames (frame i starts at i * hop)
        -> [n_mels, n] normalised log-mel."""
        return self.log_mel(np.lib.stride_tricks.sliding_window_view(span, self.n_fft)[:: self.hop])

    def log_mel(self, frames: np.ndarray) -> np.ndarray:
        """frames: [n, n_fft] raw samples -> [n_mels, n] normalised log-mel."""
        spectrum = np.fft.rfft(frames.astype(np.float64) * self.window, axis=1)
        power = spectrum.real**2 + spectrum.imag**2  # [n, n_bins]
        mel = power @ self.filters  # [n, n_mels]
        x = np.log10(np.maximum(mel, 1e-10))
        x = np.maximum(x, self.floor)
        return ((x + 4.0) / 4.0).T.astype(np.float32)


def frames_in_span(n_samples: int, cfg: AudioConfig) -> int:
    """The STFT frames a span of n_samples holds (FrameStream.push), which must be whole tokens' worth;
    else ValueError."""
    n = (n_samples - cfg.window_size) // cfg.hop_length + 1
    if n < 1 or (n - 1) * cfg.hop_length + cfg.window_size != n_samples or n % cfg.mel_frames_per_token:
        raise ValueError(f"{n_samples} samples do not span whole tokens of {cfg.mel_frames_per_token} frames "
                         f"({cfg.window_size} samples, {cfg.hop_length} apart)")
    return n


class FrameStream:
    """The padded sample stream cut into spans of whole tokens' STFT frames for an engine, which computes
    their log-mel itself. Frame f is the n_fft-sample window centred on padded sample hop * f; upstream's
    centre padding at the start reflects only the zero left pad, so it is zeros too. Consecutive spans
    overlap by n_fft - hop samples (each span starts at its first frame's window)."""

    def __init__(self, cfg: AudioConfig):
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(self.cfg.window_size // 2, dtype=np.float32)  # from the next frame's window start
        self.frames_done = 0

    def push(self, samples: np.ndarray, total_frames: int | None = None) -> np.ndarray:
        """Append samples; return the span of the next frames, as many whole tokens' worth as are
        complete (none: an empty array). total_frames: the stream ends after that many frames."""
        cfg = self.cfg
        self._buf = np.concatenate([self._buf, samples.astype(np.float32, copy=False)])
        n = max(0, (len(self._buf) - cfg.window_size) // cfg.hop_length + 1)
        if total_frames is not None:
            n = min(n, total_frames - self.frames_done)
        n -= n % cfg.mel_frames_per_token
        if n <= 0:
            return self._buf[:0]
        span = self._buf[: (n - 1) * cfg.hop_length + cfg.window_size]
        self._buf = self._buf[n * cfg.hop_length:]
        self.frames_done += n
        return span


def synthetic_speech(seconds: float, sampling_rate: int, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like test signal (voiced syllables with a moving pitch and formant-ish
    harmonics, pauses, a little noise), for benchmarks and the self-test where no recording exists."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sampling_rate)
    t = np.arange(n) / sampling_rate
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sampling_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) * (np.sin(2 * np.pi * 0.25 * t) > -0.5)
    return (0.2 * voice * syllables + 0.003 * rng.standard_normal(n)).astype(np.float32)
