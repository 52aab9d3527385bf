// Second argmax stage: ids[out_idx + m] = the best of row m's slice winners, and the last row's id also
// goes to tok[0], the next decoder step's input. One workgroup per row.

struct State {
    pos0: u32,
    out_idx: u32,
}

@group(0) @binding(0) var<uniform> p: ArgmaxParams;
@group(0) @binding(1) var<storage, read> part: array<vec2<u32>>; // [m, parts]
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> tok: array<u32>;
@group(0) @binding(4) var<storage, read> state: State;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let m = wid.x;
    var bv = 0.0;
    var bi = NONE;
    for (var s = lid; s < p.parts; s += 256u) {
        let c = part[m * p.parts + s];
        if (better(bitcast<f32>(c.x), c.y, bv, bi)) {
            bv = bitcast<f32>(c.x);
            bi = c.y;
        }
    }
    reduce_best(bv, bi, lid);
    if (lid == 0u) {
        ids[state.out_idx + m] = best_i[0];
        if (m == p.m - 1u) {
            tok[0] = best_i[0];
        }
    }
}
