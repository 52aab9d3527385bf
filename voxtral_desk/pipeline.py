"""Glue shared by the CLI, the app and the benchmark: pick an engine for a model, and transcribe a file
through a streaming session in bounded memory (an hour of audio is never decoded at once)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soxr

from .audio import AudioFile
from .loader import Model, load_model
from .models.errors import Cancelled
from .session import Engine, StreamingSession
from .tokenizer import Tokenizer
from .transcript import Transcript

BACKENDS = ("gpu", "reference")  # what create_engine builds; the CLI and the app's settings offer these
FILE_BLOCK_SECONDS = 10.0
MAX_READ_SAMPLES = 1 << 22  # one read holds at most this many samples (16 MiB), whatever rate a header claims


def create_engine(model: Model, backend: str = "gpu", **options) -> Engine:
    if backend == "reference":
        from .reference import ReferenceEngine

        return ReferenceEngine(model, **options)
    if backend == "gpu":
        from .gpu.engine import GPUEngine

        return GPUEngine(model, **options)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def open_session(model: Model | Path | str, backend: str = "gpu", delay_ms: int | None = None,
                 stop_at_eos: bool = True, **options) -> StreamingSession:
    """A session on a model (a Model already loaded, or the path load_model opens); options go to the
    engine (create_engine). stop_at_eos=False: every position is decoded (benchmarks)."""
    if not isinstance(model, Model):
        model = load_model(model)
    if delay_ms is not None:
        model.config.audio.delay_tokens(delay_ms)  # a bad delay is refused before an engine is built
    return StreamingSession(create_engine(model, backend, **options), Tokenizer(model.tokenizer_path), delay_ms,
                            stop_at_eos)


class FileTranscription:
    """One file streamed through a session in bounded blocks, which can stop between two blocks and
    continue later from where it stopped, also after other streams (a dictation) used the session: the
    stream is saved with StreamingSession.save_state() when it stops and restored when it continues.
    The audio file stays open while it is paused; close() ends it for good."""

    def __init__(self, session: StreamingSession, path: Path | str):
        self.session = session
        self.path = Path(path)
        self.audio: AudioFile | None = None
        self.saved = None  # the session's state while stopped between blocks
        self.done = 0  # frames of the file fed so far
        self._block = None  # the next block, read ahead

    @property
    def fraction(self) -> float:
        return min(self.done / self.audio.frames, 1.0) if self.audio is not None and self.audio.frames else 0.0

    def run(self, progress: Callable[[float], None] | None = None,
            stop: Callable[[], bool] | None = None) -> Transcript:
        """Transcribe to the end (from where an earlier run stopped). progress gets 0..1; stop() is polled
        between blocks: when it says so, the stream is saved and Cancelled is raised, and a later run()
        continues it. Raises AudioFileError for a file that cannot be read."""
        session = self.session
        rate_out = session.audio_cfg.sampling_rate
        feed_samples = int(rate_out * FILE_BLOCK_SECONDS)
        if self.audio is None:
            self.audio = AudioFile(self.path)
            rate = self.audio.samplerate
            self._resampler = None if rate == rate_out else soxr.ResampleStream(rate, rate_out, 1, dtype="float32",
                                                                               quality="HQ")
            self._block_frames = max(1, min(int(rate * FILE_BLOCK_SECONDS), MAX_READ_SAMPLES // self.audio.channels))
            session.reset()
            self._block = self.audio.read(self._block_frames)
        elif self.saved is not None:
            session.restore_state(self.saved)
        self.saved = None
        audio = self.audio
        try:
            while len(self._block):
                if stop and stop():
                    self.saved = session.save_state()
                    raise Cancelled(str(self.path))
                following = audio.read(self._block_frames)  # read ahead: a header's length can be wrong (a cut mp3)
                mono = np.ascontiguousarray(self._block.mean(axis=1), dtype=np.float32)
                if self._resampler is not None:
                    mono = self._resampler.resample_chunk(mono, last=not len(following))
                # At odd rates the resampler may hand over minutes at once: the session gets bounded blocks.
                for start in range(0, len(mono), feed_samples):
                    session.feed(mono[start:start + feed_samples])
                self.done += len(self._block)
                if progress and audio.frames:
                    progress(self.fraction * 0.98)
                self._block = following
        except Cancelled:
            raise
        except BaseException:
            self.close()
            raise
        nonfinite = audio.nonfinite_samples + getattr(session, "nonfinite_samples", 0)
        self.close()
        session.flush()
        if progress:
            progress(1.0)
        meta = {"audio": str(self.path), "duration": round(session.seconds_fed, 3), "delay_ms": session.delay_ms,
                "engine": session.engine.name}
        if nonfinite:
            meta["nonfinite_samples"] = nonfinite
        return Transcript(list(session.tokens), session.tokenizer, meta)

    def close(self) -> None:
        if self.audio is not None:
            self.audio.__exit__(None, None, None)
        self.saved = None


def transcribe_file(session: StreamingSession, path: Path | str,
                    progress: Callable[[float], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> Transcript:
    """Stream a file through the session (which is reset first). progress gets 0..1; cancelled() is
    polled between blocks and raises Cancelled."""
    job = FileTranscription(session, path)
    try:
        return job.run(progress, cancelled)
    finally:
        job.close()
