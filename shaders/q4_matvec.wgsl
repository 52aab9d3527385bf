// Fused Q4_0 dequantise + matrix product for x with few rows: decoding (one row), and prefill, the
// encoder and the adapter (ROWS rows of x per workgroup slice, grid z: each weight block is loaded
// once per slice and applied to all its rows).
// Weights are repacked at load (quant.split_q4_0): w_nib [n, k/32] blocks of 16 bytes (one vec4<u32>:
// byte j holds element j in its low nibble and element j+16 in its high nibble, each stored as q+8) and
// w_scale [n, k/32] f32. A team of TEAM invocations owns RT consecutive weight rows; lane l reads blocks
// l, l+TEAM, ... of each, so a team streams TEAM*16 contiguous bytes per row and step (coalesced), and
// the x values a lane loads serve RT rows. Grid: (row groups split over x and y when above 65535,
// slices of ROWS rows of x in z). The constants are substituted per kernel (kernels.KERNEL_CONSTANTS).

const WG: u32 = 256u;
const TEAM: u32 = /*TEAM*/;
const RT: u32 = /*RT*/;     // weight rows per team
const ROWS: u32 = /*ROWS*/; // rows of x per slice

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // [m, x_stride/4]
@group(0) @binding(2) var<storage, read> w_nib: array<vec4<u32>>;   // [n, k/32]
@group(0) @binding(3) var<storage, read> w_scale: array<f32>;       // [n, k/32]
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// Elements 4c..4c+3 of a block word (shift 0) or elements 16+4c.. (shift 4), as q - 8: OR-ing a 4-bit q
// into the mantissa of 2^23 gives the float 2^23 + q exactly, so no integer-to-float conversion (a
// quarter-rate instruction that otherwise bounds these kernels) is needed.
fn nibbles(word: u32, shift: u32) -> vec4<f32> {
    let q = (vec4<u32>(word >> shift, word >> (shift + 8u), word >> (shift + 16u), word >> (shift + 24u)) & vec4<u32>(15u))
            | vec4<u32>(0x4B000000u);
    return bitcast<vec4<f32>>(q) - 8388616.0; // (2^23 + q) - (2^23 + 8)
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let row0 = ((wid.x + wid.y * nwg.x) * (WG / TEAM) + lid / TEAM) * RT;
    let m0 = wid.z * ROWS;
    let nm = min(ROWS, p.m - m0);
    let lane = lid % TEAM;
    let nb = p.k / 32u;
    let xs = p.x_stride / 4u;
    var acc: array<f32, RT * ROWS>;
    if (row0 < p.n) {
        for (var b = lane; b < nb; b += TEAM) {
            // the RT blocks, dequantised once for all rows of x: wv[r][0..4] low nibbles, [4..8] high
            var wv: array<array<vec4<f32>, 8>, RT>;
            var d: array<f32, RT>;
            for (var r = 0u; r < RT; r++) {
                let i = min(row0 + r, p.n - 1u) * nb + b; // rows past n repeat the last (never stored)
                let q = w_nib[i];
                d[r] = w_scale[i];
                for (var w = 0u; w < 4u; w++) {
                    wv[r][w] = nibbles(q[w], 0u);
                    wv[r][4u + w] = nibbles(q[w], 4u);
                }
            }
            for (var j = 0u; j < ROWS; j++) {
                if (j < nm) {
                    var xv: array<vec4<f32>, 8>;
                    let xb = (m0 + j) * xs + b * 8u;
                    for (var t = 0u; t < 8u; t++) {
                        xv[t] = x[xb + t];
                    }
                    for (var r = 0u; r < RT; r++) {
                        var s = 0.0;
                        for (var w = 0u; w < 4u; w++) {
                            s += dot(wv[r][w], xv[w]) + dot(wv[r][4u + w], xv[4u + w]);
                        }
                        acc[r * ROWS + j] += d[r] * s;
                    }
                }
            }
        }
    }
    for (var r = 0u; r < RT; r++) {
        for (var j = 0u; j < ROWS; j++) {
            if (j >= nm) {
                break;
            }
            let total = team_sum(acc[r * ROWS + j], lid, TEAM, sg_size);
            if (lane == 0u && row0 + r < p.n) {
                store_out(m0 + j, row0 + r, total);
            }
        }
    }
}
