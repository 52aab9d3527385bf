import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

from voxtral_desk.quant import dequantize_q4_0, quantize_q4_0, split_q4_0


@pytest.mark.parametrize("shape", [(1, 32), (7, 96), (64, 3072)])
def test_quantize_matches_gguf_reference(shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, :32] = 0.0  # an all-zero block: scale 0
    x[-1, 5] = -x[-1, :32].__abs__().max() * 2  # a negative extreme
    ours = quantize_q4_0(x)
    theirs = quantize(x, GGMLQuantizationType.Q4_0)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(dequantize_q4_0(ours), dequantize(theirs, GGMLQuantizationType.Q4_0))


def test_round_trip_error_is_bounded():
    x = np.random.default_rng(0).standard_normal((16, 256)).astype(np.float32)
    y = dequantize_q4_0(quantize_q4_0(x))
    blocks = np.abs(x.reshape(-1, 32)).max(axis=1, keepdims=True)
    assert (np.abs(x - y).reshape(-1, 32) <= blocks / 8 * 1.01).all()


def test_split_keeps_scales_and_nibbles():
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    q = quantize_q4_0(x)
    scales, nibbles = split_q4_0(q)
    assert scales.shape == (3, 2) and nibbles.shape == (3, 2, 4) and nibbles.dtype == np.uint32
    low = (nibbles.view(np.uint8).reshape(3, 2, 16) & 0xF).astype(np.float32) - 8
    np.testing.assert_array_equal(scales[:, :, None] * low, dequantize_q4_0(q).reshape(3, 2, 32)[:, :, :16])


def test_rejects_rows_not_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        quantize_q4_0(np.zeros((2, 33), np.float32))
