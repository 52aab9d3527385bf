"""Text side on the GPU: the decoder with GQA attention, ada-norm and the tied Q4_0 head (MODEL.md §6-7).

One program, `step`, runs m positions at once (its matrix kernels are chosen by m, WeightFormat.kernel):
the prompt positions, whose input tokens are known, several at a time, and a generated position alone.
A generated position chains entirely on the GPU: argmax writes the token id into `tok`, the next step's
embedding lookup reads it, and the `advance` kernel moves the GPU-side position counter (`state`) on.
decode(n) records its n steps into a few submits and reads all n ids back once, through a persistent
staging buffer. The RMSNorms before the attention, the feed-forward and the head are folded into the
matrix kernels that follow them (ops.linear(norm=...)); the ada-norm scale (1 + s_j) is folded into
each layer's feed-forward norm gain when the delay is set.

Generated positions of a decode(n) with n > 1 (file mode, catching up) are decoded speculatively: the
model mostly repeats its last token (runs of STREAMING_PAD), so `step` runs k positions at once with
the true input in row 0 and that input guessed again for rows 1..k-1, and keeps the rows whose guessed
inputs turned out right: the ids are exactly those of one-position-at-a-time greedy decoding. Live mode
(decode(1)) keeps the chained single step, and records the next one (and, through the engine, the
encoder's next chunk) and writes its position inputs while the GPU runs it: the next live step
submits without recording or writing first.

save_state() copies a stream's state to host memory (the valid rows of the rings only) and
restore_state() writes it back, at the ring sizes of the moment it was saved.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import wgpu

from ..checkpoint import DECODER_LAYERS, FINAL_NORM, TOKEN_EMBEDDINGS, decoder_layers
from ..config import ModelConfig
from ..model_math import time_conditioning
from . import ops
from .formats import Q4_0
from .pipelines import Kernels
from .program import Ahead, Program, empty, map_read, read, read_ring, ring_runs, upload, write_ring
from .weights import WeightReader

F32_BYTES = 4
IDS_CAP = 4096  # positions decoded between two readbacks
INITIAL_KV_ROWS = 512  # the decoder KV ring starts small and doubles up to window + batch
INITIAL_AUDIO_ROWS = 256
# Positions per speculative forward at most: wider forwards pay off only while the guesses hold, and real
# speech breaks them at every word (docs/SPEED.md, third session).
SPEC_MAX = 16


def _map_size(n_ids: int) -> int:
    return -(-n_ids * 4 // 8) * 8  # mapped ranges are multiples of 8 bytes


@dataclass(frozen=True)
class DecoderState:
    """A stream's decoder state in host memory (DecoderStage.save_state)."""

    prompt: tuple[int, ...]
    position: int
    last_id: int
    spec_k: int
    tok0: np.ndarray  # tok[0]: the input of the next generated position, [1] u32
    kv_cap: int
    kv: tuple[tuple[np.ndarray, np.ndarray], ...]  # per layer: keys and values of the visible positions
    audio_cap: int
    audio_written: int
    audio: np.ndarray  # the audio embeddings of positions position..audio_written


class AudioRing:
    """Audio embeddings [cap, D] made by the encoder and not yet decoded; position p in row p % cap."""

    def __init__(self, gpu, dim: int, cap: int):
        self.gpu, self.row = gpu, dim * F32_BYTES
        self.cap = cap
        self.buffer = empty(gpu, cap * self.row, "audio ring")
        self.written = 0  # positions encoded so far

    def reserve(self, consumed: int, n: int) -> bool:
        """Make room for n more rows; True when the ring had to grow into a new buffer."""
        need = self.written + n - consumed
        if need <= self.cap:
            return False
        cap = max(need, 2 * self.cap)
        new = empty(self.gpu, cap * self.row, "audio ring")
        encoder = self.gpu.device.create_command_encoder()
        for p, count in ring_runs(consumed, self.written, self.cap, cap):
            encoder.copy_buffer_to_buffer(self.buffer, p % self.cap * self.row, new, p % cap * self.row,
                                          count * self.row)
        self.gpu.queue.submit([encoder.finish()])
        self.buffer, self.cap = new, cap
        return True

    def regions(self, src, n: int) -> list[tuple]:
        """Copies appending rows 0..n of src at the next positions."""
        return [(src, (p - self.written) * self.row, self.buffer, p % self.cap * self.row, count * self.row)
                for p, count in ring_runs(self.written, self.written + n, self.cap)]


class DecoderStage:
    def __init__(self, kernels: Kernels, cfg: ModelConfig, reader: WeightReader, limit: int, max_batch: int,
                 steps_per_submit: int):
        gpu = self.gpu = kernels.gpu
        self.kernels = kernels
        d = self.d = cfg.decoder
        self.max_batch, self.steps_per_submit = max_batch, steps_per_submit
        q_dim, kv_dim = d.n_heads * d.head_dim, d.n_kv_heads * d.head_dim
        self.kv_row = kv_dim * ops.KV_BYTES
        self.kv_full = d.sliding_window + max_batch  # window + one batch of new keys
        self.kv_cap = min(self.kv_full, INITIAL_KV_ROWS)
        self.table_rows = max(max_batch, steps_per_submit)  # rope rows: the positions of one submit

        self.table = Q4_0.matrix(gpu, reader.q4(TOKEN_EMBEDDINGS), limit, "token embeddings")  # [V, D], tied head
        self.layers = []
        self.ffn_norms = []  # [D] each, on the CPU: combined with the ada scale in set_delay
        for j, n in enumerate(decoder_layers(cfg)):
            p = f"{DECODER_LAYERS}{j}."  # for buffer labels
            self.ffn_norms.append(reader.f32(n.ffn_norm))
            self.layers.append(dict(
                attn_norm=upload(gpu, reader.f32(n.attn_norm)),
                qkv=Q4_0.matrix(gpu, reader.q4(n.wq, n.wk, n.wv), limit, p + "qkv",
                                row_multiple=2),  # RoPE pairs stay in one chunk
                wo=Q4_0.matrix(gpu, reader.q4(n.wo), limit, p + "wo"),
                ffn_gain=empty(gpu, d.dim * F32_BYTES, p + "ffn gain"),  # ffn_norm * (1 + s_j), set per delay
                w13=Q4_0.gate_up(gpu, reader.q4(n.w1), reader.q4(n.w3), limit, p + "w13"),
                w2=Q4_0.matrix(gpu, reader.q4(n.w2), limit, p + "w2"),
                ada_down=Q4_0.matrix(gpu, reader.q4(n.ada_down), limit, p + "ada down"),
                ada_up=Q4_0.matrix(gpu, reader.q4(n.ada_up), limit, p + "ada up"),
                ada_mid=empty(gpu, d.ada_dim * F32_BYTES, p + "ada mid"),
                k_cache=self._kv_buffer(j, "k_cache", self.kv_cap),
                v_cache=self._kv_buffer(j, "v_cache", self.kv_cap),
            ))
        self.final_norm = upload(gpu, reader.f32(FINAL_NORM))

        b = max_batch
        self.x = empty(gpu, b * d.dim * F32_BYTES, "dec x")  # [b, D] residual stream
        self.q = empty(gpu, b * q_dim * F32_BYTES, "dec q")
        self.attn = empty(gpu, b * q_dim * F32_BYTES, "dec attn")
        self.g = empty(gpu, b * d.hidden_dim * F32_BYTES, "dec glu")
        self.logits = empty(gpu, b * d.vocab_size * F32_BYTES, "logits")  # [b, V]
        if self.logits.size > gpu.max_binding_size:
            raise ValueError(f"max_batch {b} makes the logits larger than the device's binding limit")
        self.argmax_part = empty(gpu, b * ops.argmax_parts(d.vocab_size) * 8, "argmax slices")
        self.tok = empty(gpu, b * 4, "input ids")  # [b] u32; tok[0] is fed back by argmax
        self.ids = empty(gpu, IDS_CAP * 4, "output ids")  # [IDS_CAP] u32
        self.staging = gpu.device.create_buffer(label="ids staging", size=_map_size(IDS_CAP),
                                                usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)
        self.state = empty(gpu, 16, "dec state")  # u32 [pos0, out_idx]
        self.rope = empty(gpu, ops.rope_table_bytes(d.head_dim, self.table_rows), "dec rope")
        self.positions = ops.PositionInputs(gpu, self.state, self.rope, d.head_dim, d.rope_theta, self.table_rows)
        self.t_cond = empty(gpu, d.dim * F32_BYTES, "t_cond")
        self.ada = empty(gpu, d.n_layers * d.dim * F32_BYTES, "ada scales")  # [L, D]: s_j, applied as (1 + s_j)
        self.audio = AudioRing(gpu, d.dim, INITIAL_AUDIO_ROWS)

        ada = Program(kernels, "ada scales")
        for j, L in enumerate(self.layers):
            ops.linear(ada, L["ada_down"], self.t_cond, L["ada_mid"], k=d.dim, gelu=True, tag="ada")
            ops.linear(ada, L["ada_up"], L["ada_mid"], self.ada, k=d.ada_dim, out_base=j * d.dim, tag="ada")
        self.ada_program = ada.build()
        self._build()
        self.prompt: list[int] = []
        self.position = 0
        self.last_id = 0  # the id decoded last: the input of the next position once past the prompt
        self.spec_max = min(SPEC_MAX, max_batch, IDS_CAP)
        self.spec_k = self.spec_max  # positions of the next speculative forward (adapted as guesses hit or miss)
        self.ahead = Ahead(kernels)  # the next live step, recorded during this one

    def _build(self) -> None:
        """(Re)create the step program: at load, and when the KV or audio ring grows."""
        d = self.d
        q_dim = d.n_heads * d.head_dim
        prog = Program(self.kernels, "decoder step", max_rows=self.max_batch)
        ops.embed(prog, self.table, self.tok, self.audio.buffer, self.x, self.state, d=d.dim, audio_cap=self.audio.cap)
        geo = dict(n_heads=d.n_heads, n_kv=d.n_kv_heads, head_dim=d.head_dim, cap=self.kv_cap)
        for L in self.layers:
            rope = ops.RopeKV(self.rope, L["k_cache"], L["v_cache"], self.state, table_rows=self.table_rows, **geo)
            ops.linear(prog, L["qkv"], self.x, self.q, k=d.dim, norm=(L["attn_norm"], d.norm_eps), rope=rope, tag="qkv")
            ops.attention(prog, self.q, L["k_cache"], L["v_cache"], self.attn, self.state,
                        window=d.sliding_window, **geo)
            ops.linear(prog, L["wo"], self.attn, self.x, k=q_dim, accumulate=True, tag="wo")
            ops.linear(prog, L["w13"], self.x, self.g, k=d.dim, swiglu=True, norm=(L["ffn_gain"], d.norm_eps),
                       tag="w13")
            ops.linear(prog, L["w2"], self.g, self.x, k=d.hidden_dim, accumulate=True, tag="w2")
        ops.linear(prog, self.table, self.x, self.logits, k=d.dim, norm=(self.final_norm, d.norm_eps), tag="head")
        ops.argmax(prog, self.logits, self.argmax_part, self.ids, self.tok, self.state, vocab=d.vocab_size)
        ops.advance(prog, self.state)
        self.step = prog.build()

    # --- state -------------------------------------------------------------------------------------

    def set_delay(self, n_delay: int) -> None:
        """Precompute the ada-norm scales s_j for this delay (on the GPU, from the Q4 ada weights) and fold
        them into the feed-forward norm gains: ffn_norm * (1 + s_j)."""
        self.gpu.queue.write_buffer(self.t_cond, 0, time_conditioning(n_delay, self.d.dim))
        self.ada_program.run(1)
        scales = read(self.gpu, self.ada, np.float32, self.d.n_layers * self.d.dim).reshape(self.d.n_layers, -1)
        for L, w, s in zip(self.layers, self.ffn_norms, scales, strict=True):
            self.gpu.queue.write_buffer(L["ffn_gain"], 0, w * (1.0 + s))

    def reset(self, prompt: list[int]) -> None:
        self.prompt = list(prompt)
        self.position = 0
        self.positions.forget()
        self.audio.written = 0
        self.spec_k = self.spec_max

    @property
    def audio_tokens_ready(self) -> int:
        return self.audio.written - self.position

    # The encoder's sink: it appends audio embeddings through these.
    def reserve_audio(self, n: int) -> None:
        if self.audio.reserve(self.position, n):
            self._build()

    def audio_regions(self, src, n: int) -> list[tuple]:
        return self.audio.regions(src, n)

    def commit_audio(self, n: int) -> None:
        self.audio.written += n

    def _kv_buffer(self, layer: int, name: str, cap: int) -> object:
        return empty(self.gpu, cap * self.kv_row, f"dec {name[0]}{layer}")

    def _visible_from(self, position: int) -> int:
        """The oldest key a query at `position` or later still sees."""
        return max(0, position - self.d.sliding_window + 1)

    def save_state(self) -> DecoderState:
        """The stream's state copied to host memory (costs: GPUEngine.save_state): the keys and values its
        next positions can see, the audio embeddings queued and tok[0]."""
        gpu, lo = self.gpu, self._visible_from(self.position)
        kv = tuple(tuple(read_ring(gpu, L[name], self.kv_row, self.kv_cap, lo, self.position)
                         for name in ("k_cache", "v_cache")) for L in self.layers)
        audio = read_ring(gpu, self.audio.buffer, self.audio.row, self.audio.cap, self.position, self.audio.written)
        return DecoderState(tuple(self.prompt), self.position, self.last_id, self.spec_k,
                            read(gpu, self.tok, np.uint32, 1), self.kv_cap, kv, self.audio.cap, self.audio.written,
                            audio)

    def restore_state(self, s: DecoderState) -> None:
        """Continue the stream of a snapshot: the rings at its sizes (recreated, and the step program
        rebuilt, if they grew or shrank since), its rows written back, nothing recorded or written ahead
        for another stream left to use."""
        rebuild = s.kv_cap != self.kv_cap or s.audio_cap != self.audio.cap
        if s.kv_cap != self.kv_cap:
            for j, L in enumerate(self.layers):
                for name in ("k_cache", "v_cache"):
                    L[name] = self._kv_buffer(j, name, s.kv_cap)
            self.kv_cap = s.kv_cap
        if s.audio_cap != self.audio.cap:
            self.audio = AudioRing(self.gpu, self.d.dim, s.audio_cap)
        if rebuild:
            self._build()
        lo = self._visible_from(s.position)
        for L, rows in zip(self.layers, s.kv, strict=True):
            for name, data in zip(("k_cache", "v_cache"), rows, strict=True):
                write_ring(self.gpu, L[name], self.kv_row, self.kv_cap, lo, data)
        write_ring(self.gpu, self.audio.buffer, self.audio.row, self.audio.cap, s.position, s.audio)
        self.audio.written = s.audio_written
        self.gpu.queue.write_buffer(self.tok, 0, s.tok0)
        self.prompt, self.position, self.last_id, self.spec_k = list(s.prompt), s.position, s.last_id, s.spec_k
        self.positions.forget()
        self.ahead = Ahead(self.kernels)

    def _ensure_kv(self, positions: int) -> None:
        """Grow the KV rings (by doubling, up to window + batch) to hold `positions` positions."""
        need = min(self.kv_full, positions)
        if need <= self.kv_cap:
            return
        cap = min(self.kv_full, max(need, 2 * self.kv_cap))
        lo = self._visible_from(self.position)
        encoder = self.gpu.device.create_command_encoder()
        for j, L in enumerate(self.layers):
            for name in ("k_cache", "v_cache"):
                new = self._kv_buffer(j, name, cap)
                for p, count in ring_runs(lo, self.position, self.kv_cap, cap):
                    encoder.copy_buffer_to_buffer(L[name], p % self.kv_cap * self.kv_row, new,
                                                  p % cap * self.kv_row, count * self.kv_row)
                L[name] = new
        self.gpu.queue.submit([encoder.finish()])
        self.kv_cap = cap
        self._build()

    # --- decoding ----------------------------------------------------------------------------------

    def decode(self, n: int, trace: dict | None, while_waiting: Callable[[], None] | None = None) -> np.ndarray:
        """The ids of the next n positions. while_waiting: work for the CPU while the GPU runs a live step
        (decode(1)), before its id is read back (the engine records the encoder's next chunk there)."""
        if n > self.audio_tokens_ready:
            raise ValueError(f"decode({n}) but only {self.audio_tokens_ready} audio tokens are ready")
        out = np.empty(n, dtype=np.int64)
        self._ensure_kv(self.position + n)
        done = 0
        while done < n:
            left = n - done
            if self.position < len(self.prompt):  # known inputs: batched forwards
                ids = self._round(min(left, len(self.prompt) - self.position, IDS_CAP), trace)
            elif n == 1 and trace is None:
                ids = self._live_step(while_waiting)
            elif n == 1 or self.spec_k == 1:
                # Live mode with a trace, or guesses keep missing (the model is not repeating): steps
                # chained on the GPU, one submit and one readback, then speculation is tried again with 2
                # positions.
                ids = self._round(min(left, self.steps_per_submit, IDS_CAP), trace)
                self.spec_k = max(self.spec_k, 2)  # (live mode leaves it as it was)
            else:
                k = min(self.spec_k, left)
                ids = self._speculate(k, trace)
                # Grow after a fully accepted forward; after a miss, shrink to what was accepted.
                self.spec_k = min(self.spec_max, 2 * k) if len(ids) == k else len(ids)
            out[done: done + len(ids)] = ids
            done += len(ids)
            self.last_id = int(ids[-1])
        return out

    def _speculate(self, k: int, trace: dict | None) -> np.ndarray:
        """Positions p..p+k-1 in one batched forward: row 0 gets the true input (last_id), rows 1..k-1 guess
        that it repeats. Row i >= 1 is right iff rows 0..i-1 all produced the guess; returns the ids of the
        rows up to the first wrong one (at least row 0). Rows past it wrote KV slots that later positions
        overwrite (attention sees only positions <= the query's) and read audio rows that stay queued."""
        q = self.gpu.queue
        d = self.d
        guess = self.last_id
        self.positions.ensure(self.position, k)
        q.write_buffer(self.tok, 0, np.full(k, guess, dtype=np.uint32))
        self.step.prepare(k)
        self.step.submit(k, lambda encoder: encoder.copy_buffer_to_buffer(self.ids, 0, self.staging, 0, _map_size(k)))
        ids = self._read_ids(k)
        m = 1
        while m < k and ids[m - 1] == guess:
            m += 1
        if m < k:  # argmax fed the last (rejected) row's id into tok[0]; chained steps read it next
            q.write_buffer(self.tok, 0, np.array([ids[m - 1]], dtype=np.uint32))
        if trace is not None:  # accepted rows only, one entry per position as one-at-a-time decoding gives
            logits = read(self.gpu, self.logits, np.float32, m * d.vocab_size).reshape(m, 1, d.vocab_size)
            trace.setdefault("logits", []).extend(logits)
        self.position += m
        return ids[:m]

    def _live_step(self, while_waiting: Callable[[], None] | None) -> np.ndarray:
        """One generated position, from a command buffer recorded during the previous live step when the
        step program is still the same (program.Ahead), with its inputs written then too
        (ops.PositionInputs); the next step's are recorded and written while the GPU runs this one."""
        self.positions.ensure(self.position, 1)
        self.step.prepare(1)
        recorded = self.ahead.take(self.step)
        self.gpu.queue.submit([recorded if recorded is not None else self._live_step_buffer()])
        self.position += 1
        self.ahead.record(self.step, self._live_step_buffer)
        self.positions.write_ahead(self.position, 1)
        if while_waiting is not None:
            while_waiting()
        return self._read_ids(1)

    def _live_step_buffer(self) -> object:
        return self.step.command_buffer(
            1, lambda encoder: encoder.copy_buffer_to_buffer(self.ids, 0, self.staging, 0, _map_size(1)))

    def _round(self, n: int, trace: dict | None) -> np.ndarray:
        """n positions (n <= IDS_CAP) in few submits, then one readback of their ids."""
        q = self.gpu.queue
        d = self.d
        # The state once for the round (its ids land at out_idx 0, 1, ...), RoPE rows per submit.
        self.positions.forget()
        q.write_buffer(self.state, 0, np.array([self.position, 0], dtype=np.uint32))
        nbytes = _map_size(n)
        done = 0
        while done < n:
            encoder = self.gpu.device.create_command_encoder()
            batched = self.position < len(self.prompt)
            if batched:  # known input tokens: one batched forward
                k = min(n - done, len(self.prompt) - self.position, self.max_batch)
                q.write_buffer(self.tok, 0, np.array(self.prompt[self.position: self.position + k], dtype=np.uint32))
                ops.write_rope_table(self.gpu, self.rope, self.position, k, d.head_dim, d.rope_theta, self.table_rows)
                self.step.prepare(k)
                self.step.record(encoder, k)
            else:  # generated tokens chain on the GPU; with a trace, one step per submit to read logits
                k = min(n - done, 1 if trace is not None else self.steps_per_submit)
                ops.write_rope_table(self.gpu, self.rope, self.position, k, d.head_dim, d.rope_theta, self.table_rows)
                self.step.prepare(1)
                for _ in range(k):
                    self.step.record(encoder, 1)
            done += k
            self.position += k
            if done == n:
                encoder.copy_buffer_to_buffer(self.ids, 0, self.staging, 0, nbytes)
            q.submit([encoder.finish()])
            if trace is not None:
                rows = k if batched else 1
                trace.setdefault("logits", []).append(
                    read(self.gpu, self.logits, np.float32, rows * d.vocab_size).reshape(rows, d.vocab_size))
        return self._read_ids(n)

    def _read_ids(self, n: int) -> np.ndarray:
        """The n ids the last submit copied into the staging buffer."""
        return map_read(self.gpu, self.staging, _map_size(n)).view(np.uint32)[:n].astype(np.int64)
