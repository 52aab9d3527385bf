// RMS norm of each row: out = x / sqrt(mean(x^2) + eps) * w. One workgroup of 256 per row. (Where a
// norm feeds a Q4 matrix it is folded into that kernel instead: linear_out.wgsl FLAG_NORM.)

struct NormParams {
    m: u32,
    d: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;     // [m, d]
@group(0) @binding(2) var<storage, read> w: array<f32>;     // [d]
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [m, d]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32 /*SUBGROUP_SIZE*/) {
    let row = wid.x + wid.y * nwg.x;
    let live = row < p.m; // workgroups past the last row (2-D grids) still join the reduction's barriers
    let base = min(row, p.m - 1u) * p.d;
    var ss = 0.0;
    for (var i = lid; i < p.d; i += 256u) {
        let v = x[base + i];
        ss += v * v;
    }
    let total = team_sum(ss, lid, 256u, sg_size);
    let r = sqrt(total / f32(p.d) + p.eps);
    if (live) {
        for (var i = lid; i < p.d; i += 256u) {
            out[base + i] = x[base + i] / r * w[i];
        }
    }
}
