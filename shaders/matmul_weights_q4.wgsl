// Q4_0 weights for matmul.wgsl: 64 rows x one block per k step, one 32-bit word (8 weights) per
// invocation. Bound as plain u32 words; the same buffers are read as vec4<u32> by q4_matvec.wgsl.

@group(0) @binding(2) var<storage, read> w_nib: array<u32>;    // [n, k/32, 4]
@group(0) @binding(3) var<storage, read> w_scale: array<f32>;  // [n, k/32]

fn stage_weights(n0: u32, k0: u32, lid: u32) {
    let nn = lid / 4u;
    let w = lid % 4u;
    let nb = p.k / 32u;
    var word = 0x88888888u; // dequantises to zeros past the last row
    var d = 0.0;
    if (n0 + nn < p.n) {
        let blk = (n0 + nn) * nb + k0 / 32u;
        word = w_nib[blk * 4u + w];
        d = w_scale[blk];
    }
    for (var c = 0u; c < 4u; c++) {
        let byte = word >> (8u * c);
        ws[(4u * w + c) * TN + nn] = d * f32(i32(byte & 15u) - 8);
        ws[(16u + 4u * w + c) * TN + nn] = d * f32(i32((byte >> 4u) & 15u) - 8);
    }
}
