"""Hyper-parameters of a Voxtral Realtime model, read from the model's own files (params.json and the
`audio` block of tekken.json, or the same two documents stored in GGUF metadata). Nothing here is a
constant of the real model: tiny test models of the same structure load through the same code."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .quant import BLOCK

MAX_DELAY_MS = 2400  # the longest delay the model card lists (80-1200 ms in 80 ms steps, and 2400)


class ModelFileError(Exception):
    """A model file is missing, malformed or does not match what the model needs."""


@dataclass(frozen=True)
class TransformerConfig:
    """What the encoder and the decoder have in common: a stack of pre-norm attention + SwiGLU layers."""

    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float
    rope_theta: float
    sliding_window: int


@dataclass(frozen=True)
class EncoderConfig(TransformerConfig):
    n_mels: int
    downsample_factor: int


@dataclass(frozen=True)
class DecoderConfig(TransformerConfig):
    vocab_size: int
    ada_dim: int


@dataclass(frozen=True)
class AudioConfig:
    sampling_rate: int
    frame_rate: float
    hop_length: int
    window_size: int
    global_log_mel_max: float
    n_left_pad_tokens: int
    default_delay_ms: int
    max_delay_ms: ClassVar[int] = MAX_DELAY_MS

    @property
    def samples_per_token(self) -> int:  # 1280 for the real model: 80 ms at 16 kHz
        return round(self.sampling_rate / self.frame_rate)

    @property
    def mel_frames_per_token(self) -> int:  # 8
        return self.samples_per_token // self.hop_length

    @property
    def token_seconds(self) -> float:
        return 1.0 / self.frame_rate

    @property
    def token_ms(self) -> int:  # 80: the delay's step and its shortest value
        return round(1000 / self.frame_rate)

    def delay_tokens(self, delay_ms: int) -> int:
        if problem := delay_problem(delay_ms, self.token_ms):
            raise ValueError(f"{problem}, not {delay_ms} ms")
        return int(delay_ms // self.token_ms)


def delay_problem(delay_ms, token_ms: int) -> str | None:
    """Why delay_ms is not a transcription delay (None when it is): it must be a whole number of tokens,
    from one token up to MAX_DELAY_MS."""
    longest = MAX_DELAY_MS // token_ms * token_ms
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)) or delay_ms % token_ms \
            or not token_ms <= delay_ms <= longest:
        return f"the delay must be a multiple of {token_ms} ms between {token_ms} and {longest} ms"
    return None


def _show(value) -> str:
    """A value as it appears in the JSON file (true, NaN, "2"), cut short if long."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Settings:
    """One JSON object of settings read key by key against bounds; every message names the file and key."""

    def __init__(self, doc, source: str, prefix: str = ""):
        if not isinstance(doc, dict):
            raise ModelFileError(f"{source}: {prefix.rstrip('.') or 'the file'} must hold a JSON object, "
                                 f"not {_show(doc)}")
        self.doc, self.source, self.prefix = doc, source, prefix

    def error(self, key: str, problem: str) -> ModelFileError:
        return ModelFileError(f"{self.source}: {self.prefix}{key} {problem}")

    def value(self, key: str, default=None):
        if key not in self.doc and default is None:
            raise self.error(key, "is missing")
        return self.doc.get(key, default)

    def section(self, key: str) -> "_Settings":
        value = self.value(key)
        if not isinstance(value, dict):
            raise self.error(key, f"is {_show(value)}; it must be a JSON object")
        return _Settings(value, self.source, f"{self.prefix}{key}.")

    def whole(self, key: str, lo: int, hi: int, multiple_of: int = 1, default: int | None = None) -> int:
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise self.error(key, f"is {_show(value)}; it must be a whole number")
        value = int(value)
        if not lo <= value <= hi:
            raise self.error(key, f"is {value}; a Voxtral Realtime model has between {lo} and {hi}")
        if value % multiple_of:
            rule = "even" if multiple_of == 2 else f"a multiple of {multiple_of}"
            raise self.error(key, f"is {value}; it must be {rule}")
        return value

    def number(self, key: str, lo: float, hi: float) -> float:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"is {_show(value)}; it must be a number")
        if not lo <= value <= hi:  # NaN fails this too
            raise self.error(key, f"is {_show(value)}; a Voxtral Realtime model has between {lo:g} and {hi:g}")
        return float(value)


def _attention(s: _Settings, max_window: int) -> dict:
    """The sizes an encoder or decoder block shares, with the heads checked against each other."""
    n_heads = s.whole("n_heads", 1, 256)
    n_kv_heads = s.whole("n_kv_heads", 1, 256, default=n_heads)
    if n_heads % n_kv_heads:
        raise s.error("n_kv_heads", f"is {n_kv_heads}; it must divide n_heads ({n_heads})")
    head_dim = s.whole("head_dim", 2, 256, multiple_of=2)  # RoPE rotates pairs
    if n_heads * head_dim % BLOCK:  # the output projection's rows are whole 4-bit blocks
        raise s.error("n_heads × head_dim", f"is {n_heads * head_dim}; it must be a multiple of {BLOCK}")
    return dict(dim=s.whole("dim", BLOCK, 16384, BLOCK), n_layers=s.whole("n_layers", 1, 256), n_heads=n_heads,
                n_kv_heads=n_kv_heads, head_dim=head_dim, hidden_dim=s.whole("hidden_dim", BLOCK, 65536, BLOCK),
                norm_eps=s.number("norm_eps", 1e-12, 0.1), rope_theta=s.number("rope_theta", 1, 1e10),
                sliding_window=s.whole("sliding_window", 1, max_window))


@dataclass(frozen=True)
class ModelConfig:
    encoder: EncoderConfig
    decoder: DecoderConfig
    audio: AudioConfig
    params: dict  # params.json as read, kept so converters can store it unchanged
    tekken_audio: dict  # the `audio` block of tekken.json

    @classmethod
    def from_documents(cls, params, tekken_audio, params_source: str = "params.json",
                       audio_source: str = "tekken.json", audio_prefix: str = "audio.") -> "ModelConfig":
        """Read and check every hyper-parameter, alone and against the others, before anything is sized
        from them. The bounds are generous (the real model is well inside, tiny test models too) but keep
        a damaged file from asking for gigabytes. audio_prefix: where the block sits in its file."""
        p = _Settings(params, params_source)
        whisper = p.section("multimodal").section("whisper_model_args")
        e, down = whisper.section("encoder_args"), whisper.section("downsample_args")
        mel_args = e.section("audio_encoding_args")
        enc = EncoderConfig(**_attention(e, 4096), n_mels=mel_args.whole("num_mel_bins", 1, 512),
                            downsample_factor=down.whole("downsample_factor", 1, 64))
        dec = DecoderConfig(**_attention(p, 32768), vocab_size=p.whole("vocab_size", 1, 1 << 20),
                            ada_dim=p.whole("ada_rms_norm_t_cond_dim", BLOCK, 16384, BLOCK))
        a = _Settings(tekken_audio, audio_source, audio_prefix)
        a_enc = a.section("audio_encoding_config")
        sampling_rate, frame_rate = a.whole("sampling_rate", 4000, 192000), a.number("frame_rate", 1, 100)
        if not (sampling_rate / frame_rate).is_integer():
            raise a.error("sampling_rate / frame_rate", f"is {sampling_rate / frame_rate:g} samples per token; "
                          "it must be a whole number")
        if not (1000 / frame_rate).is_integer():  # delays are whole milliseconds, a whole number of tokens
            raise a.error("frame_rate", f"is {frame_rate:g}; a token must last a whole number of milliseconds, "
                          f"not {1000 / frame_rate:g}")
        hop = a_enc.whole("hop_length", 1, 8192)
        samples_per_token = round(sampling_rate / frame_rate)
        if samples_per_token % hop:
            raise a_enc.error("hop_length", f"is {hop}; {samples_per_token} samples per token is not a whole "
                              "number of hop_length hops")
        mel_frames = samples_per_token // hop
        if mel_frames != 2 * enc.downsample_factor:  # the conv stem halves the frames, the adapter groups them
            raise down.error("downsample_factor", f"is {enc.downsample_factor}; the audio settings in {audio_source} "
                             f"give {mel_frames} mel frames per token, which the conv stem halves, so it must be "
                             f"{mel_frames / 2:g}")
        if (tekken_mels := a_enc.whole("num_mel_bins", 1, 512)) != enc.n_mels:
            raise a_enc.error("num_mel_bins", f"is {tekken_mels}, but {params_source} "
                              f"({mel_args.prefix}num_mel_bins) says {enc.n_mels}")
        delay = a.value("transcription_delay_ms")
        if problem := delay_problem(delay, round(1000 / frame_rate)):
            raise a.error("transcription_delay_ms", f"is {_show(delay)}; {problem}")
        audio = AudioConfig(
            sampling_rate=sampling_rate, frame_rate=frame_rate, hop_length=hop,
            window_size=a_enc.whole("window_size", 2, 8192),
            global_log_mel_max=mel_args.number("global_log_mel_max", -100, 100),
            n_left_pad_tokens=a.whole("streaming_n_left_pad_tokens", 0, 256), default_delay_ms=int(delay),
        )
        return cls(enc, dec, audio, params, tekken_audio)

    @classmethod
    def from_json_texts(cls, params_text: str, tekken_audio_text: str, params_source: str = "params.json",
                        audio_source: str = "tekken.json audio block") -> "ModelConfig":
        return cls.from_documents(_parse_json(params_text, params_source), _parse_json(tekken_audio_text, audio_source),
                                  params_source, audio_source, audio_prefix="")

    @classmethod
    def from_model_dir(cls, params_path: Path, tekken_path: Path) -> "ModelConfig":
        docs = []
        for p in (params_path, tekken_path):
            if not p.is_file():
                raise ModelFileError(f"{p}: file not found")
            try:
                docs.append(_parse_json(p.read_bytes().decode("utf-8"), str(p)))
            except OSError as e:
                raise ModelFileError(f"{p}: cannot be read ({e.strerror})") from None
            except UnicodeDecodeError:
                raise ModelFileError(f"{p}: not a text file (damaged?)") from None
        params, tekken = docs
        if not isinstance(tekken, dict) or not isinstance(tekken.get("audio"), dict):
            raise ModelFileError(f"{tekken_path}: no 'audio' block; this tokenizer is not for a realtime model")
        return cls.from_documents(params, tekken["audio"], str(params_path), str(tekken_path))


def _parse_json(text: str, source: str):
    try:
        return json.loads(text)
    except ValueError as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise ModelFileError(f"{source}: not valid JSON{where}") from None
