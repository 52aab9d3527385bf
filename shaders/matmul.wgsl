// Tiled matrix-matrix product out[m, n] = x[m, :] . W[n, :] for the encoder, the adapter, the conv stem
// and decoder prefill. 64x64 outputs per workgroup of 16x16, 4x4 per invocation, k in steps of 32 (one
// Q4_0 block). The weight format is supplied by an include that defines stage_weights(): Q4_0
// (dequantised into workgroup memory) or f32 (conv kernels). Tiles are stored k-major so the inner loop
// reads consecutive addresses across the invocations of a row of the workgroup.

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 32u;

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;              // rows at x_stride
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> xs: array<f32, 2048>; // [TK][TM]
var<workgroup> ws: array<f32, 2048>; // [TK][TN]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * TN;
    let m0 = wid.y * TM;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var i = 0u; i < 8u; i++) {
            let e = lid + 256u * i;
            let mm = e / TK;
            let kk = e % TK;
            var v = 0.0;
            if (m0 + mm < p.m && k0 + kk < p.k) {
                v = x[(m0 + mm) * p.x_stride + k0 + kk];
            }
            xs[kk * TM + mm] = v;
        }
        stage_weights(n0, k0, lid);
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[kk * TM + l.y + 16u * i];
                b[i] = ws[kk * TN + l.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let m = m0 + l.y + 16u * i;
            let n = n0 + l.x + 16u * j;
            if (m < p.m && n < p.n) {
                store_out(m, n, acc[i * 4u + j]);
            }
        }
    }
}
