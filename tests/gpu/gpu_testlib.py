"""Shared by the GPU test modules (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import numpy as np

from voxtral_desk.session import StreamingSession
from voxtral_desk.tokenizer import Tokenizer

PRESETS = ("tiny", "tiny-wide")
SEEDS = (0, 1, 2)
DELAYS = (480, 160)
STAGE_REPORT: list[str] = []  # "max relative error per stage" lines, printed in the terminal summary


def transcribe(engine, model, audio: np.ndarray, delay_ms: int, bounds: list[int] | None = None) -> list[int]:
    """All token ids of one utterance through the streaming session: one feed, or one per chunk
    audio[bounds[i]:bounds[i+1]]."""
    session = StreamingSession(engine, Tokenizer(model.tokenizer_path), delay_ms)
    if bounds is None:
        session.feed(audio)
    else:
        for start, stop in zip(bounds[:-1], bounds[1:], strict=False):
            session.feed(audio[start:stop])
    session.flush()
    return [t.id for t in session.tokens]
