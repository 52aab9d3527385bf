// The runs of keys of a split attention (attention.wgsl with p.splits > 1) combined: for each query row
// and head, each run's unnormalised sum of values and softmax denominator weighed by exp(its maximum -
// the largest), the sums added and divided by the denominators'. A run with no key the query sees has
// the maximum NONE and weighs 0. One invocation per vec4 of the output; grid: (groups over x and y).
// The number of runs is a constant of the kernel, so that its loops unroll and an invocation's loads of
// every run are issued together: on an H200 a live step's combines took 0.231 instead of 0.258 ms
// (stamped per dispatch) and its GPU time 4.09 instead of 4.13 ms.

const SPLITS: u32 = /*SPLITS*/; // runs of keys (p.splits)

@group(0) @binding(0) var<uniform> p: AttnParams;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>; // [splits, m, H, hd/4 + 1]
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>; // [m, H * hd]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let hd4 = p.head_dim / 4u;
    let e = (wid.x + wid.y * nwg.x) * 64u + lid; // vec4 e of out: row (query, head) e / hd4
    let rows = p.m * p.n_heads;
    if (e >= rows * hd4) {
        return;
    }
    let row = e / hd4;
    let d = e % hd4;
    let stride = rows * (hd4 + 1u); // between runs
    var top = NONE;
    for (var s = 0u; s < SPLITS; s++) {
        top = max(top, partials[s * stride + row * (hd4 + 1u) + hd4].x);
    }
    var total = vec4<f32>(0.0);
    var sum = 0.0;
    for (var s = 0u; s < SPLITS; s++) {
        let at = s * stride + row * (hd4 + 1u);
        let w = exp(partials[at + hd4].x - top);
        total += w * partials[at + d];
        sum += w * partials[at + hd4].y;
    }
    out[e] = total / sum;
}
