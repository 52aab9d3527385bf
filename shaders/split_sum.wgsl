// The partial sums of a q4_tiles product split over slices of k (x: [splits, m, n], written by q4_tiles
// with p.splits > 1) added, through linear_out's epilogue (bias, GELU, accumulation). Splitting k gives
// short matrices (few output tiles) enough workgroups to fill the GPU.
// Grid: (n / 256, m).

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>; // [splits, m, n]
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let m = gid.y;
    if (n >= p.n || m >= p.m) {
        return;
    }
    var total = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        total += x[(s * p.m + m) * p.n + n];
    }
    store_out(m, n, total);
}
