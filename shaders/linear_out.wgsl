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
// SwiGLU epilogue of the fused gate|up projection (weights.gate_up_q4: w1 row j is row 2j, w3 row j
// row 2j+1): out[m, (col0 + n) / 2] = silu(w1.x) * w3.x, so no separate pass re-reads both halves.
// Other flags are ignored.
const FLAG_SWIGLU: u32 = 8u;

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

var<workgroup> glu_up: array<f32, 128>; // the w3 results of a workgroup's row pairs

// The q4 kernels' store for FLAG_SWIGLU: a workgroup holds whole row pairs (an even number of teams),
// so the w1 row's team reads its pair's w3 result through workgroup memory. Called by every
// invocation (it has barriers); `slot` is the team's index in the workgroup, `lead` its lane 0.
fn store_glu(m: u32, n: u32, acc: f32, slot: u32, lead: bool) {
    if (lead && slot % 2u == 1u) {
        glu_up[slot / 2u] = acc;
    }
    workgroupBarrier();
    if (lead && slot % 2u == 0u && n < p.n) {
        out[p.out_base + m * p.out_stride + (p.col0 + n) / 2u] = acc / (1.0 + exp(-acc)) * glu_up[slot / 2u];
    }
    workgroupBarrier(); // glu_up is reused by the next row of x (q4_rows)
}
