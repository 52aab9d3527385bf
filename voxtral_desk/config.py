"""Hyper-parameters of a Voxtral Realtime model, read from the model's own files (params.json and the
`audio` block of tekken.json, or the same two documents stored in GGUF metadata). Nothing here is a
constant of the real model: tiny test models of the same structure load through the same code."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class ModelFileError(Exception):
    """A model file is missing, malformed or does not match what the model needs."""


@dataclass(frozen=True)
class EncoderConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float
    rope_theta: float
    sliding_window: int
    n_mels: int
    downsample_factor: int


@dataclass(frozen=True)
class DecoderConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float
    rope_theta: float
    sliding_window: int
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

    @property
    def samples_per_token(self) -> int:  # 1280 for the real model: 80 ms at 16 kHz
        return round(self.sampling_rate / self.frame_rate)

    @property
    def mel_frames_per_token(self) -> int:  # 8
        return self.samples_per_token // self.hop_length

    @property
    def token_seconds(self) -> float:
        return 1.0 / self.frame_rate

    def delay_tokens(self, delay_ms: int) -> int:
        step_ms = 1000.0 / self.frame_rate
        n = delay_ms / step_ms
        if n < 1 or abs(n - round(n)) > 1e-6:
            raise ValueError(f"delay must be a positive multiple of {step_ms:g} ms, got {delay_ms} ms")
        return round(n)


@dataclass(frozen=True)
class ModelConfig:
    encoder: EncoderConfig
    decoder: DecoderConfig
    audio: AudioConfig
    params: dict  # params.json as read, kept so converters can store it unchanged
    tekken_audio: dict  # the `audio` block of tekken.json

    @classmethod
    def from_documents(cls, params: dict, tekken_audio: dict) -> "ModelConfig":
        try:
            enc_args = params["multimodal"]["whisper_model_args"]["encoder_args"]
            audio_args = enc_args["audio_encoding_args"]
            downsample = params["multimodal"]["whisper_model_args"]["downsample_args"]["downsample_factor"]
            enc = EncoderConfig(
                dim=int(enc_args["dim"]),
                n_layers=int(enc_args["n_layers"]),
                n_heads=int(enc_args["n_heads"]),
                n_kv_heads=int(enc_args.get("n_kv_heads", enc_args["n_heads"])),
                head_dim=int(enc_args["head_dim"]),
                hidden_dim=int(enc_args["hidden_dim"]),
                norm_eps=float(enc_args["norm_eps"]),
                rope_theta=float(enc_args["rope_theta"]),
                sliding_window=int(enc_args["sliding_window"]),
                n_mels=int(audio_args["num_mel_bins"]),
                downsample_factor=int(downsample),
            )
            dec = DecoderConfig(
                dim=int(params["dim"]),
                n_layers=int(params["n_layers"]),
                n_heads=int(params["n_heads"]),
                n_kv_heads=int(params["n_kv_heads"]),
                head_dim=int(params["head_dim"]),
                hidden_dim=int(params["hidden_dim"]),
                norm_eps=float(params["norm_eps"]),
                rope_theta=float(params["rope_theta"]),
                sliding_window=int(params["sliding_window"]),
                vocab_size=int(params["vocab_size"]),
                ada_dim=int(params["ada_rms_norm_t_cond_dim"]),
            )
            audio = AudioConfig(
                sampling_rate=int(tekken_audio["sampling_rate"]),
                frame_rate=float(tekken_audio["frame_rate"]),
                hop_length=int(tekken_audio["audio_encoding_config"]["hop_length"]),
                window_size=int(tekken_audio["audio_encoding_config"]["window_size"]),
                global_log_mel_max=float(audio_args["global_log_mel_max"]),
                n_left_pad_tokens=int(tekken_audio["streaming_n_left_pad_tokens"]),
                default_delay_ms=int(tekken_audio["transcription_delay_ms"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"model configuration is incomplete or malformed: missing or bad {e}") from None
        if enc.n_mels != int(tekken_audio["audio_encoding_config"]["num_mel_bins"]):
            raise ModelFileError("params.json and tekken.json disagree on the number of mel bins")
        if audio.samples_per_token % audio.hop_length:
            raise ModelFileError("samples per token is not a whole number of mel hops")
        return cls(enc, dec, audio, params, tekken_audio)

    @classmethod
    def from_json_texts(cls, params_text: str, tekken_audio_text: str) -> "ModelConfig":
        return cls.from_documents(json.loads(params_text), json.loads(tekken_audio_text))

    @classmethod
    def from_model_dir(cls, params_path: Path, tekken_path: Path) -> "ModelConfig":
        for p in (params_path, tekken_path):
            if not p.is_file():
                raise ModelFileError(f"{p}: file not found")
        try:
            params = json.loads(params_path.read_text())
            tekken = json.loads(tekken_path.read_text())
        except (OSError, ValueError) as e:
            raise ModelFileError(f"cannot read model configuration: {e}") from None
        if "audio" not in tekken:
            raise ModelFileError(f"{tekken_path}: no 'audio' block; this tokenizer is not for a realtime model")
        return cls.from_documents(params, tekken["audio"])
