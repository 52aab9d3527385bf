// Split the fused q|k|v projection [m, (H + 2*KV) * hd]: rotate q and k with interleaved (GPT-J) RoPE,
// pairs (2j, 2j+1), and store k, v in the ring KV cache at slot (pos % cap). Row m has absolute position
// state.pos0 + m; cos/sin come from a ring table [table_rows, hd/2] filled on the CPU with the reference
// formula for the positions of the current submit, so the angles are bit-identical to the reference.

struct RopeParams {
    m: u32,
    n_heads: u32,
    n_kv: u32,
    head_dim: u32,
    cap: u32,        // KV cache rows (ring)
    table_rows: u32, // cos/sin ring rows
}

struct State {
    pos0: u32,
    out_idx: u32,
}

@group(0) @binding(0) var<uniform> p: RopeParams;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> cos_t: array<f32>;
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;       // [m, H * hd]
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>; // [cap, KV * hd]
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>; // [cap, KV * hd]
@group(0) @binding(7) var<storage, read> state: State;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = gid.y;
    let i = gid.x;
    let half = p.head_dim / 2u;
    let q_pairs = p.n_heads * half;
    let kv_pairs = p.n_kv * half;
    if (m >= p.m || i >= q_pairs + 2u * kv_pairs) {
        return;
    }
    let pos = state.pos0 + m;
    let row = m * (p.n_heads + 2u * p.n_kv) * p.head_dim;
    let slot = (pos % p.cap) * p.n_kv * p.head_dim;
    if (i >= q_pairs + kv_pairs) { // v: copied as is
        let e = 2u * (i - q_pairs - kv_pairs);
        let src = row + (p.n_heads + p.n_kv) * p.head_dim + e;
        v_cache[slot + e] = qkv[src];
        v_cache[slot + e + 1u] = qkv[src + 1u];
        return;
    }
    let j = i % half;
    let t = (pos % p.table_rows) * half + j;
    let c = cos_t[t];
    let s = sin_t[t];
    let e = 2u * i; // element offset of the pair inside q (or k, after the q part)
    let even = qkv[row + e];
    let odd = qkv[row + e + 1u];
    let r_even = even * c - odd * s;
    let r_odd = even * s + odd * c;
    if (i < q_pairs) {
        q[m * p.n_heads * p.head_dim + e] = r_even;
        q[m * p.n_heads * p.head_dim + e + 1u] = r_odd;
    } else {
        let ek = e - 2u * q_pairs;
        k_cache[slot + ek] = r_even;
        k_cache[slot + ek + 1u] = r_odd;
    }
}
