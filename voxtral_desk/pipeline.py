"""Glue shared by the CLI, the app and the benchmark: pick an engine for a model, and transcribe a file
through a streaming session in bounded memory (an hour of audio is never decoded at once)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
import soxr

from .audio import AudioFileError
from .loader import Model, load_model
from .session import Engine, StreamingSession
from .tokenizer import Tokenizer
from .transcript import Transcript

BACKENDS = ("gpu", "reference")
FILE_BLOCK_SECONDS = 10.0


class Cancelled(Exception):
    pass


def create_engine(model: Model, backend: str = "gpu", **options) -> Engine:
    if backend == "reference":
        from .reference import ReferenceEngine

        return ReferenceEngine(model, **options)
    if backend == "gpu":
        from .gpu.engine import GPUEngine

        return GPUEngine(model, **options)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def open_session(model_path: Path | str, backend: str = "gpu", delay_ms: int | None = None,
                 **options) -> StreamingSession:
    model = load_model(model_path)
    return StreamingSession(create_engine(model, backend, **options), Tokenizer(model.tokenizer_path), delay_ms)


def _read_blocks(path: Path, frames: int):
    """The file's blocks as float32 [n, channels]; only decoding errors become AudioFileError."""
    try:
        yield from soundfile.blocks(str(path), blocksize=frames, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioFileError(f"{path}: cannot read audio ({e})") from None


def transcribe_file(session: StreamingSession, path: Path | str,
                    progress: Callable[[float], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> Transcript:
    """Stream a file through the session (which is reset first). progress gets 0..1; cancelled() is
    polled between blocks and raises Cancelled."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioFileError(f"{path}: cannot read audio ({e})") from None
    rate_out = session.audio_cfg.sampling_rate
    resampler = None if info.samplerate == rate_out else soxr.ResampleStream(
        info.samplerate, rate_out, 1, dtype="float32", quality="HQ")
    session.reset()
    done, last = 0, False
    for chunk in _read_blocks(path, max(1, int(info.samplerate * FILE_BLOCK_SECONDS))):
        if cancelled and cancelled():
            raise Cancelled(str(path))
        mono = np.ascontiguousarray(chunk.mean(axis=1), dtype=np.float32)
        done += len(mono)
        last = done >= info.frames
        if resampler is not None:
            mono = resampler.resample_chunk(mono, last=last)
        session.feed(mono)
        if progress and info.frames:
            progress(min(done / info.frames, 1.0) * 0.98)
    if resampler is not None and not last:  # an empty file never reached its last block
        session.feed(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    session.flush()
    if progress:
        progress(1.0)
    meta = {"audio": str(path), "duration": round(session.seconds_fed, 3), "delay_ms": session.delay_ms,
            "engine": session.engine.name}
    return Transcript(list(session.tokens), session.tokenizer, meta)
