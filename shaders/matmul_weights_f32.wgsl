// f32 weights [n, k] for matmul.wgsl (the conv stem, whose weights stay f32 in the GGUF).

@group(0) @binding(2) var<storage, read> w: array<f32>;

fn stage_weights(n0: u32, k0: u32, lid: u32) {
    for (var i = 0u; i < 8u; i++) {
        let e = lid + 256u * i;
        let nn = e / TK;
        let kk = e % TK;
        var v = 0.0;
        if (n0 + nn < p.n && k0 + kk < p.k) {
            v = w[(n0 + nn) * p.k + k0 + kk];
        }
        ws[kk * TN + nn] = v;
    }
}
