"""Weight formats (gpu/formats.py): Q4_0's GPU layout dequantises to exactly quant.dequantize_q4_0's
weights, matrices are chunked by rows under the binding limit with their buffers holding exactly those
rows, and a product takes the kernel its weight's format chooses."""
from __future__ import annotations

import numpy as np
import pytest

from voxtral_desk.gpu import ops
from voxtral_desk.gpu.formats import F32, Q4_0, Q4_0Format, row_ranges
from voxtral_desk.gpu.pipelines import Kernels
from voxtral_desk.gpu.program import Program, read, upload
from voxtral_desk.quant import BLOCK_BYTES, dequantize_q4_0, quantize_q4_0

pytestmark = pytest.mark.gpu


def dequantize_gpu_layout(words: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Q4_0Format.repack's arrays back to weights [rows, padded k], read as q4_nibbles.wgsl reads them:
    word c of block t of group g at words[row, g, c, t], that block's scale at scales[row, g, t]; each
    block's 16 bytes hold weights 0-15 in their low nibbles and 16-31 in their high ones, as q + 8."""
    rows, groups = scales.shape[:2]
    q = np.ascontiguousarray(words.transpose(0, 1, 3, 2)).view(np.uint8).reshape(rows, groups * 4, 16)
    values = np.concatenate([q & 0x0F, q >> 4], axis=2).astype(np.float32) - 8.0
    return (values * scales.reshape(rows, groups * 4, 1).astype(np.float32)).reshape(rows, -1)


def random_blocks(rng, rows: int, k: int) -> np.ndarray:
    """Raw Q4_0 blocks of any nibbles and finite scales of both signs (not only what quantize_q4_0 makes)."""
    blocks = rng.integers(0, 256, (rows, k // 32, BLOCK_BYTES), dtype=np.uint8)
    blocks[:, :, :2] = rng.standard_normal((rows, k // 32)).astype(np.float16).view(np.uint8).reshape(rows, -1, 2)
    return blocks.reshape(rows, -1)


@pytest.mark.parametrize("k", [32, 96, 128, 1312, 4128])  # 1, 3 (padded to 4), 4, 41 and 129 blocks per row
@pytest.mark.parametrize("source", ["quantized", "raw"])
def test_q4_0_repack_dequantises_to_the_file_weights(k, source):
    rng = np.random.default_rng(k)
    rows = 7
    if source == "quantized":
        blocks = quantize_q4_0(rng.standard_normal((rows, k)).astype(np.float32))
    else:
        blocks = random_blocks(rng, rows, k)
    got_k, (words, scales) = Q4_0.repack(blocks)
    assert got_k == k
    assert words.dtype == np.uint32 and scales.dtype == np.float16
    assert words.shape == (rows, -(-k // 128), 4, 4) and scales.shape == (rows, -(-k // 128), 4)
    assert words[0].nbytes == Q4_0.row_bytes(k)  # the larger buffer's row, which the binding limit bounds
    weights = dequantize_gpu_layout(words, scales)
    np.testing.assert_array_equal(weights[:, :k], dequantize_q4_0(blocks))
    assert not weights[:, k:].any()  # padding blocks are exactly zero
    assert Q4_0.stream_bytes(k) == blocks.shape[1]


@pytest.mark.parametrize("rows, row_bytes, limit, multiple, want", [
    (10, 100, 1000, 1, [(0, 10)]),
    (10, 100, 350, 1, [(0, 3), (3, 6), (6, 9), (9, 10)]),
    (10, 100, 350, 2, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]),
    (9, 64, 64, 1, [(r, r + 1) for r in range(9)]),
])
def test_row_ranges(rows, row_bytes, limit, multiple, want):
    assert row_ranges(rows, row_bytes, limit, multiple) == want


def test_a_limit_below_one_row_is_refused():
    with pytest.raises(ValueError, match="binding limit 150 B is smaller than 2 weight row"):
        row_ranges(10, 100, 150, 2)


def test_q4_0_matrix_chunks_hold_their_rows(gpu):
    rng = np.random.default_rng(1)
    rows, k = 23, 1312
    blocks = random_blocks(rng, rows, k)
    limit = 5 * Q4_0.row_bytes(k) + 17  # 5 rows fit; chunks of whole pairs: 4
    w = Q4_0.matrix(gpu, blocks, limit, "test", row_multiple=2)
    assert (w.rows, w.k, w.format) == (rows, k, Q4_0)
    assert [(c.row0, c.rows) for c in w.chunks] == [(0, 4), (4, 4), (8, 4), (12, 4), (16, 4), (20, 3)]
    _, (words, scales) = Q4_0.repack(blocks)
    for c in w.chunks:
        nibbles, chunk_scales = c.buffers
        assert nibbles.size <= limit and chunk_scales.size <= limit
        assert nibbles.label == f"test q4[{c.row0}:{c.row0 + c.rows}]"
        got = read(gpu, nibbles, np.uint32, c.rows * words[0].size).reshape(c.rows, *words.shape[1:])
        np.testing.assert_array_equal(got, words[c.row0: c.row0 + c.rows])
        got = read(gpu, chunk_scales, np.float16, c.rows * scales[0].size).reshape(c.rows, *scales.shape[1:])
        np.testing.assert_array_equal(got, scales[c.row0: c.row0 + c.rows])


def test_gate_up_pairs_rows_within_chunks(gpu):
    rng = np.random.default_rng(2)
    w1, w3 = random_blocks(rng, 9, 96), random_blocks(rng, 9, 96)
    w = Q4_0.gate_up(gpu, w1, w3, 5 * Q4_0.row_bytes(96), "w13")
    assert w.rows == 18 and all(c.row0 % 2 == 0 and c.rows % 2 == 0 for c in w.chunks)
    _, (words, scales) = Q4_0.repack(np.stack([w1, w3], axis=1).reshape(18, -1))
    pairs = dequantize_gpu_layout(words, scales)[:, :96]
    np.testing.assert_array_equal(pairs[0::2], dequantize_q4_0(w1))
    np.testing.assert_array_equal(pairs[1::2], dequantize_q4_0(w3))
    with pytest.raises(ValueError, match="differ in shape"):
        Q4_0.gate_up(gpu, w1, w3[:8], 1 << 20, "w13")


def test_f32_matrix_chunks_hold_their_rows(gpu):
    w = np.random.default_rng(3).standard_normal((11, 165)).astype(np.float32)
    m = F32.matrix(gpu, w, 4 * 165 * 4, "conv")
    assert (m.rows, m.k, m.format) == (11, 165, F32)
    assert [(c.row0, c.rows) for c in m.chunks] == [(0, 4), (4, 4), (8, 3)]
    for c in m.chunks:
        (buf,) = c.buffers
        assert buf.label == f"conv[{c.row0}:{c.row0 + c.rows}]"
        np.testing.assert_array_equal(read(gpu, buf, np.float32, c.rows * 165).reshape(c.rows, 165),
                                      w[c.row0: c.row0 + c.rows])
    assert F32.kernel(1, 11, 165) == ("f32_rows", None) and F32.kernel(70, 11, 165) == ("f32_rows", None)
    assert not F32.epilogues and F32.tile_kernel is None and F32.embed_kernel is None


class TilesOnly(Q4_0Format):
    """A format entry of its own: Q4_0's layout, q4_tiles for every row count."""

    def kernel(self, m, n, k):
        return "q4_tiles", None


def test_linear_takes_the_kernel_its_weights_format_chooses(gpu):
    """ops.linear asks the weight's format (no branch on the format in linear): the same weights through
    Q4_0 (q4_matvec for one row of x) and through an entry that always tiles give the same product."""
    rng = np.random.default_rng(4)
    blocks = quantize_q4_0(rng.standard_normal((40, 256)).astype(np.float32))
    x = upload(gpu, rng.standard_normal((1, 256)).astype(np.float32))
    outputs, kernels_run = [], []
    for fmt in (Q4_0, TilesOnly()):
        out = upload(gpu, np.zeros(40, np.float32))
        prog = Program(Kernels(gpu), f"{fmt.name} product")
        ops.linear(prog, fmt.matrix(gpu, blocks, 1 << 20, "w"), x, out, k=256)
        prog.build().run(1)
        kernels_run.append(prog.dispatches())
        outputs.append(read(gpu, out, np.float32, 40))
    assert kernels_run == [["q4_matvec"], ["q4_tiles"]]
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    want = dequantize_q4_0(blocks) @ read(gpu, x, np.float32, 256)
    np.testing.assert_allclose(outputs[0], want, rtol=1e-4, atol=1e-4)
