// Fused Q4_0 dequantise + matrix-vector product, for decoding (few rows of x).
// Weights are repacked at load (quant.split_q4_0): w_nib [n, k/32] blocks of 16 bytes (one vec4<u32>:
// byte j holds element j in its low nibble and element j+16 in its high nibble, each stored as q+8) and
// w_scale [n, k/32] f32. A team of 32 invocations owns one weight row; lane l reads blocks l, l+32, ...,
// so a team streams 512 contiguous bytes per step (coalesced). 8 rows per workgroup of 256.
// Grid: (row groups split over x and y when above 65535, x rows m in z).

const WG: u32 = 256u;
const TEAM: u32 = 32u;

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // [m, x_stride/4]
@group(0) @binding(2) var<storage, read> w_nib: array<vec4<u32>>;   // [n, k/32]
@group(0) @binding(3) var<storage, read> w_scale: array<f32>;       // [n, k/32]
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// sum over one block of (q - 8) * x, with x the 32 inputs starting at vec4 index xb
fn block_dot(q: vec4<u32>, xb: u32) -> f32 {
    var s = 0.0;
    for (var w = 0u; w < 4u; w++) {
        let word = q[w];
        let lo = vec4<f32>(vec4<u32>(word, word >> 8u, word >> 16u, word >> 24u) & vec4<u32>(15u)) - 8.0;
        let hi = vec4<f32>(vec4<u32>(word >> 4u, word >> 12u, word >> 20u, word >> 28u) & vec4<u32>(15u)) - 8.0;
        s += dot(lo, x[xb + w]) + dot(hi, x[xb + 4u + w]);
    }
    return s;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let row = (wid.x + wid.y * nwg.x) * (WG / TEAM) + lid / TEAM;
    let m = wid.z;
    let lane = lid % TEAM;
    let nb = p.k / 32u;
    var acc = 0.0;
    if (row < p.n) {
        let xrow = m * p.x_stride / 4u;
        for (var b = lane; b < nb; b += TEAM) {
            let i = row * nb + b;
            acc += w_scale[i] * block_dot(w_nib[i], xrow + b * 8u);
        }
    }
    let total = team_sum(acc, lid, TEAM, sg_size);
    if (lane == 0u && row < p.n) {
        store_out(m, row, total);
    }
}
