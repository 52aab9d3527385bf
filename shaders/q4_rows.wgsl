// Fused Q4_0 dequantise + matrix product for few rows of x (prefill, the encoder, the adapter): ROWS
// rows of x per workgroup slice (grid z), so each weight word is loaded and dequantised once per slice
// and applied to all its rows. Same weights as q4_matvec.wgsl (weights.interleave_q4), read as single
// words: a team of p.team invocations owns a weight row, 16 lanes share a group of four blocks, lane
// (c, t) taking word c of block t, so both the weight words and the matching x vec4s a warp loads are
// contiguous. Grid: (row groups split over x and y when above 65535, slices of rows of x in z).

const WG: u32 = 256u;
const ROWS: u32 = /*ROWS*/; // rows of x per slice

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>; // [m, x_stride/4]
@group(0) @binding(2) var<storage, read> w_nib: array<u32>;   // [n, G, 4 words, 4 blocks]
@group(0) @binding(3) var<storage, read> w_scale: array<f32>; // [n, G * 4]
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let team = p.team;
    let row = (wid.x + wid.y * nwg.x) * (WG / team) + lid / team;
    let m0 = wid.z * ROWS;
    let nm = min(ROWS, p.m - m0);
    let lane = lid % team;
    let c = lane % 4u;
    let t = (lane / 4u) % 4u;
    let nb = p.k / 32u;
    let ng = (nb + 3u) / 4u;
    let xs = p.x_stride / 4u;
    var acc: array<f32, ROWS>;
    if (row < p.n) {
        for (var g = lane / 16u; g < ng; g += team / 16u) {
            let i = (row * ng + g) * 4u;
            let word = w_nib[(i + c) * 4u + t];
            let d = w_scale[i + t]; // padding blocks have scale 0 (their x is read clamped to the row)
            let lo = nibbles(word, 0u);
            let hi = nibbles(word, 4u);
            let xb = min(4u * g + t, nb - 1u) * 8u + c;
            for (var j = 0u; j < ROWS; j++) {
                if (j < nm) {
                    let xj = (m0 + j) * xs + xb;
                    acc[j] += d * (dot(lo, x[xj]) + dot(hi, x[xj + 4u]));
                }
            }
        }
    }
    for (var j = 0u; j < ROWS; j++) {
        if (j >= nm) {
            break;
        }
        let total = team_sum(acc[j], lid, team, sg_size);
        if ((p.flags & FLAG_SWIGLU) != 0u) {
            store_glu(m0 + j, row, total, lid / team, lane == 0u);
        } else if (lane == 0u && row < p.n) {
            store_out(m0 + j, row, total);
        }
    }
}
