// f32-weight matrix product for the conv stem (its weights stay f32 in the GGUF): out[m, n] =
// x[m, :] . W[n, :], ROWS rows of x per workgroup slice (grid z), a team of TEAM invocations per weight
// row with lanes striding over k (coalesced weight reads; any k and x_stride, rows of x may overlap).
// Each trip loads four weights per lane before using them: with one load per trip each invocation
// waited on one load at a time (the live step's conv1, 20 MB of weights: 164 -> 42 us on an H200).

const WG: u32 = 256u;
const TEAM: u32 = /*TEAM*/;
const ROWS: u32 = /*ROWS*/; // rows of x per slice
const STEP: u32 = 4u * TEAM; // elements of k a team covers per trip

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;   // rows at x_stride
@group(0) @binding(2) var<storage, read> w: array<f32>;   // [n, k]
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// Per lane, the sum for each row j of x, and where that row starts, as separate variables (lines
// marked "each row j" are repeated for j = 0 .. ROWS-1 by the loader, kernels.Kernels.source): an
// array indexed in a loop the driver did not unroll lived in local memory.
var<private> acc{j}: f32; // each row j
var<private> x_row{j}: u32; // each row j

// Row j's sum through the epilogue. Called by every invocation (team_sum may have barriers; j < nm is
// uniform).
fn finish(j: u32, a: f32, m0: u32, nm: u32, row: u32, lid: u32, sg: u32) {
    if (j >= nm) {
        return;
    }
    let total = team_sum(a, lid, TEAM, sg);
    if (lid % TEAM == 0u && row < p.n) {
        store_out(m0 + j, row, total);
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let row = (wid.x + wid.y * nwg.x) * (WG / TEAM) + lid / TEAM;
    let m0 = wid.z * ROWS;
    let nm = min(ROWS, p.m - m0);
    // Rows of x past the slice's read its last row (their sums are dropped), so no load is guarded.
    x_row{j} = min(m0 + {j}u, p.m - 1u) * p.x_stride; // each row j
    if (row < p.n) {
        let w_row = row * p.k;
        let last = p.k - 1u;
        for (var k0 = lid % TEAM; k0 < p.k; k0 += STEP) {
            // Past k the index is clamped and the weight taken as 0.
            let k1 = min(k0 + TEAM, last);
            let k2 = min(k0 + 2u * TEAM, last);
            let k3 = min(k0 + 3u * TEAM, last);
            let w0 = w[w_row + k0];
            let w1 = select(0.0, w[w_row + k1], k0 + TEAM < p.k);
            let w2 = select(0.0, w[w_row + k2], k0 + 2u * TEAM < p.k);
            let w3 = select(0.0, w[w_row + k3], k0 + 3u * TEAM < p.k);
            acc{j} += w0 * x[x_row{j} + k0] + w1 * x[x_row{j} + k1] + w2 * x[x_row{j} + k2] + w3 * x[x_row{j} + k3]; // each row j
        }
    }
    finish({j}u, acc{j}, m0, nm, row, lid, sg_size); // each row j
}
