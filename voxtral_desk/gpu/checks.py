"""Every WGSL kernel run once on small random inputs of odd sizes (not multiples of any workgroup or tile
size, weights split into several row chunks, ring buffers wrapping) and compared with numpy.
Used by the GPU tests and by the packaged app's --self-test."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import model_math as maths
from ..audio import LogMel, synthetic_speech
from ..config import AudioConfig
from ..quant import dequantize_q4_0, quantize_q4_0
from . import ops
from .device import GPUDevice, default_device
from .formats import F32, Q4_0
from .pipelines import Kernels
from .program import Program, read, upload

F32_TOL = 2e-5  # relative to the largest reference value: f32 sums in another order
F16_TOL = 1e-3  # values stored as f16 (the KV cache): rounding to 11 significant bits, 2^-11 = 4.9e-4


@dataclass(frozen=True)
class KernelCheck:
    name: str
    max_abs_err: float
    max_rel_err: float
    passed: bool

    def __str__(self) -> str:
        return (f"{'ok  ' if self.passed else 'FAIL'} {self.name}: "
                f"max abs {self.max_abs_err:.3g}, max rel {self.max_rel_err:.3g}")


def compare(name: str, got: np.ndarray, want: np.ndarray, tol: float = F32_TOL) -> KernelCheck:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return KernelCheck(f"{name} (shape {got.shape} != {want.shape})", float("inf"), float("inf"), False)
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    rel = err / max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-30)
    ok = bool(np.all(np.isfinite(got))) and rel <= tol
    return KernelCheck(name, err, rel, ok)


class _Bench:
    """A device, its kernels and small helpers to run one-off programs."""

    def __init__(self, gpu: GPUDevice, subgroups: bool, runtime_checks: bool = False):
        self.gpu = gpu
        self.kernels = Kernels(gpu, subgroups, runtime_checks)
        self.tag = "subgroup" if self.kernels.subgroups else "workgroup"
        self.rng = np.random.default_rng(1234)

    def program(self, label: str, max_rows: int | None = None) -> Program:
        return Program(self.kernels, label, max_rows)

    def up(self, a) -> object:
        return upload(self.gpu, np.asarray(a))

    def f32(self, buf, shape) -> np.ndarray:
        return read(self.gpu, buf, np.float32, int(np.prod(shape))).reshape(shape)

    def f16(self, buf, shape) -> np.ndarray:
        return read(self.gpu, buf, np.float16, int(np.prod(shape))).reshape(shape).astype(np.float32)

    def q4(self, rows: int, k: int, limit: int):
        """Random Q4_0 weights split into chunks of at most `limit` bytes; (matrix, dequantised f32)."""
        blocks = quantize_q4_0(self.rng.standard_normal((rows, k)).astype(np.float32))
        return Q4_0.matrix(self.gpu, blocks, limit, "check"), dequantize_q4_0(blocks)

    def state(self, pos0: int, out_idx: int = 0):
        return self.up(np.array([pos0, out_idx, 0, 0], dtype=np.uint32))


def _kernel_name(m: int, n: int, k: int) -> str:
    name, constants = Q4_0.kernel(m, n, k)
    return f"{name} ROWS={constants['ROWS']} TEAM={constants['TEAM']}" if "ROWS" in (constants or {}) else name


def _linear_checks(b: _Bench) -> list[KernelCheck]:
    out = []
    # (rows of x, weight rows, rows per chunk, k, x stride), covering each q4 kernel variant (chosen by
    # the rows of x and the shape): 3 chunks of odd row counts, the last partial (and rows past it
    # inside a workgroup); a row of 40 blocks, more than one loop trip with the last partial; 129 blocks
    # (a padded group) in teams wider than a subgroup, for one row of x (teams of 64, matvec_team) and
    # for 5; 41 blocks; two tile rows of x, whole and with k split over workgroups (slices of 3, 3, 3
    # and 2 groups, 2 chunks of weight rows); a wide matrix (chunks of n >= WIDE_RATIO * k) with 4 rows
    # of x in one slice, 17 blocks in two trips.
    for m, n, chunk_rows, k, x_stride, split in ((1, 37, 13, 96, 100, False), (2, 21, 21, 1280, 1284, False),
                                                 (3, 37, 13, 96, 100, False), (4, 3300, 1650, 544, 548, False),
                                                 (1, 37, 13, 4128, 4128, False), (5, 21, 21, 4128, 4128, False),
                                                 (11, 30, 11, 1312, 1312, False), (70, 150, 100, 1312, 1316, False),
                                                 (70, 150, 100, 1312, 1316, True)):
        kname = _kernel_name(m, n, k)
        if split:
            kname += f" + split_sum, k in {Q4_0.k_splits(m, chunk_rows, k)} slices"
        tag = f" ({b.tag})"
        w, wf = b.q4(n, k, limit=chunk_rows * Q4_0.row_bytes(k))
        x = b.rng.standard_normal((m, x_stride)).astype(np.float32)
        bias = b.rng.standard_normal(n).astype(np.float32)
        resid = b.rng.standard_normal((m, n + 3)).astype(np.float32)
        want_plain = x[:, :k] @ wf.T
        xb, ob = b.up(x), b.up(np.zeros((m, n), np.float32))
        p = b.program(kname, m if split else None)
        ops.linear(p, w, xb, ob, k=k, x_stride=x_stride, bias=b.up(bias), gelu=True)
        p.build().run(m)
        out.append(compare(f"{kname} bias+gelu [{m}x{k}]x[{n}x{k}]^T, {len(w.chunks)} chunks{tag}",
                           b.f32(ob, (m, n)), maths.gelu(want_plain + bias)))
        rb = b.up(resid)
        p = b.program(kname, m if split else None)
        ops.linear(p, w, xb, rb, k=k, x_stride=x_stride, out_stride=n + 3, out_base=2, accumulate=True)
        p.build().run(m)
        want = resid.reshape(-1).copy()
        for r in range(m):
            want[2 + r * (n + 3): 2 + r * (n + 3) + n] += want_plain[r]
        out.append(compare(f"{kname} accumulate, strided rows{tag}", b.f32(rb, (m * (n + 3),)), want))
    return out


def _norm_checks(b: _Bench) -> list[KernelCheck]:
    """The RMSNorm folded into the q4 kernels (FLAG_NORM) with a bias: a padded last group (41 or 17
    blocks, whose padding must not add to the sum of squares), 1, 3 (slices of two rows, the second
    partial), 5 and 70 rows of x, and 4 rows of a wide matrix."""
    out = []
    eps = 1e-5
    for m, n, chunk_rows, k in ((1, 45, 20, 1312), (3, 45, 20, 1312), (5, 45, 20, 1312), (70, 45, 20, 1312),
                                (4, 1700, 1700, 544)):
        w, wf = b.q4(n, k, limit=chunk_rows * Q4_0.row_bytes(k))
        gain = (1 + 0.2 * b.rng.standard_normal(k)).astype(np.float32)
        bias = b.rng.standard_normal(n).astype(np.float32)
        x = (3 * b.rng.standard_normal((m, k))).astype(np.float32)
        ob = b.up(np.zeros((m, n), np.float32))
        p = b.program("norm")
        ops.linear(p, w, b.up(x), ob, k=k, bias=b.up(bias), norm=(b.up(gain), eps))
        p.build().run(m)
        out.append(compare(f"{_kernel_name(m, n, k)} folded RMSNorm + bias [{m}x{k}] ({b.tag})", b.f32(ob, (m, n)),
                           maths.rms_norm(x, gain, eps) @ wf.T + bias))
    return out


def _conv_check(b: _Bench) -> KernelCheck:
    """f32_rows as the stride-2 causal conv: overlapping input rows, K = 3*C_in not a multiple of 32
    (two trips of four loads, the last partial), more than one slice of rows."""
    c_in, c_out, t_out = 55, 19, 11
    wconv = b.rng.standard_normal((c_out, c_in, 3)).astype(np.float32)
    bias = b.rng.standard_normal(c_out).astype(np.float32)
    x = b.rng.standard_normal((c_in, 2 * t_out + 1)).astype(np.float32)  # [C_in, frames]
    w = F32.matrix(b.gpu, wconv.transpose(0, 2, 1).reshape(c_out, 3 * c_in), 8 * 3 * c_in * 4, "conv")
    xb, ob = b.up(np.ascontiguousarray(x.T)), b.up(np.zeros((t_out + 1, c_out), np.float32))
    p = b.program("conv")
    ops.linear(p, w, xb, ob, k=3 * c_in, x_stride=2 * c_in, out_base=c_out, bias=b.up(bias), gelu=True)
    p.build().run(t_out)
    taps = [x[:, k: k + 2 * (t_out - 1) + 1: 2] for k in range(3)]
    want = maths.gelu(sum(wconv[:, :, k] @ taps[k] for k in range(3)) + bias[:, None]).T
    return compare(f"f32_rows conv k=3 stride 2, {c_in}->{c_out}, 3 chunks ({b.tag})",
                   b.f32(ob, (t_out + 1, c_out))[1:], want)


def _log_mel_checks(b: _Bench) -> list[KernelCheck]:
    """log_mel.wgsl against audio.LogMel on frames of a speech-like signal and of silence (the floor),
    written after two rows it leaves alone: the real front end's sizes (a DFT of 20 x 20), and a window
    of 2 x 199 samples with 80 mel bands."""
    out = []
    for window, n_mels in ((400, 128), (398, 80)):
        cfg = AudioConfig(sampling_rate=16000, frame_rate=12.5, hop_length=160, window_size=window,
                          global_log_mel_max=1.5, n_left_pad_tokens=32, default_delay_ms=480)
        front, frames, row0 = LogMel(cfg, n_mels), 13, 2
        span = synthetic_speech(((frames - 1) * front.hop + window) / cfg.sampling_rate, cfg.sampling_rate, seed=3)
        span[-window - 2 * front.hop:] = 0.0  # the last 3 frames are silent
        ob = b.up(np.full((row0 + frames, n_mels), 7.0, np.float32))
        p = b.program("log-mel")
        ops.log_mel(p, b.up(span), ops.MelTables.upload(b.gpu, front), ob, frames=lambda m: m, out_row0=row0)
        p.build().run(frames)
        got = b.f32(ob, (row0 + frames, n_mels))
        check = compare(f"log_mel {frames} frames of {window} samples, {n_mels} bands", got[row0:],
                        front.features(span).T)
        if not np.all(got[:row0] == 7.0):
            check = KernelCheck(f"{check.name} (wrote rows before out_row0)",
                                check.max_abs_err, check.max_rel_err, False)
        out.append(check)
    return out


def _rmsnorm_check(b: _Bench) -> KernelCheck:
    m, d = 5, 70
    x = b.rng.standard_normal((m, d)).astype(np.float32)
    w = (1 + 0.1 * b.rng.standard_normal(d)).astype(np.float32)
    ob = b.up(np.zeros((m, d), np.float32))
    p = b.program("rmsnorm")
    ops.rmsnorm(p, b.up(x), b.up(w), ob, d=d, eps=1e-5)
    p.build().run(m)
    return compare(f"rmsnorm [{m}x{d}] ({b.tag})", b.f32(ob, (m, d)), maths.rms_norm(x, w, 1e-5))


def _rope_checks(b: _Bench) -> list[KernelCheck]:
    """The q4 kernels' RoPE epilogue on a fused q|k|v projection with the folded norm and a bias: q
    rotated into its buffer, k rotated and v into the KV ring, positions wrapping both the ring and the
    cos/sin table, weight chunks of whole pairs; one case per kernel variant."""
    out = []
    h, kv, hd, cap, table_rows, pos0, k, eps = 4, 2, 10, 75, 72, 21, 96, 1e-5
    n = (h + 2 * kv) * hd
    blocks = quantize_q4_0(b.rng.standard_normal((n, k)).astype(np.float32))
    w, wf = Q4_0.matrix(b.gpu, blocks, 27 * Q4_0.row_bytes(k), "check", row_multiple=2), dequantize_q4_0(blocks)
    gain = (1 + 0.2 * b.rng.standard_normal(k)).astype(np.float32)
    bias = b.rng.standard_normal(n).astype(np.float32)
    for m in (1, 3, 19, 70):
        x = b.rng.standard_normal((m, k)).astype(np.float32)
        pos = np.arange(pos0, pos0 + m)
        table = b.up(np.zeros((table_rows, hd // 2, 2), np.float32))
        ops.write_rope_table(b.gpu, table, pos0, m, hd, 1e6, table_rows)
        qb = b.up(np.zeros((m, h * hd), np.float32))
        kc, vc = b.up(np.zeros((cap, kv * hd), np.float16)), b.up(np.zeros((cap, kv * hd), np.float16))
        rope = ops.RopeKV(table, kc, vc, b.state(pos0), n_heads=h, n_kv=kv, head_dim=hd, cap=cap, table_rows=table_rows)
        p = b.program("rope")
        ops.linear(p, w, b.up(x), qb, k=k, bias=b.up(bias), norm=(b.up(gain), eps), rope=rope)
        p.build().run(m)
        y = maths.rms_norm(x, gain, eps) @ wf.T + bias
        cos, sin = maths.rope_tables(pos, hd, 1e6)
        q = maths.apply_rope(y[:, : h * hd].reshape(m, h, hd), cos, sin).reshape(m, -1)
        kr = maths.apply_rope(y[:, h * hd: (h + kv) * hd].reshape(m, kv, hd), cos, sin).reshape(m, -1)
        slots = pos % cap
        name = (f"{_kernel_name(m, n, k)} RoPE + KV epilogue, norm, bias, GQA {h}/{kv}, hd {hd}, {m} rows, "
                f"{len(w.chunks)} chunks")
        out.append(compare(f"{name}: q ({b.tag})", b.f32(qb, (m, h * hd)), q))
        kv_got = np.concatenate([b.f16(kc, (cap, kv * hd))[slots], b.f16(vc, (cap, kv * hd))[slots]], 1)
        kv_want = np.concatenate([kr, y[:, (h + kv) * hd:]], 1)
        out.append(compare(f"{name}: f16 k, v ({b.tag})", kv_got, kv_want, F16_TOL))
    return out


def _attention_checks(b: _Bench) -> list[KernelCheck]:
    out = []
    b.kernels.attention_split_from = ops.ATTENTION_SPLIT_FROM  # the splitting of GPUs, on any device
    # (queries, heads, kv heads, head dim, cache rows, window, first query position). One query per
    # workgroup: the ring wrapping; head dim 72; windows of 2048 keys or more split in 8 runs
    # (attention_splits): runs of 1125 keys in 2 rounds of 1024 (online softmax across rounds), the ring
    # wrapping; keys for only 3 of the runs. Blocks of queries: a window shorter than the block's span
    # of keys, a partial last block, unsplit and split with the ring wrapping; head dim 128 in runs of 2
    # rounds of 256. 32 heads are workgroups enough: unsplit, in 3 rounds of 1024; blocks. Keys scored
    # by teams of head_dim / 8 invocations (one query per workgroup, head dim 32, 64 or 128): split,
    # the last trip's keys past the round; unsplit with the ring wrapping, as the live encoder; keys for
    # only 3 of the runs.
    for m, h, kv, hd, cap, window, pos0 in ((3, 4, 2, 20, 13, 9, 14), (2, 3, 1, 72, 150, 140, 200),
                                            (2, 2, 1, 16, 9300, 9000, 9500), (1, 4, 2, 20, 2100, 2048, 2),
                                            (21, 4, 2, 20, 40, 9, 14), (21, 4, 2, 20, 2100, 2048, 2090),
                                            (19, 2, 1, 128, 2200, 2100, 2300), (8, 32, 8, 16, 2200, 2100, 2300),
                                            (40, 32, 8, 16, 70, 30, 25), (1, 8, 2, 128, 2200, 2100, 2300),
                                            (4, 4, 4, 64, 800, 750, 900), (1, 4, 2, 32, 2100, 2048, 2)):
        kc = b.rng.standard_normal((cap, kv * hd)).astype(np.float16)  # the caches hold f16
        vc = b.rng.standard_normal((cap, kv * hd)).astype(np.float16)
        q = b.rng.standard_normal((m, h * hd)).astype(np.float32)
        ob = b.up(np.zeros((m, h * hd), np.float32))
        p = b.program("attention")
        ops.attention(p, b.up(q), b.up(kc), b.up(vc), ob, b.state(pos0), n_heads=h, n_kv=kv, head_dim=hd,
                    cap=cap, window=window)
        p.build().run(m)
        k_pos = np.arange(max(0, pos0 - window + 1), pos0 + m)  # every key some query can see
        want = maths.attention(q.reshape(m, h, hd), kc[k_pos % cap].astype(np.float32).reshape(-1, kv, hd),
                             vc[k_pos % cap].astype(np.float32).reshape(-1, kv, hd), np.arange(pos0, pos0 + m),
                             k_pos, window)
        block, splits = ops.attention_block(m, hd), ops.attention_splits(m, h, window)
        runs = f"{splits} runs of keys + attention_combine" if splits > 1 else "unsplit"
        out.append(compare(f"attention {m} queries ({block['ROWS']} per workgroup, {block['KEY_LANES']} lanes "
                           f"per key, {runs}), GQA {h}/{kv}, hd {hd}, "
                           f"window {window}, ring {cap} ({b.tag})", b.f32(ob, (m, h * hd)), want))
    return out


def _swiglu_checks(b: _Bench) -> list[KernelCheck]:
    """The SwiGLU epilogue of the q4 kernels: a gate|up pair matrix in chunks of whole pairs, the last
    chunk ending inside a workgroup; q4_tiles with more rows of x than one tile row; with the folded norm."""
    out = []
    hidden, k, eps = 37, 96, 1e-5
    blocks = [quantize_q4_0(b.rng.standard_normal((hidden, k)).astype(np.float32)) for _ in range(2)]
    w = Q4_0.gate_up(b.gpu, *blocks, limit=26 * Q4_0.row_bytes(k), label="check")
    w1, w3 = (dequantize_q4_0(x) for x in blocks)
    gain = (1 + 0.2 * b.rng.standard_normal(k)).astype(np.float32)
    for m, norm in ((2, False), (6, False), (19, True), (70, True), (1, True)):
        x = b.rng.standard_normal((m, k)).astype(np.float32)
        ob = b.up(np.zeros((m, hidden), np.float32))
        p = b.program("swiglu")
        ops.linear(p, w, b.up(x), ob, k=k, swiglu=True, norm=(b.up(gain), eps) if norm else None)
        p.build().run(m)
        h = maths.rms_norm(x, gain, eps) if norm else x
        out.append(compare(f"{_kernel_name(m, 2 * hidden, k)} SwiGLU epilogue{' + norm' if norm else ''} "
                           f"[{m}x{k}], {hidden} pairs in {len(w.chunks)} chunks ({b.tag})", b.f32(ob, (m, hidden)),
                           maths.silu(h @ w1.T) * (h @ w3.T)))
    return out


def _embed_check(b: _Bench) -> KernelCheck:
    rows, d, cap, pos0 = 37, 96, 5, 3
    table, tf = b.q4(rows, d, limit=16 * Q4_0.row_bytes(d))
    audio = b.rng.standard_normal((cap, d)).astype(np.float32)
    tok = np.array([0, 36, 17, 16], dtype=np.uint32)
    xb = b.up(np.zeros((len(tok), d), np.float32))
    p = b.program("embed")
    ops.embed(p, table, b.up(tok), b.up(audio), xb, b.state(pos0), d=d, audio_cap=cap)
    p.build().run(len(tok))
    want = audio[(pos0 + np.arange(len(tok))) % cap] + tf[tok]
    return compare(f"embed_q4 table of {rows} rows in 3 chunks, audio ring {cap}", b.f32(xb, (len(tok), d)), want, 0.0)


def _argmax_check(b: _Bench) -> KernelCheck:
    m, vocab, out_idx = 3, 9001, 2  # 3 slices, the last partial
    logits = b.rng.standard_normal((m, vocab)).astype(np.float32)
    logits[1, [4100, 400, 7, 8999]] = 50.0  # ties inside and across slices: the first index wins, as numpy
    logits[2, vocab - 1] = 60.0
    ids, tok = b.up(np.zeros(8, np.uint32)), b.up(np.zeros(4, np.uint32))
    part = b.up(np.zeros(m * ops.argmax_parts(vocab) * 2, np.uint32))
    st = b.state(5, out_idx)
    p = b.program("argmax")
    ops.argmax(p, b.up(logits), part, ids, tok, st, vocab=vocab)
    ops.advance(p, st)
    p.build().run(m)
    got = np.concatenate([read(b.gpu, ids, np.uint32, 8)[out_idx: out_idx + m], read(b.gpu, tok, np.uint32, 1),
                          read(b.gpu, st, np.uint32, 2)])
    want = np.concatenate([logits.argmax(1), logits[-1:].argmax(1), [5 + m, out_idx + m]])
    ok = bool(np.array_equal(got, want))
    max_abs = 0.0 if ok else float(np.max(np.abs(got.astype(np.int64) - want)))
    return KernelCheck(f"argmax_partial + argmax [{m}x{vocab}] in slices, with ties, token feedback, advance",
                       max_abs, 0.0 if ok else 1.0, ok)


def run_kernel_checks(gpu: GPUDevice | None = None, runtime_checks: bool = False) -> list[KernelCheck]:
    """Run every kernel once against numpy; kernels with reductions run in both variants (subgroup
    and workgroup memory) when the device has subgroups. runtime_checks: compiled with naga's index
    clamps and loop bounds (pipelines.shader_module), which the engine leaves out."""
    gpu = gpu or default_device()
    results = []
    for subgroups in ([True, False] if gpu.has_subgroups else [False]):
        b = _Bench(gpu, subgroups, runtime_checks)
        once = subgroups == gpu.has_subgroups  # kernels without reductions run in one variant only
        results += _linear_checks(b)
        results += _norm_checks(b)
        results += _swiglu_checks(b)
        results += _rope_checks(b)
        results.append(_conv_check(b))
        results.append(_rmsnorm_check(b))
        results += _attention_checks(b)
        if once:
            results.append(_embed_check(b))
            results.append(_argmax_check(b))
            results += _log_mel_checks(b)
    return results
