"""The streaming transcription session: the one API the CLI, the GUI worker, the benchmark and the tests
use, whatever engine (numpy reference or GPU) runs the model.

feed() takes 16 kHz mono float32 samples in chunks of any size and returns the tokens they completed;
flush() appends upstream's right padding and returns the rest. Offline transcription is feed(all) +
flush(), so streaming and offline cannot drift apart. save_state() and restore_state() pause a stream
while another one (a dictation) runs on the same engine, and resume it exactly.
"""
from __future__ import annotations

import copy
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from mistral_common.tokens.tokenizers.audio import OFFLINE_STREAMING_BUFFER_TOKENS

from .audio import FrameStream, frames_in_span
from .config import ModelConfig
from .tokenizer import Tokenizer

# Tokens' worth of STFT frames per engine.encode(), decoded before the next: the reference's memory grows
# with the square of one encode's size (a 1 Hz WAV resampled hands 13 M samples to one feed).
MAX_SPAN_TOKENS = 64


class Engine(Protocol):
    """What a backend implements. Positions run 0, 1, 2, ...; position p reads audio embedding p plus the
    embedding of its input token (the prompt's, then the previous position's argmax)."""

    name: str
    config: ModelConfig

    def reset(self, prompt: list[int], n_delay: int) -> None: ...

    def encode(self, audio: np.ndarray) -> None:
        """audio: float32 samples of the padded stream spanning 8k STFT frames ((8k - 1) * hop + n_fft,
        audio.FrameStream) -> k more audio embeddings ready for decoding. The engine computes the
        frames' log-mel itself."""

    def decode(self, n: int) -> np.ndarray:
        """Run the next n positions (n <= audio embeddings ready); return their argmax ids [n]."""

    @property
    def audio_tokens_ready(self) -> int: ...

    def synchronize(self) -> None:
        """Wait until all submitted work is done (for timing; decode() already returns finished results)."""

    def save_state(self) -> object:
        """A snapshot of the stream in progress (caches, positions, queued audio embeddings, delay), in
        host memory, for restore_state()."""

    def restore_state(self, state: object) -> None:
        """Continue the stream of a snapshot, whatever ran since (other streams, other delays); the
        snapshot stays valid for further restores."""


@dataclass(frozen=True)
class Token:
    id: int  # any id, specials included
    index: int  # its position in the decoder's sequence
    start: float  # seconds into the audio the token describes
    end: float


@dataclass(frozen=True)
class SessionState:
    """A paused stream (StreamingSession.save_state): the session's part, copied, and the engine's, opaque."""

    engine: weakref.ref  # the engine the snapshot belongs to (a weak reference: a snapshot keeps no model alive)
    engine_state: object
    frames: FrameStream
    samples_fed: int
    nonfinite_samples: int
    tokens: tuple[Token, ...]
    prompt: tuple[int, ...]
    delay_ms: int
    n_delay: int
    positions_run: int
    finished: bool


class StreamingSession:
    def __init__(self, engine: Engine, tokenizer: Tokenizer, delay_ms: int | None = None, stop_at_eos: bool = True):
        self.engine = engine
        self.stop_at_eos = stop_at_eos  # False only for benchmarks, which decode every position
        self.tokenizer = tokenizer
        self.audio_cfg = engine.config.audio
        self.frames = FrameStream(self.audio_cfg)
        self.delay_ms = self.audio_cfg.default_delay_ms if delay_ms is None else delay_ms
        self.reset()

    def reset(self, delay_ms: int | None = None) -> None:
        """Start a new utterance; the delay (ms, a multiple of 80) may change here."""
        cfg = self.audio_cfg
        delay_ms = self.delay_ms if delay_ms is None else delay_ms
        self.n_delay = cfg.delay_tokens(delay_ms)  # validates before anything changes
        self.delay_ms = delay_ms
        self.prompt = [self.tokenizer.bos] + [self.tokenizer.streaming_pad] * (cfg.n_left_pad_tokens + self.n_delay)
        self.engine.reset(self.prompt, self.n_delay)
        self.frames.reset()
        self.samples_fed = 0
        self.nonfinite_samples = 0  # NaN or infinite samples fed, which were fed as zeros
        self.tokens: list[Token] = []
        self.finished = False  # EOS seen or flushed: further audio is ignored until reset()
        self._positions_run = 0
        for span in self._spans(np.zeros(cfg.n_left_pad_tokens * cfg.samples_per_token, dtype=np.float32)):
            self.engine.encode(span)

    def save_state(self) -> SessionState:
        """A snapshot of the stream in progress, to continue it with restore_state() after other streams
        have run on this session. Its cost is the engine's: with the GPU engine at full size up to about
        1 GiB of host memory (GPUEngine.save_state has the figures); the reference copies nothing."""
        return SessionState(weakref.ref(self.engine), self.engine.save_state(), copy.deepcopy(self.frames),
                            self.samples_fed, self.nonfinite_samples, tuple(self.tokens), tuple(self.prompt),
                            self.delay_ms, self.n_delay, self._positions_run, self.finished)

    def restore_state(self, state: SessionState) -> None:
        """Continue the stream saved in `state`: the next feed()/flush() give exactly the tokens the stream
        would have given without the interruption. A snapshot can be restored any number of times."""
        if state.engine() is not self.engine:
            raise ValueError("this transcription was paused on another engine (the model or its settings changed "
                             "since): it cannot be resumed here; transcribe it again from the start")
        self.engine.restore_state(state.engine_state)
        self.frames = copy.deepcopy(state.frames)  # the snapshot's copy stays untouched for a later restore
        self.samples_fed, self.nonfinite_samples = state.samples_fed, state.nonfinite_samples
        self.tokens = list(state.tokens)
        self.prompt = list(state.prompt)
        self.delay_ms, self.n_delay = state.delay_ms, state.n_delay
        self._positions_run, self.finished = state.positions_run, state.finished

    @property
    def text(self) -> str:
        return self.tokenizer.decode(t.id for t in self.tokens).strip()

    @property
    def seconds_fed(self) -> float:
        return self.samples_fed / self.audio_cfg.sampling_rate

    def feed(self, samples: np.ndarray) -> list[Token]:
        if self.finished:
            return []
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        bad = ~np.isfinite(samples)
        if bad.any():  # one NaN would poison the reference's caches for the rest of the stream
            samples = np.where(bad, np.float32(0), samples)
            self.nonfinite_samples += int(np.count_nonzero(bad))
        self.samples_fed += len(samples)
        return self._transcribe(samples)

    def flush(self) -> list[Token]:
        """End of audio: pad as upstream does offline, transcribe everything, then finish."""
        if self.finished:
            return []
        cfg = self.audio_cfg
        r = cfg.samples_per_token
        n_right = (-self.samples_fed) % r + (self.n_delay + 1 + OFFLINE_STREAMING_BUFFER_TOKENS) * r
        total_frames = (cfg.n_left_pad_tokens * r + self.samples_fed + n_right) // cfg.hop_length
        # + half a window of zeros: upstream's centre padding on the right reflects the zero pad. Upstream
        # generates up to the number of audio tokens, prompt included: the last audio position is never run.
        new = self._transcribe(np.zeros(n_right + cfg.window_size // 2, dtype=np.float32), total_frames, keep=1)
        self.finished = True
        return new

    def _transcribe(self, samples: np.ndarray, total_frames: int | None = None, keep: int = 0) -> list[Token]:
        """Encode the frames the samples complete span by span, and after each span decode every position
        ready but the last `keep`."""
        new: list[Token] = []
        for span in self._spans(samples, total_frames):
            self.engine.encode(span)
            new += self._decode(self.engine.audio_tokens_ready - keep)
            if self.finished:
                break
        return new

    def _spans(self, samples: np.ndarray, total_frames: int | None = None) -> Iterator[np.ndarray]:
        """The frames the samples complete, as spans of at most MAX_SPAN_TOKENS tokens for engine.encode().
        total_frames: where the stream ends (upstream drops the last STFT frame)."""
        cfg = self.audio_cfg
        span = self.frames.push(samples, total_frames)
        n_frames = frames_in_span(len(span), cfg) if len(span) else 0
        step = MAX_SPAN_TOKENS * cfg.mel_frames_per_token
        for first in range(0, n_frames, step):
            last = min(n_frames, first + step) - 1
            yield span[first * cfg.hop_length: last * cfg.hop_length + cfg.window_size]

    def _decode(self, n: int) -> list[Token]:
        if n <= 0 or self.finished:
            return []
        ids = self.engine.decode(n)
        first = self._positions_run
        self._positions_run += n
        new: list[Token] = []
        step = self.audio_cfg.token_seconds
        for i, tok in enumerate(ids.tolist()):
            index = first + i + 1  # the token produced at position p is the input of p + 1
            if index < len(self.prompt):
                continue
            start = (index - len(self.prompt)) * step
            new.append(Token(int(tok), index, start, start + step))
            if tok == self.tokenizer.eos and self.stop_at_eos:
                self.finished = True
                break
        self.tokens.extend(new)
        return new
