"""The whole model in plain numpy float32: the readable reference every other backend is tested against.

Shapes are written as [rows, features]; T is a number of encoder frames or decoder positions in the
current call, S the number of cached keys, D the model width, H/KV the query/key-value head counts and
hd the head dimension. Everything runs incrementally with caches, so streaming and offline transcription
are the same computation (offline simply feeds all the audio at once). The maths it shares with the GPU
engine (activations, RMSNorm, RoPE, attention, time conditioning) is in model_math.py.
"""
from __future__ import annotations

import copy

import numpy as np

from .audio import LogMel, frames_in_span
from .checkpoint import AUDIO_TENSORS, FINAL_NORM, TOKEN_EMBEDDINGS, decoder_layers, encoder_layers
from .config import ModelConfig
from .model_math import apply_rope, attention, gelu, rms_norm, rope_tables, silu, time_conditioning


class KVCache:
    """Keys/values of one attention layer, trimmed to what a sliding window can still see, rounded to
    the precision they are stored in (dtype)."""

    def __init__(self, window: int, dtype=np.float32):
        self.window = window
        self.dtype = dtype
        self.k = self.v = None
        self.pos = np.zeros(0, dtype=np.int64)

    def extend(self, k, v, pos):
        k, v = (a.astype(self.dtype, copy=False).astype(np.float32, copy=False) for a in (k, v))  # no copy for float32
        self.k = k if self.k is None else np.concatenate([self.k, k])
        self.v = v if self.v is None else np.concatenate([self.v, v])
        self.pos = np.concatenate([self.pos, pos])

    def trim(self):
        keep = self.pos > self.pos[-1] + 1 - self.window  # future queries start at pos[-1] + 1
        self.k, self.v, self.pos = self.k[keep], self.v[keep], self.pos[keep]


class ReferenceEngine:
    """Implements the engine interface the streaming session drives (see session.Engine)."""

    name = "reference (numpy on the CPU)"

    def __init__(self, model, trace: bool = False, kv_dtype=np.float32):
        """kv_dtype: the precision keys and values are cached in. float32 is the model as upstream runs
        it; GPUEngine.kv_dtype (float16) computes exactly what the GPU engine should, for comparing the
        two token for token."""
        self.config: ModelConfig = model.config
        self.kv_dtype = kv_dtype
        self.trace = {} if trace else None
        w = model.weights
        self.w = {spec: w.f32(spec) for spec in model.tensor_names}
        self.front_end = LogMel(self.config.audio, self.config.encoder.n_mels)
        self.n_delay = None

    # --- engine interface -------------------------------------------------------------------------

    def reset(self, prompt: list[int], n_delay: int) -> None:
        e, d = self.config.encoder, self.config.decoder
        self.prompt = list(prompt)
        self.conv0_tail = np.zeros((e.n_mels, 2), dtype=np.float32)  # last 2 mel frames (causal pad)
        self.conv1_tail = np.zeros((e.dim, 1), dtype=np.float32)  # last conv0 output frame
        self.enc_pos = 0
        self.enc_cache = [KVCache(e.sliding_window, self.kv_dtype) for _ in range(e.n_layers)]
        self.dec_cache = [KVCache(d.sliding_window, self.kv_dtype) for _ in range(d.n_layers)]
        self.audio_embeddings = np.zeros((0, d.dim), dtype=np.float32)  # [not yet decoded, D]
        self.position = 0
        self.last_token = None
        if n_delay != self.n_delay:
            self.n_delay = n_delay
            t_cond = time_conditioning(n_delay, d.dim)
            self.ada_scale = []  # (1 + s_j) per decoder layer, constant for a fixed delay
            for L in decoder_layers(self.config):
                down = self.w[L.ada_down] @ t_cond
                self.ada_scale.append((1.0 + self.w[L.ada_up] @ gelu(down)).astype(np.float32))
        if self.trace is not None:
            self.trace.clear()

    # Everything a stream carries besides the KV caches (save_state).
    _STREAM = ("prompt", "conv0_tail", "conv1_tail", "enc_pos", "audio_embeddings", "position", "last_token",
               "n_delay", "ada_scale")

    def save_state(self) -> dict:
        """A snapshot of the stream (session.Engine.save_state). It shares the engine's arrays, which are
        only ever replaced, never written into: it costs no copy and no time, but keeps that moment's
        arrays alive while other streams run (at full size up to 2.1 GB of float32 keys and values: 1.7 GB
        of the decoder's 8191 visible positions, 0.4 GB of the encoder's 749 frames)."""
        state = {name: getattr(self, name) for name in self._STREAM}
        state["caches"] = [copy.copy(c) for c in self.enc_cache + self.dec_cache]
        return state

    def restore_state(self, state: dict) -> None:
        for name in self._STREAM:
            setattr(self, name, state[name])
        caches = [copy.copy(c) for c in state["caches"]]  # extend() rebinds their arrays: not the snapshot's
        n_enc = self.config.encoder.n_layers
        self.enc_cache, self.dec_cache = caches[:n_enc], caches[n_enc:]

    @property
    def audio_tokens_ready(self) -> int:
        return len(self.audio_embeddings)

    def synchronize(self) -> None:
        pass  # numpy has finished by the time a call returns

    def encode(self, audio: np.ndarray) -> None:
        """audio: samples spanning 8k STFT frames (session.Engine.encode) -> k audio embeddings queued
        for the decoder."""
        frames_in_span(len(audio), self.config.audio)  # whole tokens' frames, or ValueError
        mel = self.front_end.features(audio)  # [n_mels, 8k]
        self._record("mel", mel.T)
        x = self.conv_stem(mel)  # [4k, De]
        x = self.encoder(x)  # [4k, De]
        a = self.adapter(x)  # [k, D]
        self.audio_embeddings = np.concatenate([self.audio_embeddings, a])

    def decode(self, n: int) -> np.ndarray:
        """Run the next n decoder positions; returns the argmax id of each (the next position's token)."""
        out = np.empty(n, dtype=np.int64)
        done = 0
        n_prompt = max(0, min(n, len(self.prompt) - self.position))
        if n_prompt:  # prompt positions have known inputs: one batched forward
            ids = np.array(self.prompt[self.position : self.position + n_prompt])
            out[:n_prompt] = self._forward(ids)
            done = n_prompt
        while done < n:
            out[done : done + 1] = self._forward(np.array([self.last_token]))
            done += 1
        return out

    # --- stages -----------------------------------------------------------------------------------

    def conv_stem(self, mel: np.ndarray) -> np.ndarray:
        """Causal conv k=3 stride 1, GELU, causal conv k=3 stride 2, GELU. mel [n_mels, 2m] -> [m, De]."""
        x = np.concatenate([self.conv0_tail, mel], axis=1)  # [n_mels, 2 + 2m]
        self.conv0_tail = x[:, -2:]
        h = gelu(self._conv(x, AUDIO_TENSORS.conv0, AUDIO_TENSORS.conv0_bias, stride=1))  # [De, 2m]
        h = np.concatenate([self.conv1_tail, h], axis=1)  # [De, 1 + 2m]
        self.conv1_tail = h[:, -1:]
        y = gelu(self._conv(h, AUDIO_TENSORS.conv1, AUDIO_TENSORS.conv1_bias, stride=2)).T  # [m, De]
        self._record("conv", y)
        return np.ascontiguousarray(y)

    def _conv(self, x, weight: str, bias: str, stride: int):
        w, b = self.w[weight], self.w[bias]  # [out, in, 3], [out]
        n_out = (x.shape[1] - 3) // stride + 1
        taps = [x[:, k : k + stride * (n_out - 1) + 1 : stride] for k in range(3)]  # 3 × [in, n_out]
        return (sum(w[:, :, k] @ taps[k] for k in range(3)) + b[:, None]).astype(np.float32)

    def encoder(self, x: np.ndarray) -> np.ndarray:
        e = self.config.encoder
        pos = np.arange(self.enc_pos, self.enc_pos + len(x))
        self.enc_pos += len(x)
        cos, sin = rope_tables(pos, e.head_dim, e.rope_theta)
        w = self.w
        for L, cache in zip(encoder_layers(self.config), self.enc_cache, strict=True):
            h = rms_norm(x, w[L.attn_norm], e.norm_eps)
            q = (h @ w[L.wq].T + w[L.wq_bias]).reshape(len(x), e.n_heads, e.head_dim)
            k = (h @ w[L.wk].T).reshape(len(x), e.n_kv_heads, e.head_dim)
            v = (h @ w[L.wv].T + w[L.wv_bias]).reshape(len(x), e.n_kv_heads, e.head_dim)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            cache.extend(k, v, pos)
            a = attention(q, cache.k, cache.v, pos, cache.pos, e.sliding_window)
            cache.trim()
            x = x + a @ w[L.wo].T + w[L.wo_bias]
            h = rms_norm(x, w[L.ffn_norm], e.norm_eps)
            gate = silu(h @ w[L.w1].T) * (h @ w[L.w3].T)
            x = (x + gate @ w[L.w2].T + w[L.w2_bias]).astype(np.float32)
        x = rms_norm(x, w[AUDIO_TENSORS.encoder_norm], e.norm_eps)
        self._record("encoder", x)
        return x

    def adapter(self, x: np.ndarray) -> np.ndarray:
        """[4k, De] -> [k, D]: concatenate each 4 frames, Linear, GELU, Linear."""
        f = self.config.encoder.downsample_factor
        x = x.reshape(len(x) // f, f * x.shape[1])
        x = gelu(x @ self.w[AUDIO_TENSORS.adapter_in].T)
        x = (x @ self.w[AUDIO_TENSORS.adapter_out].T).astype(np.float32)
        self._record("adapter", x)
        return x

    def _forward(self, ids: np.ndarray) -> np.ndarray:
        """Decoder over len(ids) consecutive positions; input = audio embedding + token embedding."""
        d = self.config.decoder
        n = len(ids)
        x = self.audio_embeddings[:n] + self.w[TOKEN_EMBEDDINGS][ids]  # [n, D]
        self.audio_embeddings = self.audio_embeddings[n:]
        pos = np.arange(self.position, self.position + n)
        self.position += n
        cos, sin = rope_tables(pos, d.head_dim, d.rope_theta)
        w = self.w
        for L, cache, ada_scale in zip(decoder_layers(self.config), self.dec_cache, self.ada_scale, strict=True):
            h = rms_norm(x, w[L.attn_norm], d.norm_eps)
            q = (h @ w[L.wq].T).reshape(n, d.n_heads, d.head_dim)
            k = (h @ w[L.wk].T).reshape(n, d.n_kv_heads, d.head_dim)
            v = (h @ w[L.wv].T).reshape(n, d.n_kv_heads, d.head_dim)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            cache.extend(k, v, pos)
            a = attention(q, cache.k, cache.v, pos, cache.pos, d.sliding_window)
            cache.trim()
            x = x + a @ w[L.wo].T
            h = rms_norm(x, w[L.ffn_norm], d.norm_eps) * ada_scale
            gate = silu(h @ w[L.w1].T) * (h @ w[L.w3].T)
            x = (x + gate @ w[L.w2].T).astype(np.float32)
        x = rms_norm(x, w[FINAL_NORM], d.norm_eps)
        logits = x @ self.w[TOKEN_EMBEDDINGS].T  # [n, vocab], tied head
        self._record("logits", logits)
        ids_out = logits.argmax(axis=-1)
        self.last_token = int(ids_out[-1])
        return ids_out

    def _record(self, stage: str, value: np.ndarray) -> None:
        if self.trace is not None:
            self.trace.setdefault(stage, []).append(value.copy())
