"""Audio side on the GPU: log-mel, causal conv stem, the sliding-window encoder and the adapter (MODEL.md
§3-5).

Samples arrive as spans of whole tokens' STFT frames (audio.FrameStream), cut into chunks of up to
`max_tokens` tokens (8 mel frames = 4 encoder frames each); each chunk is one Program.submit. The conv
stem's causal state (2 mel frames, 1 conv0 frame) and the per-layer KV cache, a ring of window + chunk
rows, carry over between chunks, so streaming in any chunking computes the same as one long call.
save_state()/restore_state() copy that carried state to host memory and back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio import LogMel, frames_in_span
from ..checkpoint import AUDIO_TENSORS, ENCODER_LAYERS, encoder_layers
from ..config import ModelConfig
from . import ops
from .formats import F32, Q4_0
from .pipelines import Kernels
from .program import Ahead, Program, empty, read, read_ring, upload, write_ring
from .weights import WeightReader

F32_BYTES = 4


@dataclass(frozen=True)
class EncoderState:
    """A stream's encoder state in host memory (EncoderStage.save_state)."""

    pos: int
    mel_tail: np.ndarray
    conv_tail: np.ndarray
    kv: tuple[tuple[np.ndarray, np.ndarray], ...]  # per layer: keys and values of the frames still visible


class EncoderStage:
    def __init__(self, kernels: Kernels, cfg: ModelConfig, reader: WeightReader, limit: int, max_tokens: int,
                 trace: bool):
        gpu = self.gpu = kernels.gpu
        e, d = cfg.encoder, cfg.decoder
        self.e, self.d = e, d
        self.audio_cfg = cfg.audio
        self.frames_per_token = cfg.audio.mel_frames_per_token // 2  # conv1 halves the mel rate
        if self.frames_per_token != e.downsample_factor:
            raise ValueError("the adapter must group exactly the encoder frames of one token")
        self.max_frames = max_tokens * self.frames_per_token
        self.trace = trace
        t, de = self.max_frames, e.dim
        q_dim, kv_dim = e.n_heads * e.head_dim, e.n_kv_heads * e.head_dim
        self.kv_cap = e.sliding_window + t  # every key a chunk's queries can see, plus the chunk itself
        self.table_rows = t

        # Weights. Conv kernels [out, in, 3] become [out, 3*in] rows so that output frame i reads one
        # contiguous, overlapping run of time-major input rows.
        def conv(i, weight, bias):
            w = reader.f32(weight)
            return (F32.matrix(gpu, w.transpose(0, 2, 1).reshape(w.shape[0], -1), limit, f"conv{i}"),
                    upload(gpu, reader.f32(bias), f"conv{i} bias"))

        a = AUDIO_TENSORS
        self.conv0, self.conv0_b = conv(0, a.conv0, a.conv0_bias)
        self.conv1, self.conv1_b = conv(1, a.conv1, a.conv1_bias)
        self.layers = []
        for i, n in enumerate(encoder_layers(cfg)):
            p = f"{ENCODER_LAYERS}{i}."  # for buffer labels
            qkv_bias = np.concatenate([reader.f32(n.wq_bias), np.zeros(kv_dim, np.float32),
                                       reader.f32(n.wv_bias)])  # wk has no bias
            self.layers.append(dict(
                attn_norm=upload(gpu, reader.f32(n.attn_norm)),
                qkv=Q4_0.matrix(gpu, reader.q4(n.wq, n.wk, n.wv), limit, p + "qkv",
                                row_multiple=2),  # RoPE pairs stay in one chunk
                qkv_b=upload(gpu, qkv_bias),
                wo=Q4_0.matrix(gpu, reader.q4(n.wo), limit, p + "wo"),
                wo_b=upload(gpu, reader.f32(n.wo_bias)),
                ffn_norm=upload(gpu, reader.f32(n.ffn_norm)),
                w13=Q4_0.gate_up(gpu, reader.q4(n.w1), reader.q4(n.w3), limit, p + "w13"),
                w2=Q4_0.matrix(gpu, reader.q4(n.w2), limit, p + "w2"),
                w2_b=upload(gpu, reader.f32(n.w2_bias)),
                k_cache=empty(gpu, self.kv_cap * kv_dim * ops.KV_BYTES, f"enc k{i}"),
                v_cache=empty(gpu, self.kv_cap * kv_dim * ops.KV_BYTES, f"enc v{i}"),
            ))
        self.final_norm = upload(gpu, reader.f32(a.encoder_norm))
        self.proj0 = Q4_0.matrix(gpu, reader.q4(a.adapter_in), limit, "adapter 0")
        self.proj2 = Q4_0.matrix(gpu, reader.q4(a.adapter_out), limit, "adapter 2")

        self.mel_tables = ops.MelTables.upload(gpu, LogMel(cfg.audio, e.n_mels))

        # Inputs and activations for the largest chunk (t encoder frames).
        hop, n_fft = cfg.audio.hop_length, cfg.audio.window_size
        self.samples = empty(gpu, ((2 * t - 1) * hop + n_fft) * F32_BYTES, "samples")  # 2t STFT frames
        self.mel_in = empty(gpu, (2 + 2 * t) * e.n_mels * F32_BYTES, "mel in")  # [2 carried + 2t, n_mels]
        self.mel_tail = empty(gpu, 2 * e.n_mels * F32_BYTES, "mel tail")  # [2, n_mels]
        self.conv_h = empty(gpu, (1 + 2 * t) * de * F32_BYTES, "conv0 out")  # [1 carried + 2t, De]
        self.conv_tail = empty(gpu, de * F32_BYTES, "conv0 tail")  # [De]
        self.x = empty(gpu, t * de * F32_BYTES, "enc x")  # [t, De] residual stream
        self.q = empty(gpu, t * q_dim * F32_BYTES, "enc q")
        self.attn = empty(gpu, t * q_dim * F32_BYTES, "enc attn")
        self.g = empty(gpu, t * e.hidden_dim * F32_BYTES, "enc glu")
        self.out = empty(gpu, t * de * F32_BYTES, "enc out")
        self.conv_trace = empty(gpu, t * de * F32_BYTES, "conv trace") if trace else None
        tokens = t // self.frames_per_token
        self.ad_h = empty(gpu, tokens * d.dim * F32_BYTES, "adapter hidden")  # [tokens, D]
        self.ad_out = empty(gpu, tokens * d.dim * F32_BYTES, "adapter out")
        self.rope = empty(gpu, ops.rope_table_bytes(e.head_dim, self.table_rows), "enc rope")
        self.state = empty(gpu, 16, "enc state")  # u32 pos0 of the chunk
        self.positions = ops.PositionInputs(gpu, self.state, self.rope, e.head_dim, e.rope_theta, self.table_rows)
        self.kernels = kernels
        self.ahead = Ahead(kernels)
        self.reset()

    def build(self, sink) -> None:
        """sink: the decoder, which queues the audio embeddings: reserve_audio(n) before a chunk is
        recorded, audio_regions(src, n) -> copy regions into its ring (which may be replaced when it
        grows; copies bind nothing, so this program never needs rebuilding), commit_audio(n) after."""
        self.sink = sink
        e, d = self.e, self.d
        de, fpt = e.dim, self.frames_per_token
        prog = Program(self.kernels, "encoder", max_rows=self.max_frames)
        row, mel_row = de * F32_BYTES, e.n_mels * F32_BYTES
        prog.copy(lambda m: [(self.mel_tail, 0, self.mel_in, 0, 2 * mel_row), (self.conv_tail, 0, self.conv_h, 0, row)])
        ops.log_mel(prog, self.samples, self.mel_tables, self.mel_in, frames=lambda m: 2 * m, out_row0=2)
        ops.linear(prog, self.conv0, self.mel_in, self.conv_h, k=3 * e.n_mels, x_stride=e.n_mels, out_base=de,
                 bias=self.conv0_b, gelu=True, rows=lambda m: 2 * m, tag="conv0")
        prog.copy(lambda m: [(self.conv_h, 2 * m * row, self.conv_tail, 0, row),
                             (self.mel_in, 2 * m * mel_row, self.mel_tail, 0, 2 * mel_row)])
        ops.linear(prog, self.conv1, self.conv_h, self.x, k=3 * de, x_stride=2 * de, bias=self.conv1_b, gelu=True,
                 tag="conv1")
        if self.trace:
            prog.copy(lambda m: [(self.x, 0, self.conv_trace, 0, m * row)])
        geo = dict(n_heads=e.n_heads, n_kv=e.n_kv_heads, head_dim=e.head_dim, cap=self.kv_cap)
        q_dim = e.n_heads * e.head_dim
        for L in self.layers:
            rope = ops.RopeKV(self.rope, L["k_cache"], L["v_cache"], self.state, table_rows=self.table_rows, **geo)
            ops.linear(prog, L["qkv"], self.x, self.q, k=de, bias=L["qkv_b"], norm=(L["attn_norm"], e.norm_eps),
                     rope=rope, tag="qkv")
            ops.attention(prog, self.q, L["k_cache"], L["v_cache"], self.attn, self.state,
                        window=e.sliding_window, **geo)
            ops.linear(prog, L["wo"], self.attn, self.x, k=q_dim, bias=L["wo_b"], accumulate=True, tag="wo")
            ops.linear(prog, L["w13"], self.x, self.g, k=de, swiglu=True, norm=(L["ffn_norm"], e.norm_eps), tag="w13")
            ops.linear(prog, L["w2"], self.g, self.x, k=e.hidden_dim, bias=L["w2_b"], accumulate=True, tag="w2")
        ops.rmsnorm(prog, self.x, self.final_norm, self.out, d=de, eps=e.norm_eps)
        # [t, De] read as [t/4, 4*De]: each token concatenates its 4 frames.
        ops.linear(prog, self.proj0, self.out, self.ad_h, k=fpt * de, gelu=True, rows=lambda m: m // fpt, tag="adapter")
        ops.linear(prog, self.proj2, self.ad_h, self.ad_out, k=d.dim, rows=lambda m: m // fpt, tag="adapter")
        prog.copy(lambda m: sink.audio_regions(self.ad_out, m // fpt))
        self.program = prog.build()

    def reset(self) -> None:
        self.pos = 0  # encoder frames done
        self.positions.forget()
        self.gpu.queue.write_buffer(self.mel_tail, 0,
                                    np.zeros(2 * self.e.n_mels, np.float32))  # conv0's causal left context
        self.gpu.queue.write_buffer(self.conv_tail, 0, np.zeros(self.e.dim, np.float32))

    def _visible_from(self) -> int:
        """The oldest frame whose key the next chunk's queries still see."""
        return max(0, self.pos - self.e.sliding_window + 1)

    def save_state(self) -> EncoderState:
        """The carried state copied to host memory (costs: GPUEngine.save_state): the conv stem's tails
        and the keys and values the next chunk's queries can see."""
        kv_row = self.e.n_kv_heads * self.e.head_dim * ops.KV_BYTES
        kv = tuple(tuple(read_ring(self.gpu, L[name], kv_row, self.kv_cap, self._visible_from(), self.pos)
                         for name in ("k_cache", "v_cache")) for L in self.layers)
        return EncoderState(self.pos, read(self.gpu, self.mel_tail, np.float32, 2 * self.e.n_mels),
                            read(self.gpu, self.conv_tail, np.float32, self.e.dim), kv)

    def restore_state(self, s: EncoderState) -> None:
        """Continue the stream of a snapshot; nothing recorded or written ahead for another stream is used."""
        self.pos = s.pos
        self.gpu.queue.write_buffer(self.mel_tail, 0, s.mel_tail)
        self.gpu.queue.write_buffer(self.conv_tail, 0, s.conv_tail)
        kv_row = self.e.n_kv_heads * self.e.head_dim * ops.KV_BYTES
        for L, rows in zip(self.layers, s.kv, strict=True):
            for name, data in zip(("k_cache", "v_cache"), rows, strict=True):
                write_ring(self.gpu, L[name], kv_row, self.kv_cap, self._visible_from(), data)
        self.positions.forget()
        self.ahead = Ahead(self.kernels)

    def _recording_key(self, t: int) -> tuple:
        """What a recording of a chunk of t frames depends on: t, and where its copy into the sink's
        queue goes (the program itself never changes)."""
        return t, tuple(self.sink.audio_regions(self.ad_out, t // self.frames_per_token))

    def record_ahead(self) -> None:
        """Record the next chunk of one token now, and write its position inputs, for encode() to submit
        (program.Ahead, ops.PositionInputs): the decoder calls this while the GPU runs a live step."""
        t = self.frames_per_token
        self.program.prepare(t)
        self.ahead.record(self._recording_key(t), lambda: self.program.command_buffer(t))
        self.positions.write_ahead(self.pos, t)

    def encode(self, audio: np.ndarray, trace: dict | None) -> None:
        """audio: float32 samples spanning 8k STFT frames (audio.FrameStream) -> k audio embeddings
        appended to the sink's queue."""
        n_frames = frames_in_span(len(audio), self.audio_cfg)
        hop, n_fft = self.audio_cfg.hop_length, self.audio_cfg.window_size
        step = self.max_frames * 2
        records = {"mel": [], "conv": [], "encoder": [], "adapter": []}
        for start in range(0, n_frames, step):
            t = min(step, n_frames - start) // 2  # encoder frames
            q = self.gpu.queue
            q.write_buffer(self.samples, 0, audio[start * hop: (start + 2 * t - 1) * hop + n_fft])
            self.positions.ensure(self.pos, t)
            n_tok = t // self.frames_per_token
            self.sink.reserve_audio(n_tok)
            self.program.prepare(t)
            recorded = self.ahead.take(self._recording_key(t))
            if recorded is not None:
                q.submit([recorded])
            else:
                self.program.submit(t)
            self.sink.commit_audio(n_tok)
            self.pos += t
            if trace is not None:
                de, n_mels = self.e.dim, self.e.n_mels
                records["mel"].append(read(self.gpu, self.mel_in, np.float32, 2 * t * n_mels, 2 * n_mels * F32_BYTES)
                                      .reshape(2 * t, n_mels))
                records["conv"].append(read(self.gpu, self.conv_trace, np.float32, t * de).reshape(t, de))
                records["encoder"].append(read(self.gpu, self.out, np.float32, t * de).reshape(t, de))
                records["adapter"].append(read(self.gpu, self.ad_out, np.float32, n_tok * self.d.dim)
                                          .reshape(n_tok, -1))
        if trace is not None and n_frames:
            for stage, parts in records.items():
                trace.setdefault(stage, []).append(np.concatenate(parts))
