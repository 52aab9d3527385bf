// First argmax stage: workgroup (s, m) finds the best of logits[m, s*SLICE .. (s+1)*SLICE).

@group(0) @binding(0) var<uniform> p: ArgmaxParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;         // [m, vocab]
@group(0) @binding(2) var<storage, read_write> part: array<vec2<u32>>; // [m, parts]: (f32 bits, index)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = wid.x;
    let m = wid.y;
    let end = min(p.vocab, (s + 1u) * SLICE);
    var bv = 0.0;
    var bi = NONE;
    for (var i = s * SLICE + lid; i < end; i += 256u) {
        let v = logits[m * p.vocab + i];
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    reduce_best(bv, bi, lid);
    if (lid == 0u) {
        part[m * p.parts + s] = vec2<u32>(bitcast<u32>(best_v[0]), best_i[0]);
    }
}
