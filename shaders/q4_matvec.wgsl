// Fused Q4_0 dequantise + matrix product for one to four rows of x (a decoding step, a short speculative
// batch, the encoder's 4 frames of a live step; kernels.q4_kernel says which kernel takes which row
// count): ROWS rows of x per slice (grid z), so each weight word is loaded and dequantised once and
// applied to every row of its slice.
// Weights (weights.interleave_q4): per row, G groups of four blocks; w_nib [n, G, 4, 4] holds word c
// (bytes 4c..4c+3: elements 4c..4c+3 in the low nibbles, 16+4c..16+4c+3 in the high ones, as q+8) of
// blocks 4g..4g+3 as one vec4<u32>, and w_scale [n, G] their four f16 scales as one vec2<u32>. A team of
// TEAM invocations owns two adjacent weight rows; four lanes share a group, lane c taking word c of its
// four blocks in both rows, so each lane streams 32 bytes per trip (enough bytes in flight to approach
// memory bandwidth), a warp's weight loads are contiguous, and each x value read serves two weight
// rows (x reads, not weights, set the time when a lane owned one row: measured on an H200, 8 rows of x
// took 5.6x as long as one). Both rows of a SwiGLU or RoPE pair end in the same invocation.
// Every team of the workgroup needs the same x, so each trip first stages the trip's slice of the rows
// of x in workgroup memory, loaded once per workgroup. FLAG_NORM is folded into that staging: the
// invocation that stages an element stages it times the norm gain and adds its square to its row's
// sum, and the workgroup adds those sums up once, at the end. (Applying the gain to the dequantised
// weights and summing x^2 in every team instead made the decoder's w13 39 us rather than 24 on an
// H200, and the live step's GPU time 5.7 ms rather than 4.7.)
// Grid: (row-pair groups split over x and y when above 65535, slices of ROWS rows of x in z).

const WG: u32 = 256u;
const ROWS: u32 = /*ROWS*/; // rows of x per slice
const TEAM: u32 = /*TEAM*/; // invocations per pair of weight rows
const GROUPS: u32 = TEAM / 4u; // groups of four blocks a team takes per trip
const SPAN: u32 = GROUPS * 32u; // vec4s of a row of x per trip (128 elements per group)
// A warp reads the staged x as vec4s eight lanes at a time; the eight lanes of two adjacent groups read
// vec4s 32 apart, which fall in the same banks. Four padding vec4s after every 32 move the second
// group's reads to the other banks (on an H100 the encoder's 4-row w13 took 14.9 instead of 16.1 us).
const PADDED_SPAN: u32 = SPAN / 32u * 36u;

var<workgroup> xs: array<vec4<f32>, ROWS * PADDED_SPAN>; // [ROWS, PADDED_SPAN]: the trip's x rows (times the norm gain)

// Per invocation, for each row j of x, the sums of both weight rows (.x, .y) and of the squares of the
// elements it staged, as separate variables (lines marked "each row j" are repeated for j = 0 ..
// ROWS-1 by the loader, kernels.Kernels.source): arrays indexed in a loop the driver did not unroll
// lived in local memory, 10x slower on an H200. Rows of x past the slice's are staged as zeros, so
// their sums stay 0.
var<private> acc{j}: vec2<f32>; // each row j
var<private> sum_sq{j}: f32; // each row j

// Word c of a block in both weight rows (8 weights each, scales d) applied to every row of the slice;
// xe is the staged vec4 of x the word's low nibbles meet (its high ones meet xe + 4). A function
// called once per block of the lane's loads, rather than a loop over the four, so no vector is indexed
// by a variable.
fn block(word0: u32, word1: u32, d: vec2<f32>, xe: u32) {
    let lo0 = nibbles(word0, 0u);
    let hi0 = nibbles(word0, 4u);
    let lo1 = nibbles(word1, 0u);
    let hi1 = nibbles(word1, 4u);
    acc{j} += d * row_dots(lo0, hi0, lo1, hi1, xs[{j}u * PADDED_SPAN + xe], xs[{j}u * PADDED_SPAN + xe + 4u]); // each row j
}

fn row_dots(lo0: vec4<f32>, hi0: vec4<f32>, lo1: vec4<f32>, hi1: vec4<f32>, x_lo: vec4<f32>, x_hi: vec4<f32>) -> vec2<f32> {
    return vec2<f32>(dot(lo0, x_lo) + dot(hi0, x_hi), dot(lo1, x_lo) + dot(hi1, x_hi));
}

// The team's sums for row j of the slice (weight rows n, n + 1), through the epilogue. Called by every
// invocation (the sums may have barriers; j < nm is uniform).
fn finish(j: u32, a: vec2<f32>, ss: f32, m0: u32, nm: u32, n: u32, lid: u32, sg: u32) {
    if (j >= nm) {
        return;
    }
    var total = vec2<f32>(team_sum(a.x, lid, TEAM, sg), team_sum(a.y, lid, TEAM, sg));
    if ((p.flags & FLAG_NORM) != 0u) { // the row's squares were summed by whoever staged them
        total *= inv_rms(team_sum(ss, lid, WG, sg));
    }
    if (lid % TEAM != 0u || n >= p.n) {
        return;
    }
    if ((p.flags & (FLAG_SWIGLU | FLAG_ROPE)) != 0u) {
        store_pair(m0 + j, n, total.x, total.y);
        return;
    }
    store_out(m0 + j, n, total.x);
    if (n + 1u < p.n) {
        store_out(m0 + j, n + 1u, total.y);
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let row = ((wid.x + wid.y * nwg.x) * (WG / TEAM) + lid / TEAM) * 2u; // and row + 1
    let m0 = wid.z * ROWS;
    let nm = min(ROWS, p.m - m0);
    let lane = lid % TEAM;
    let k4 = p.k / 4u;
    let ng = (p.k / 32u + 3u) / 4u;
    let c = lane % 4u; // the word of each block this lane reads
    let norm = (p.flags & FLAG_NORM) != 0u;
    for (var g0 = 0u; g0 < ng; g0 += GROUPS) {
        // Stage vec4s g0*32 .. g0*32 + SPAN of each row of x (times the gain); 0 past k (where the
        // padding blocks, of scale 0, of the last group meet them) and past the slice's rows.
        for (var e = lid; e < ROWS * SPAN; e += WG) {
            let xr = e / SPAN; // the row of x
            let q = g0 * 32u + e % SPAN;
            var v = vec4<f32>(0.0);
            if (q < k4 && xr < nm) {
                v = x[(m0 + xr) * (p.x_stride / 4u) + q];
                if (norm) {
                    sum_sq{j} += select(0.0, dot(v, v), xr == {j}u); // each row j
                    v *= gain[q];
                }
            }
            xs[e + e / 32u * 4u] = v;
        }
        workgroupBarrier();
        let g = g0 + lane / 4u;
        if (row < p.n && g < ng) {
            let i = row * ng + g;
            let w0 = w_nib[i * 4u + c];
            let d0 = f16x4(w_scale[i]);
            var w1 = vec4<u32>(0u);
            var d1 = vec4<f32>(0.0); // no second row at the end of an odd chunk: scale 0
            if (row + 1u < p.n) {
                w1 = w_nib[(i + ng) * 4u + c];
                d1 = f16x4(w_scale[i + ng]);
            }
            let e = (lane / 4u) * 36u + c; // the group's first staged (padded) vec4 this lane meets
            block(w0.x, w1.x, vec2<f32>(d0.x, d1.x), e);
            block(w0.y, w1.y, vec2<f32>(d0.y, d1.y), e + 8u);
            block(w0.z, w1.z, vec2<f32>(d0.z, d1.z), e + 16u);
            block(w0.w, w1.w, vec2<f32>(d0.w, d1.w), e + 24u);
        }
        workgroupBarrier(); // xs is restaged by the next trip
    }
    finish({j}u, acc{j}, sum_sq{j}, m0, nm, row, lid, sg_size); // each row j
}
