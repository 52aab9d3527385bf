// Parameters and epilogue shared by the matrix kernels:
//   out[out_base + m*out_stride + col0 + n] (+)= act(sum_k x[m*x_stride + k] * W[n, k] + bias[col0 + n])
// W is one row chunk (rows col0 .. col0+n) of a weight that may be split across bindings.
// The including kernel declares `p: LinearParams`, `bias` and `out`.

struct LinearParams {
    m: u32,          // rows of x and out
    n: u32,          // output features in this weight chunk
    k: u32,          // input features
    x_stride: u32,   // elements between input rows (convolutions read overlapping rows)
    out_stride: u32, // elements between output rows
    out_base: u32,   // element offset of output row 0
    col0: u32,       // first output feature of this chunk (for out and bias)
    flags: u32,
    eps: f32,        // FLAG_NORM
    head_dim: u32,   // FLAG_ROPE: the attention geometry and the KV ring (q4_epilogue.wgsl)
    q_dim: u32,
    kv_dim: u32,
    kv_cap: u32,
    table_rows: u32,
    splits: u32,     // q4_tiles: partial sums over this many slices of k, into split_sum's input
}

const FLAG_BIAS: u32 = 1u;
const FLAG_GELU: u32 = 2u;
const FLAG_ACCUMULATE: u32 = 4u; // residual connection: out += result
// SwiGLU epilogue of the fused gate|up projection (weights.gate_up_q4: w1 row j is row 2j, w3 row j
// row 2j+1): out[m, (col0 + n) / 2] = silu(w1.x) * w3.x, so no separate pass re-reads both halves.
// Other flags are ignored.
const FLAG_SWIGLU: u32 = 8u;
// The RMSNorm before the projection, folded in (q4 kernels): x row m is read as x * gain (binding 6,
// [k]) and the product scaled by 1 / sqrt(mean(x^2) + eps) before the bias; the kernel sums x^2 over
// the row while it streams x, so the normalised row is never written.
const FLAG_NORM: u32 = 16u;
// RoPE and the KV-cache write of the fused q|k|v projection, in its epilogue (q4_epilogue.wgsl).
const FLAG_ROPE: u32 = 32u;

fn inv_rms(sum_sq: f32) -> f32 {
    return 1.0 / sqrt(sum_sq / f32(p.k) + p.eps);
}

fn store_out(m: u32, n: u32, acc: f32) {
    var v = acc;
    if ((p.flags & FLAG_BIAS) != 0u) {
        v += bias[p.col0 + n];
    }
    if ((p.flags & FLAG_GELU) != 0u) {
        v = gelu(v);
    }
    let i = p.out_base + m * p.out_stride + p.col0 + n;
    if ((p.flags & FLAG_ACCUMULATE) != 0u) {
        v += out[i];
    }
    out[i] = v;
}
