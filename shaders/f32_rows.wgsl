// f32-weight matrix product for the conv stem (its weights stay f32 in the GGUF): out[m, n] =
// x[m, :] . W[n, :], ROWS rows of x per workgroup slice (grid z), a team of TEAM invocations per weight
// row with lanes striding over k (coalesced weight reads; any k and x_stride, rows of x may overlap).

const WG: u32 = 256u;
const TEAM: u32 = /*TEAM*/;
const ROWS: u32 = /*ROWS*/; // rows of x per slice

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;   // rows at x_stride
@group(0) @binding(2) var<storage, read> w: array<f32>;   // [n, k]
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let row = (wid.x + wid.y * nwg.x) * (WG / TEAM) + lid / TEAM;
    let m0 = wid.z * ROWS;
    let nm = min(ROWS, p.m - m0);
    let lane = lid % TEAM;
    var acc: array<f32, ROWS>;
    if (row < p.n) {
        for (var kk = lane; kk < p.k; kk += TEAM) {
            let wv = w[row * p.k + kk];
            for (var j = 0u; j < ROWS; j++) {
                if (j < nm) {
                    acc[j] += wv * x[(m0 + j) * p.x_stride + kk];
                }
            }
        }
    }
    for (var j = 0u; j < ROWS; j++) {
        if (j >= nm) {
            break;
        }
        let total = team_sum(acc[j], lid, TEAM, sg_size);
        if (lane == 0u && row < p.n) {
            store_out(m0 + j, row, total);
        }
    }
}
