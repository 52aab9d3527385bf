// Bindings of the Q4 matrix kernels (q4_matvec, q4_direct, q4_tiles) and their inputs and epilogues
// beyond linear_out.wgsl's: the folded RMSNorm's gain (FLAG_NORM) and the stores of output rows that
// come in adjacent pairs (FLAG_SWIGLU, FLAG_ROPE). Weights (weights.interleave_q4): per row, G groups of
// four blocks, word c of blocks 4g..4g+3 as one vec4<u32> and their four f16 scales as one vec2<u32>.

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // [m, x_stride/4]
@group(0) @binding(2) var<storage, read> w_nib: array<vec4<u32>>;   // [n, G, 4]
@group(0) @binding(3) var<storage, read> w_scale: array<vec2<u32>>; // [n, G] f16 x 4
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

struct State {
    pos0: u32, // position of x row 0
    out_idx: u32,
}

@group(0) @binding(6) var<storage, read> gain: array<vec4<f32>>;          // [k/4], FLAG_NORM
@group(0) @binding(7) var<storage, read> rope: array<vec2<f32>>;          // [table_rows, head_dim/2] (cos, sin), FLAG_ROPE
@group(0) @binding(8) var<storage, read_write> k_cache: array<u32>;       // [kv_cap, kv_dim/2] f16 pairs, FLAG_ROPE
@group(0) @binding(9) var<storage, read_write> v_cache: array<u32>;       // [kv_cap, kv_dim/2] f16 pairs, FLAG_ROPE
@group(0) @binding(10) var<storage, read> state: State;                   // FLAG_ROPE

// FLAG_ROPE: the fused q|k|v projection's rows e (even), e+1 of x row m, bias included. q and k pairs
// are rotated by interleaved (GPT-J) RoPE at position state.pos0 + m (cos/sin from a ring table filled
// on the CPU with the reference's formula, so the angles are bit-identical); q goes to out [m, q_dim],
// k and v to the KV ring at slot pos % kv_cap, as f16 (half the memory and the attention's reads; the
// pair is packed into one word). So no separate pass re-reads the projection.
fn store_rope(m: u32, e: u32, even: f32, odd: f32) {
    let pos = state.pos0 + m;
    let slot = (pos % p.kv_cap) * p.kv_dim;
    if (e >= p.q_dim + p.kv_dim) {
        v_cache[(slot + e - p.q_dim - p.kv_dim) / 2u] = pack2x16float(vec2<f32>(even, odd));
        return;
    }
    let cs = rope[(pos % p.table_rows) * (p.head_dim / 2u) + (e % p.head_dim) / 2u];
    let r_even = even * cs.x - odd * cs.y;
    let r_odd = even * cs.y + odd * cs.x;
    if (e < p.q_dim) {
        out[m * p.q_dim + e] = r_even;
        out[m * p.q_dim + e + 1u] = r_odd;
    } else {
        k_cache[(slot + e - p.q_dim) / 2u] = pack2x16float(vec2<f32>(r_even, r_odd));
    }
}

// The store of adjacent output rows n (even) and n + 1 of x row m under FLAG_SWIGLU or FLAG_ROPE; the
// kernels hold both rows' sums in one invocation (chunks hold whole pairs: col0 is even, n + 1 < p.n).
fn store_pair(m: u32, n: u32, even: f32, odd: f32) {
    if ((p.flags & FLAG_SWIGLU) != 0u) {
        out[p.out_base + m * p.out_stride + (p.col0 + n) / 2u] = even / (1.0 + exp(-even)) * odd;
        return;
    }
    var a = even;
    var b = odd;
    if ((p.flags & FLAG_BIAS) != 0u) {
        a += bias[p.col0 + n];
        b += bias[p.col0 + n + 1u];
    }
    store_rope(m, p.col0 + n, a, b);
}
