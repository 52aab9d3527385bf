// Fused Q4_0 dequantise + matrix product for a few rows of x at once (a speculative batch of 5 to 16
// positions; kernels.q4_kernel says which kernel takes which row count): ROWS rows of x per slice (grid
// z), so each weight word is loaded and dequantised once per slice and applied to each of its rows.
// Slices of 4 rows beat one slice of 8 by a third on an H200 (fewer registers per lane, so more
// lanes in flight); the slices' repeated weight reads mostly hit L2.
// Weights (weights.interleave_q4): per row, G groups of four blocks; w_nib [n, G, 4, 4] holds word c
// (bytes 4c..4c+3: elements 4c..4c+3 in the low nibbles, 16+4c..16+4c+3 in the high ones, as q+8) of
// blocks 4g..4g+3 as one vec4<u32>, and w_scale [n, G] their four f16 scales as one vec2<u32>.
// A team of TEAM invocations owns four adjacent weight rows; four lanes share a group, lane c taking
// word c of its four blocks in all four rows, so each lane has 64 bytes of weights in flight per trip,
// a warp's weight loads are contiguous, and each x value read serves four weight rows. x is read
// straight from memory (every team reads the same x, which stays in the L1 cache): no workgroup memory,
// no barriers in the loop, which on 8 rows of x beats q4_matvec's staging and barriers per trip (with
// one row those are cheaper than these x reads). Teams are wider for short matrices
// (kernels.direct_team). Both rows of a SwiGLU or RoPE pair end in the same invocation.
// Grid: (four-row groups split over x and y when above 65535, slices of ROWS rows of x in z).

const WG: u32 = 256u;
const ROWS: u32 = /*ROWS*/; // rows of x per slice
const TEAM: u32 = /*TEAM*/; // invocations per four weight rows
const GROUPS: u32 = TEAM / 4u; // groups of four blocks a team takes per trip

// Per lane, for each row j of x, the sums of the four weight rows and of x^2, as separate variables
// (lines marked "each row j" are repeated for j = 0 .. ROWS-1 by the loader, kernels.Kernels.source):
// arrays indexed in a loop the driver did not unroll lived in local memory, 10x slower on an H200.
var<private> acc{j}: vec4<f32>; // each row j
var<private> sum_sq{j}: f32; // each row j
var<private> x_row{j}: u32; // each row j

// Word c of one block in the four weight rows (words.x .. .w, scales d) applied to every row of the
// slice; e is the index of the lane's low-nibble vec4 of x within a row (its high one is e + 4).
fn block(words: vec4<u32>, d: vec4<f32>, e: u32, norm: bool) {
    let lo0 = nibbles(words.x, 0u);
    let hi0 = nibbles(words.x, 4u);
    let lo1 = nibbles(words.y, 0u);
    let hi1 = nibbles(words.y, 4u);
    let lo2 = nibbles(words.z, 0u);
    let hi2 = nibbles(words.z, 4u);
    let lo3 = nibbles(words.w, 0u);
    let hi3 = nibbles(words.w, 4u);
    var x_lo{j} = x[x_row{j} + e]; // each row j
    var x_hi{j} = x[x_row{j} + e + 4u]; // each row j
    if (norm) { // the gain on x, not on the four dequantised weight rows: speculative decoding 1136 ->
                // 1259-1289 tokens/s on an H200
        let g_lo = gain[e];
        let g_hi = gain[e + 4u];
        sum_sq{j} += dot(x_lo{j}, x_lo{j}) + dot(x_hi{j}, x_hi{j}); // each row j
        x_lo{j} *= g_lo; // each row j
        x_hi{j} *= g_hi; // each row j
    }
    acc{j} += d * vec4<f32>(dot(lo0, x_lo{j}) + dot(hi0, x_hi{j}), dot(lo1, x_lo{j}) + dot(hi1, x_hi{j}), dot(lo2, x_lo{j}) + dot(hi2, x_hi{j}), dot(lo3, x_lo{j}) + dot(hi3, x_hi{j})); // each row j
}

// The store of output rows n, n + 1 (a pair for the SwiGLU and RoPE epilogues) of x row m.
fn store_two(m: u32, n: u32, a: vec2<f32>) {
    if (n >= p.n) {
        return;
    }
    if ((p.flags & (FLAG_SWIGLU | FLAG_ROPE)) != 0u) {
        store_pair(m, n, a.x, a.y);
        return;
    }
    store_out(m, n, a.x);
    if (n + 1u < p.n) {
        store_out(m, n + 1u, a.y);
    }
}

// The team's sums for row j of the slice (weight rows n .. n + 3), through the epilogue. Called by every
// invocation (the sums may have barriers; j < nm is uniform).
fn finish(j: u32, a: vec4<f32>, ss: f32, m0: u32, nm: u32, n: u32, lid: u32, sg: u32) {
    if (j >= nm) {
        return;
    }
    var total = vec4<f32>(team_sum(a.x, lid, TEAM, sg), team_sum(a.y, lid, TEAM, sg),
                          team_sum(a.z, lid, TEAM, sg), team_sum(a.w, lid, TEAM, sg));
    if ((p.flags & FLAG_NORM) != 0u) {
        total *= inv_rms(team_sum(ss, lid, TEAM, sg));
    }
    if (lid % TEAM != 0u) {
        return;
    }
    store_two(m0 + j, n, total.xy);
    store_two(m0 + j, n + 2u, total.zw);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let row = ((wid.x + wid.y * nwg.x) * (WG / TEAM) + lid / TEAM) * 4u; // .. row + 3
    let m0 = wid.z * ROWS;
    let nm = min(ROWS, p.m - m0);
    // Rows of x past the slice's read its last row (their sums are dropped), so no load is guarded.
    x_row{j} = min(m0 + {j}u, p.m - 1u) * (p.x_stride / 4u); // each row j
    let lane = lid % TEAM;
    let c = lane % 4u;
    let nb = p.k / 32u;
    let ng = (nb + 3u) / 4u;
    let norm = (p.flags & FLAG_NORM) != 0u;
    // Weight rows past n read row n - 1 with scale 0.
    let last = max(p.n, 1u) - 1u;
    let r = min(vec4<u32>(row) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)) * ng;
    let live = vec4<f32>(vec4<u32>(row) + vec4<u32>(0u, 1u, 2u, 3u) <= vec4<u32>(last));
    for (var g = lane / 4u; g < ng; g += GROUPS) {
        let w0 = w_nib[(r.x + g) * 4u + c];
        let w1 = w_nib[(r.y + g) * 4u + c];
        let w2 = w_nib[(r.z + g) * 4u + c];
        let w3 = w_nib[(r.w + g) * 4u + c];
        let s0 = f16x4(w_scale[r.x + g]) * live.x;
        let s1 = f16x4(w_scale[r.y + g]) * live.y;
        let s2 = f16x4(w_scale[r.z + g]) * live.z;
        let s3 = f16x4(w_scale[r.w + g]) * live.w;
        let e = g * 32u + c;
        let b = g * 4u; // the group's first block: blocks past nb (padding of the last group) are skipped,
                        // so neither x past k nor its squares are read
        block(vec4<u32>(w0.x, w1.x, w2.x, w3.x), vec4<f32>(s0.x, s1.x, s2.x, s3.x), e, norm);
        if (b + 1u < nb) {
            block(vec4<u32>(w0.y, w1.y, w2.y, w3.y), vec4<f32>(s0.y, s1.y, s2.y, s3.y), e + 8u, norm);
        }
        if (b + 2u < nb) {
            block(vec4<u32>(w0.z, w1.z, w2.z, w3.z), vec4<f32>(s0.z, s1.z, s2.z, s3.z), e + 16u, norm);
        }
        if (b + 3u < nb) {
            block(vec4<u32>(w0.w, w1.w, w2.w, w3.w), vec4<f32>(s0.w, s1.w, s2.w, s3.w), e + 24u, norm);
        }
    }
    finish({j}u, acc{j}, sum_sq{j}, m0, nm, row, lid, sg_size); // each row j
}
