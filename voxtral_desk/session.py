"""The streaming transcription session: the one API the CLI, the GUI worker, the benchmark and the tests
use, whatever engine (numpy reference or GPU) runs the model.

feed() takes 16 kHz mono float32 samples in chunks of any size and returns the tokens they completed;
flush() appends upstream's right padding and returns the rest. Offline transcription is feed(all) +
flush(), so streaming and offline cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from mistral_common.tokens.tokenizers.audio import OFFLINE_STREAMING_BUFFER_TOKENS

from .audio import FrameStream
from .config import ModelConfig
from .tokenizer import Tokenizer


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


@dataclass(frozen=True)
class Token:
    id: int  # any id, specials included
    index: int  # its position in the decoder's sequence
    start: float  # seconds into the audio the token describes
    end: float


class StreamingSession:
    def __init__(self, engine: Engine, tokenizer: Tokenizer, delay_ms: int | None = None, stop_at_eos: bool = True):
        self.engine = engine
        self.stop_at_eos = stop_at_eos  # False only for benchmarks, which decode every position
        self.tokenizer = tokenizer
        self.audio_cfg = engine.config.audio
        self.frames = FrameStream(self.audio_cfg)
        self.delay_ms = delay_ms or self.audio_cfg.default_delay_ms
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
        self.tokens: list[Token] = []
        self.finished = False  # EOS seen or flushed: further audio is ignored until reset()
        self._positions_run = 0
        self._encode(np.zeros(cfg.n_left_pad_tokens * cfg.samples_per_token, dtype=np.float32))

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
        self.samples_fed += len(samples)
        self._encode(samples)
        return self._decode(self.engine.audio_tokens_ready)

    def flush(self) -> list[Token]:
        """End of audio: pad as upstream does offline, transcribe everything, then finish."""
        if self.finished:
            return []
        cfg = self.audio_cfg
        r = cfg.samples_per_token
        n_right = (-self.samples_fed) % r + (self.n_delay + 1 + OFFLINE_STREAMING_BUFFER_TOKENS) * r
        total_frames = (cfg.n_left_pad_tokens * r + self.samples_fed + n_right) // cfg.hop_length
        # + half a window of zeros: upstream's centre padding on the right reflects the zero pad.
        self._encode(np.zeros(n_right + cfg.window_size // 2, dtype=np.float32), total_frames)
        # Upstream generates up to the number of audio tokens, prompt included: the last audio
        # position is never run.
        new = self._decode(self.engine.audio_tokens_ready - 1)
        self.finished = True
        return new

    def _encode(self, samples: np.ndarray, total_frames: int | None = None) -> None:
        """total_frames: where the stream ends (upstream drops the last STFT frame)."""
        span = self.frames.push(samples, total_frames)
        if len(span):
            self.engine.encode(span)

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
