// Parameters and epilogue shared by the matrix-vector and matrix-matrix kernels:
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
    team: u32,       // q4 kernels: invocations per weight row (a power of two, 256 at most)
}

const FLAG_BIAS: u32 = 1u;
const FLAG_GELU: u32 = 2u;
const FLAG_ACCUMULATE: u32 = 4u; // residual connection: out += result

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
