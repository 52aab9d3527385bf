// SwiGLU gate: gu [m, 2*hidden] holds w1.x then w3.x; out [m, hidden] = silu(w1.x) * w3.x.

struct GluParams {
    m: u32,
    hidden: u32,
}

@group(0) @binding(0) var<uniform> p: GluParams;
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.m * p.hidden) {
        return;
    }
    let m = i / p.hidden;
    let j = i % p.hidden;
    let g = gu[m * 2u * p.hidden + j];
    out[i] = g / (1.0 + exp(-g)) * gu[m * 2u * p.hidden + p.hidden + j];
}
