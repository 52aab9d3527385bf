"""Random-weight models of Voxtral Realtime's exact structure, in Mistral's original layout, for tests
and benchmarks: the real weights cannot be downloaded everywhere, so correctness is proven by parity on
these. `tiny` presets keep every structural feature at small sizes; `full` has the real shapes."""
from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import numpy as np

from .checkpoint import TOKEN_EMBEDDINGS, tensor_table, write_safetensors
from .config import ModelConfig
from .convert import Progress, write_gguf, write_manifest
from .fileio import write_atomic, write_json_atomic

# Audio settings of the released tekken.json (MODEL.md §2).
TEKKEN_AUDIO = {
    "sampling_rate": 16000,
    "frame_rate": 12.5,
    "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
    "transcription_delay_ms": 480,
    "streaming_look_ahead_ms": 2.5,
    "streaming_look_back_ms": 52.5,
    "streaming_n_left_pad_tokens": 32,
    "transcription_format": "streaming",
}

# Encoder / decoder sizes per preset; everything else as in the released params.json.
PRESETS = {
    # GQA 4:1, head_dim 16, windows (encoder 40 frames = 0.8 s, decoder 48 tokens) short enough for
    # a few seconds of audio to slide past them.
    "tiny": dict(enc=dict(dim=64, n_layers=2, n_heads=4, head_dim=16, hidden_dim=128, sliding_window=40),
                 dec=dict(dim=64, n_layers=2, n_heads=8, n_kv_heads=2, head_dim=16, hidden_dim=160,
                          sliding_window=48), n_merges=300),
    # Other ratios: encoder heads of 32, decoder GQA 2:1 with head_dim 32, three encoder layers.
    "tiny-wide": dict(enc=dict(dim=96, n_layers=3, n_heads=3, head_dim=32, hidden_dim=192, sliding_window=64),
                      dec=dict(dim=128, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=32, hidden_dim=256,
                               sliding_window=80), n_merges=500),
    "full": dict(enc=dict(dim=1280, n_layers=32, n_heads=32, head_dim=64, hidden_dim=5120, sliding_window=750),
                 dec=dict(dim=3072, n_layers=26, n_heads=32, n_kv_heads=8, head_dim=128, hidden_dim=9216,
                          sliding_window=8192), n_merges=None),
}

SPECIAL_NAMES = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                 "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
                 "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                 "[TOOL_CONTENT]", "[ARGS]", "[CALL_ID]", "[THINK]", "[/THINK]", "[AUDIO]", "[BEGIN_AUDIO]",
                 "[TRANSCRIBE]", "[NEXT_AUDIO_TEXT]", "[REPEAT_AUDIO_TEXT]", "[MODEL_SETTINGS]",
                 "[/MODEL_SETTINGS]", "<SPECIAL_31>", "[STREAMING_PAD]", "[STREAMING_WORD]"]
N_SPECIAL = 1000
TEKKEN_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?"
                  r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
BPE_CORPUS = ("the quick brown fox jumps over the lazy dog. she sells sea shells by the sea shore. "
              "hello world, this is a test of live dictation on your own computer. speech becomes text "
              "while you are still talking, and nothing leaves the machine. one two three four five six "
              "seven eight nine ten. thank you for listening and have a nice day.")


def params_for(preset: str, vocab_size: int) -> dict:
    p = PRESETS[preset]
    enc = {"audio_encoding_args": {"sampling_rate": 16000, "frame_rate": 12.5, "num_mel_bins": 128,
                                   "hop_length": 160, "window_size": 400, "chunk_length_s": None,
                                   "global_log_mel_max": 1.5, "transcription_format": "streaming"},
           **p["enc"], "vocab_size": vocab_size, "n_kv_heads": p["enc"]["n_heads"], "use_biases": True,
           "use_cache": False, "rope_theta": 1e6, "causal": True, "norm_eps": 1e-5, "pos_embed": "rope",
           "max_source_positions": None, "ffn_type": "swiglu", "norm_type": "rms_norm"}
    return {**p["dec"], "use_biases": False, "causal": True, "rope_theta": 1e6, "norm_eps": 1e-5,
            "vocab_size": vocab_size, "model_parallel": 1, "tied_embeddings": True, "model_max_length": 131072,
            "ada_rms_norm_t_cond": True, "ada_rms_norm_t_cond_dim": 32,
            "multimodal": {"whisper_model_args": {"encoder_args": enc, "downsample_args": {"downsample_factor": 4}}}}


def byte_pair_vocab(n_merges: int) -> list[bytes]:
    """256 byte tokens, then merges learnt from a small English text, so real words get real tokens."""
    vocab = [bytes([i]) for i in range(256)]
    words = [[bytes([c]) for c in (" " + w).encode()] for w in BPE_CORPUS.split()]
    for _ in range(n_merges):
        pairs = Counter((a, b) for w in words for a, b in zip(w, w[1:], strict=False))
        if not pairs:
            break
        (a, b), _count = pairs.most_common(1)[0]
        vocab.append(a + b)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b:
                    w[i : i + 2] = [a + b]
                i += 1
    return vocab


def tekken_json(text_tokens: list[bytes]) -> dict:
    specials = [{"rank": i, "token_str": s, "is_control": True} for i, s in enumerate(SPECIAL_NAMES)]
    vocab = [{"rank": i, "token_bytes": base64.b64encode(t).decode(), "token_str": t.decode("utf-8", "replace")}
             for i, t in enumerate(text_tokens)]
    return {"config": {"pattern": TEKKEN_PATTERN, "num_vocab_tokens": len(vocab),
                       "default_vocab_size": N_SPECIAL + len(vocab), "default_num_special_tokens": N_SPECIAL,
                       "version": "v13"},
            "vocab": vocab, "special_tokens": specials, "audio": TEKKEN_AUDIO}


def random_tensor(rng: np.random.Generator, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Norm weights near 1, biases small, matrices scaled by 1/sqrt(fan-in) so activations stay O(1)
    through the layers and the audio, not the embedding table, decides the output."""
    if name.endswith("norm.weight"):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if name.endswith(".bias"):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)


def random_q4_0(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random Q4_0 blocks drawn directly (scales for a 1/sqrt(fan-in) spread): the full model in seconds."""
    rows, k = shape
    n_blocks = rows * k // 32
    out = np.empty((n_blocks, 18), dtype=np.uint8)
    d = (rng.uniform(0.5, 1.5, n_blocks) / (4.6 * np.sqrt(k))).astype(np.float16)
    out[:, :2] = d.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = rng.integers(0, 256, (n_blocks, 16), dtype=np.uint8)
    return out.reshape(rows, -1)


def make_test_model(out: Path, preset: str, seed: int, dtype: str = "BF16",
                    progress: Progress | None = None) -> list[Path]:
    """tiny presets: consolidated.safetensors + params.json + tekken.json (original layout).
    full: a Q4_0 GGUF written directly (random 4-bit blocks) + tekken.json + manifest."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_merges = PRESETS[preset]["n_merges"]
    text_tokens = byte_pair_vocab(n_merges) if n_merges is not None else None
    if text_tokens is None:  # full size: a byte vocabulary padded with unique filler pieces
        text_tokens = byte_pair_vocab(0) + [f"<tok{i}>".encode() for i in range(131072 - N_SPECIAL - 256)]
    tekken = tekken_json(text_tokens)
    params = params_for(preset, tekken["config"]["default_vocab_size"])
    write_json_atomic(out / "params.json", params)
    write_atomic(out / "tekken.json", json.dumps(tekken) + "\n")
    cfg = ModelConfig.from_documents(params, TEKKEN_AUDIO)
    if preset == "full":
        def tensors():
            for spec in tensor_table(cfg):
                yield spec, random_q4_0(rng, spec.shape) if spec.quantize else random_tensor(rng, spec.shape, spec.name)
        files = write_gguf(out / "voxtral-full-random.gguf", cfg, tensors(), f"random-full-seed{seed}", None, progress)
        files.append(out / "tekken.json")
        return files + [write_manifest(out, files, f"random-full-seed{seed}")]
    weights = {spec.name: random_tensor(rng, spec.shape, spec.name) for spec in tensor_table(cfg)}
    # Shrink the rows of special tokens the model never emits, so that random models write text (and
    # PAD / WORD / EOS) rather than mostly unused specials.
    emb = weights[TOKEN_EMBEDDINGS]
    keep = [SPECIAL_NAMES.index(n) for n in ("</s>", "[STREAMING_PAD]", "[STREAMING_WORD]")]
    scale = np.full((N_SPECIAL, 1), 0.3, dtype=np.float32)
    scale[keep] = 1.0
    emb[:N_SPECIAL] *= scale
    write_safetensors(out / "consolidated.safetensors", weights, dtype)
    return [out / "consolidated.safetensors", out / "params.json", out / "tekken.json"]
