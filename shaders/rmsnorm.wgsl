// RMS norm of each row: out = x / sqrt(mean(x^2) + eps) * w, optionally * (1 + s) with s the
// decoder's ada-norm scale of this layer (precomputed per delay). One workgroup of 256 per row.

struct NormParams {
    m: u32,
    d: u32,
    eps: f32,
    ada_offset: u32, // element offset of this layer's s in `ada`
    flags: u32,      // 1: multiply by (1 + s)
}

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;     // [m, d]
@group(0) @binding(2) var<storage, read> w: array<f32>;     // [d]
@group(0) @binding(3) var<storage, read> ada: array<f32>;   // [layers, d]
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // [m, d]

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
            var y = x[base + i] / r * w[i];
            if ((p.flags & 1u) != 0u) {
                y = y * (1.0 + ada[p.ada_offset + i]);
            }
            out[base + i] = y;
        }
    }
}
