// Fused Q4_0 dequantise + matrix-vector product for decoding (one row of x; more rows go in grid z).
// Weights (weights.interleave_q4): per row, G groups of four blocks; w_nib [n, G, 4, 4] holds word c
// (bytes 4c..4c+3: elements 4c..4c+3 in the low nibbles, 16+4c..16+4c+3 in the high ones, as q+8) of
// blocks 4g..4g+3 as one vec4<u32>, and w_scale [n, G] their four scales as one vec4<f32>. A team of
// p.team invocations owns a weight row; four lanes share a group, lane c taking word c of its four
// blocks, so each lane streams 16 bytes per loop trip (enough bytes in flight to approach memory
// bandwidth) and a warp's loads of both weights and the matching x vec4s are contiguous.
// Grid: (row groups split over x and y when above 65535, rows of x in z). The team is a parameter
// (kernels.Q4_TEAM). (Measured on an H200: holding two groups per lane and trip, or the dequantised
// blocks in arrays, made this slower.)

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // [m, x_stride/4]
@group(0) @binding(2) var<storage, read> w_nib: array<vec4<u32>>;   // [n, G, 4]
@group(0) @binding(3) var<storage, read> w_scale: array<vec4<f32>>; // [n, G]
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let team = p.team;
    let row = (wid.x + wid.y * nwg.x) * (WG / team) + lid / team;
    let m = wid.z;
    let lane = lid % team;
    let c = lane % 4u;
    let nb = p.k / 32u;
    let ng = (nb + 3u) / 4u;
    let xr = m * (p.x_stride / 4u);
    var acc = 0.0;
    if (row < p.n) {
        for (var g = lane / 4u; g < ng; g += team / 4u) {
            let i = row * ng + g;
            let words = w_nib[i * 4u + c];
            let d = w_scale[i]; // padding blocks have scale 0 (their x is read clamped to the row)
            for (var t = 0u; t < 4u; t++) {
                let xb = xr + min(4u * g + t, nb - 1u) * 8u + c;
                acc += d[t] * (dot(nibbles(words[t], 0u), x[xb]) + dot(nibbles(words[t], 4u), x[xb + 4u]));
            }
        }
    }
    let total = team_sum(acc, lid, team, sg_size);
    if ((p.flags & FLAG_SWIGLU) != 0u) {
        store_glu(m, row, total, lid / team, lane == 0u);
    } else if (lane == 0u && row < p.n) {
        store_out(m, row, total);
    }
}
